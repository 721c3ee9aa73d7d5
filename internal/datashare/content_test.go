package datashare_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

func TestApprovedContentDownloadsEncryptedToTheRecipientWithETagAndRanges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db)
		h.runProducer(newAgent(t, nil))
		d := h.publishSynthetic("s", 2000)
		id := newIdentity(t)
		r := h.request("app_a", d.ID, id.Recipient().String())
		h.approve(r.ID)

		ciphertext, hd := h.waitReady("app_a", r.ID, "")
		plain := decrypt(t, ciphertext, id)
		if want := synthetic(t, "csv", 2000, 7); !bytes.Equal(plain, want) {
			t.Fatalf("plaintext differs from the source (%d vs %d bytes)", len(plain), len(want))
		}
		if !strings.HasPrefix(string(plain), "row,customer_hash,booked_date,amount,currency,direction,category\n") {
			t.Errorf("CSV does not start with its header line: %.80q", plain)
		}
		sum := sha256.Sum256(ciphertext)
		if hd.Get("ETag") != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Errorf("ETag = %s, want the quoted SHA-256 of the ciphertext", hd.Get("ETag"))
		}
		if hd.Get("Content-Type") != "application/age" || hd.Get("Accept-Ranges") != "bytes" || hd.Get("Content-Length") != strconv.Itoa(len(ciphertext)) {
			t.Errorf("headers = %v", hd)
		}
		if bytes.Contains(ciphertext, plain[:40]) {
			t.Error("the download contains plaintext")
		}

		// Range: the rest from byte 1000.
		req, _ := http.NewRequest("GET", h.url+"/v1/dataset-access-requests/"+r.ID+"/content", nil)
		req.Header.Set("Authorization", "Bearer app_a")
		req.Header.Set("Range", "bytes=1000-")
		req.Header.Set("If-Range", hd.Get("ETag"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var rest bytes.Buffer
		rest.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != 206 || !bytes.Equal(rest.Bytes(), ciphertext[1000:]) ||
			res.Header.Get("Content-Range") != "bytes 1000-"+strconv.Itoa(len(ciphertext)-1)+"/"+strconv.Itoa(len(ciphertext)) {
			t.Errorf("range = %d %s, %d bytes", res.StatusCode, res.Header.Get("Content-Range"), rest.Len())
		}
		// If-Range with another ETag: the whole file.
		req.Header.Set("If-Range", `"stale"`)
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("If-Range with a stale ETag = %d, want 200", res.StatusCode)
		}
		req.Header.Del("If-Range")
		req.Header.Set("Range", "bytes="+strconv.Itoa(len(ciphertext)+5)+"-")
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 416 {
			t.Errorf("range past the end = %d, want 416", res.StatusCode)
		}

		// Another offered format is produced on demand.
		h.problem("GET", "/v1/dataset-access-requests/"+r.ID+"/content?format=jsonl", "app_a", nil, 409, "content_not_ready")
		jsonl, _ := h.waitReady("app_a", r.ID, "jsonl")
		lines := strings.Split(strings.TrimSpace(string(decrypt(t, jsonl, id))), "\n")
		var first map[string]any
		if len(lines) != 2000 || json.Unmarshal([]byte(lines[0]), &first) != nil || first["row"] != 1.0 || first["currency"] != "EUR" {
			t.Errorf("jsonl: %d lines, first %s", len(lines), lines[0])
		}
		h.problem("GET", "/v1/dataset-access-requests/"+r.ID+"/content?format=xml", "app_a", nil, 422, "validation_failed")

		// The audit holds each download with its bytes and range.
		var audit page.Page[*datashare.AuditEntry]
		h.json("GET", "/bank/v1/dataset-access-requests/"+r.ID+"/audit", adminToken, nil, 200, &audit)
		var downloads []map[string]any
		for _, e := range audit.Data {
			if e.Action == "download" {
				var d map[string]any
				json.Unmarshal(e.Detail, &d)
				if e.Actor != "app:app_a" {
					t.Errorf("download by %s", e.Actor)
				}
				downloads = append(downloads, d)
			}
		}
		if len(downloads) < 3 || downloads[0]["bytes"].(float64) != float64(len(ciphertext)) || downloads[0]["status"].(float64) != 200 ||
			downloads[1]["range"] != "bytes=1000-" || downloads[1]["bytes"].(float64) != float64(len(ciphertext)-1000) {
			t.Errorf("download audit = %v", downloads)
		}
	})
}

func TestDownloadIsRefusedUnlessApprovedUnexpiredAndOwned(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db)
		d := h.publishSynthetic("s", 100)
		id := newIdentity(t)
		r := h.request("app_a", d.ID, id.Recipient().String())
		content := "/v1/dataset-access-requests/" + r.ID + "/content"

		h.problem("GET", content, "app_a", nil, 403, "access_not_granted") // awaiting approval
		h.approve(r.ID)
		// No agent running yet: not ready, with Retry-After.
		hd := h.problem("GET", content, "app_a", nil, 409, "content_not_ready")
		if s, err := strconv.Atoi(hd.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("Retry-After = %q", hd.Get("Retry-After"))
		}
		h.runProducer(newAgent(t, nil))
		h.waitReady("app_a", r.ID, "")

		h.problem("GET", content, "app_b", nil, 403, "access_not_granted")
		h.problem("GET", "/v1/dataset-access-requests/dar_01jqz9a0c2e4g6j8m0p2r4t6v8/content", "app_a", nil, 403, "access_not_granted")
		h.problem("GET", content, "", nil, 401, "unauthorized")

		// Expiry stops downloads at once, before any sweep.
		h.clock.Advance(31 * 24 * time.Hour)
		h.problem("GET", content, "app_a", nil, 403, "access_not_granted")
		h.clock.Advance(-31 * 24 * time.Hour)
		h.waitReady("app_a", r.ID, "")

		// Revocation stops them at once, and the ciphertext is deleted.
		h.json("POST", "/bank/v1/dataset-access-requests/"+r.ID+"/revoke", adminToken, map[string]any{"reason": "ended"}, 200, nil)
		h.problem("GET", content, "app_a", nil, 403, "access_not_granted")
		var got datashare.AccessRequest
		h.json("GET", "/v1/dataset-access-requests/"+r.ID, "app_a", nil, 200, &got)
		if len(got.Content) != 1 || got.Content[0].Status != datashare.ContentDeleted {
			t.Errorf("content after revocation = %+v", got.Content)
		}
		if files := blobFiles(t, h.dataDir); len(files) != 0 {
			t.Errorf("ciphertext left after revocation: %v", files)
		}
		if b, err := h.blobs.Open(context.Background(), r.ID+".csv"); !errors.Is(err, fs.ErrNotExist) {
			if err == nil {
				b.Close()
			}
			t.Errorf("ciphertext left in the blob store after revocation: %v", err)
		}

		var audit page.Page[*datashare.AuditEntry]
		h.json("GET", "/bank/v1/dataset-access-requests/"+r.ID+"/audit", adminToken, nil, 200, &audit)
		refused := map[string]int{}
		for _, e := range audit.Data {
			if e.Action == "download_refused" {
				var d map[string]any
				json.Unmarshal(e.Detail, &d)
				refused[e.Actor+" "+d["reason"].(string)]++
			}
		}
		for _, want := range []string{"app:app_a awaiting_approval", "app:app_b not_owner", "app:app_a expired", "app:app_a revoked"} {
			if refused[want] == 0 {
				t.Errorf("audit lacks the refusal %q: %v", want, refused)
			}
		}
	})
}

// failingDeletes is the platform's blob store whose deletes fail while
// failing is set: a disk or database hiccup at the moment a revocation
// deletes the ciphertext.
type failingDeletes struct {
	datashare.BlobStore
	failing atomic.Bool
}

func (f *failingDeletes) Delete(ctx context.Context, key string) error {
	if f.failing.Load() {
		return errors.New("injected: the blob store is unavailable")
	}
	return f.BlobStore.Delete(ctx, key)
}

// TestRevokedCiphertextIsDeletedEvenIfTheFirstDeleteFails: when deleting a
// revoked request's ciphertext fails, the next sweep deletes it.
func TestRevokedCiphertextIsDeletedEvenIfTheFirstDeleteFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		blobs := &failingDeletes{}
		h := newHub(t, db, func(o *datashare.Options) {
			blobs.BlobStore = datashare.DefaultBlobs(db, o.DataDir)
			o.Blobs = blobs
		})
		d := h.publishSynthetic("s", 20)
		r := h.request("app_a", d.ID, newIdentity(t).Recipient().String())
		h.approve(r.ID)
		h.runProducer(newAgent(t, nil))
		h.waitReady("app_a", r.ID, "")
		exists := func() bool {
			b, err := blobs.Open(context.Background(), r.ID+".csv")
			if err == nil {
				b.Close()
				return true
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			return false
		}
		if !exists() {
			t.Fatal("no ciphertext after the content was ready")
		}

		blobs.failing.Store(true)
		h.json("POST", "/bank/v1/dataset-access-requests/"+r.ID+"/revoke", adminToken, map[string]any{"reason": "ended"}, 200, nil)
		if !exists() {
			t.Fatal("the injected failure did not keep the ciphertext; the test proves nothing")
		}
		blobs.failing.Store(false)
		if _, err := h.svc.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		if exists() {
			t.Error("the sweep left a revoked request's ciphertext")
		}
	})
}
