package datashare_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/agent"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// twoNodes starts two hubs (two nodes) on two handles of one database.
// They share ciphertext through DBBlobs: the default on PostgreSQL, and
// given explicitly on SQLite (whose default, FileBlobs, is for one node).
func twoNodes(t *testing.T, db1, db2 *store.DB) (*hub, *hub) {
	t.Helper()
	node := func(db *store.DB) *hub {
		return newHub(t, db, func(o *datashare.Options) {
			if db.Dialect == store.SQLite {
				o.Blobs = &datashare.DBBlobs{DB: db}
			}
		})
	}
	n1, n2 := node(db1), node(db2)
	for _, n := range []*hub{n1, n2} {
		if _, ok := n.blobs.(*datashare.DBBlobs); !ok {
			t.Fatalf("a node on %s keeps its ciphertext in %T", n.db.Dialect, n.blobs)
		}
	}
	return n1, n2
}

// TestTwoNodesSharingADatabaseSeeOneBlob: an upload appended in parts
// alternately through two nodes and completed through the other is one
// blob; either node serves it, ranges included, without producing it
// again; a revocation through one node deletes it for both.
func TestTwoNodesSharingADatabaseSeeOneBlob(t *testing.T) {
	eachShared(t, func(t *testing.T, db1, db2 *store.DB) {
		ctx := context.Background()
		n1, n2 := twoNodes(t, db1, db2)
		d := n1.publishSynthetic("s", 10)
		id := newIdentity(t)
		r := n2.request("app_a", d.ID, id.Recipient().String())
		n1.approve(r.ID)

		jobs, err := n2.svc.Jobs(ctx, 10)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("jobs on node 2 = %v, %v", jobs, err)
		}
		job, err := n1.svc.Claim(ctx, jobs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		// Ciphertext as far as the hub can tell: it never decrypts.
		data := payload(2*chunk+4321, 9)
		cuts := []int{0, 70000, 70000 + chunk, 2*chunk + 100, len(data)}
		via := []*hub{n1, n2, n1, n2}
		for i, n := range via {
			off := int64(cuts[i])
			if i == 2 {
				// Node 1 took part 0 and node 2 part 1: node 1 knows the
				// upload's real size, not the one it last saw.
				_, err := n1.svc.AppendContent(ctx, job.ID, job.Lease, int64(cuts[1]), bytes.NewReader(data[cuts[1]:cuts[2]]))
				if size, ok := datashare.UploadOffset(err); !ok || size != off {
					t.Fatalf("a repeated part on node 1: %v, want wrong_offset at %d", err, off)
				}
			}
			got, err := n.svc.AppendContent(ctx, job.ID, job.Lease, off, bytes.NewReader(data[cuts[i]:cuts[i+1]]))
			if err != nil || got != int64(cuts[i+1]) {
				t.Fatalf("part %d through node %d: %d, %v", i, i%2+1, got, err)
			}
		}
		sum := sha256.Sum256(data)
		info, err := n1.svc.CompleteContent(ctx, job.ID, job.Lease, int64(len(data)), hex.EncodeToString(sum[:]))
		if err != nil {
			t.Fatal(err)
		}

		content := "/v1/dataset-access-requests/" + r.ID + "/content"
		var etag string
		for i, n := range []*hub{n1, n2} {
			code, hd, body := n.do("GET", content, "app_a", nil)
			if code != 200 || !bytes.Equal(body, data) {
				t.Fatalf("download from node %d: %d, %d bytes", i+1, code, len(body))
			}
			if hd.Get("ETag") != info.ETag {
				t.Errorf("node %d: ETag %s, want %s", i+1, hd.Get("ETag"), info.ETag)
			}
			etag = hd.Get("ETag")
		}
		// A download cut on node 1 resumes on node 2.
		req, _ := http.NewRequest("GET", n2.url+content, nil)
		req.Header.Set("Authorization", "Bearer app_a")
		req.Header.Set("Range", "bytes="+strconv.Itoa(chunk-10)+"-")
		req.Header.Set("If-Range", etag)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var rest bytes.Buffer
		rest.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != 206 || !bytes.Equal(rest.Bytes(), data[chunk-10:]) {
			t.Errorf("resumed on node 2: %d, %d bytes", res.StatusCode, rest.Len())
		}

		// Another format, produced by a remote agent whose parts a load
		// balancer spreads over both nodes.
		n2.problem("GET", content+"?format=jsonl", "app_a", nil, 409, "content_not_ready")
		lb := newRoundRobin(t, n1.url, n2.url)
		a, err := agent.New(agent.Config{PseudonymKey: bytes.Repeat([]byte{7}, 32), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		remote := &agent.Remote{Agent: a, Hub: lb.url, Token: adminToken, Once: true, PartSize: 256, Logger: slog.New(slog.DiscardHandler)}
		if err := remote.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if puts := lb.puts(); puts[0] < 2 || puts[1] < 2 {
			t.Errorf("parts per node: %v; want several on each", puts)
		}
		jsonl, _ := n1.waitReady("app_a", r.ID, "jsonl")
		if got, want := decrypt(t, jsonl, id), synthetic(t, "jsonl", 10, 7); !bytes.Equal(got, want) {
			t.Errorf("jsonl through two nodes: %d bytes, want %d", len(got), len(want))
		}

		// Revoked through node 2: gone for both.
		n2.json("POST", "/bank/v1/dataset-access-requests/"+r.ID+"/revoke", adminToken, map[string]any{"reason": "ended"}, 200, nil)
		for i, n := range []*hub{n1, n2} {
			n.problem("GET", content, "app_a", nil, 403, "access_not_granted")
			for _, key := range []string{r.ID + ".csv", r.ID + ".jsonl"} {
				if b, err := n.blobs.Open(ctx, key); !errors.Is(err, fs.ErrNotExist) {
					if err == nil {
						b.Close()
					}
					t.Errorf("node %d still opens %s: %v", i+1, key, err)
				}
			}
		}
		if chunks := blobChunks(t, db1); len(chunks) != 0 {
			t.Errorf("%d chunks left after revocation", len(chunks))
		}
	})
}

// roundRobin is a load balancer that sends each request to the next node.
type roundRobin struct {
	url string

	mu    sync.Mutex
	next  int
	count []int // PUTs per node
}

func newRoundRobin(t *testing.T, nodes ...string) *roundRobin {
	t.Helper()
	lb := &roundRobin{count: make([]int, len(nodes))}
	var proxies []*httputil.ReverseProxy
	for _, n := range nodes {
		u, err := url.Parse(n)
		if err != nil {
			t.Fatal(err)
		}
		proxies = append(proxies, httputil.NewSingleHostReverseProxy(u))
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lb.mu.Lock()
		i := lb.next
		lb.next = (lb.next + 1) % len(proxies)
		if r.Method == http.MethodPut {
			lb.count[i]++
		}
		lb.mu.Unlock()
		proxies[i].ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	lb.url = ts.URL
	return lb
}

func (lb *roundRobin) puts() []int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return append([]int(nil), lb.count...)
}

// TestCompletionHashesTheUploadWhenItsRunningHashFellBehind: a node that
// stored a part but died before saving the running hash leaves the hash
// behind the upload; later parts still land, and the completion hashes
// the stored upload instead, still catching a wrong checksum.
func TestCompletionHashesTheUploadWhenItsRunningHashFellBehind(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := newHub(t, db)
		d := h.publishSynthetic("s", 10)
		r := h.request("app_a", d.ID, newIdentity(t).Recipient().String())
		h.approve(r.ID)
		jobs, err := h.svc.Jobs(ctx, 10)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("jobs = %v, %v", jobs, err)
		}
		job, err := h.svc.Claim(ctx, jobs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		data := payload(30000, 4)
		var size int64
		var state string
		for i, cut := range []int{0, 10000, 20000} {
			if i == 2 {
				// The hash as it was after the first part: the save after
				// the second was lost.
				if _, err := db.Exec(`UPDATE datashare_contents SET upload_size = $1, upload_hash = $2 WHERE id = $3`, size, state, job.ID); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := h.svc.AppendContent(ctx, job.ID, job.Lease, int64(cut), bytes.NewReader(data[cut:cut+10000])); err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			if i == 0 {
				if err := db.QueryRow(`SELECT upload_size, upload_hash FROM datashare_contents WHERE id = $1`, job.ID).Scan(&size, &state); err != nil || size != 10000 || state == "" {
					t.Fatalf("running hash after the first part: %d %q %v", size, state, err)
				}
			}
		}
		bad := sha256.Sum256(data[:29999])
		if _, err := h.svc.CompleteContent(ctx, job.ID, job.Lease, int64(len(data)), hex.EncodeToString(bad[:])); causeway.ErrorCode(err) != "checksum_mismatch" {
			t.Fatalf("completion with a wrong checksum: %v", err)
		}
		sum := sha256.Sum256(data)
		info, err := h.svc.CompleteContent(ctx, job.ID, job.Lease, int64(len(data)), hex.EncodeToString(sum[:]))
		if err != nil || info.ETag != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Fatalf("completion = %+v, %v", info, err)
		}
		if got, _ := h.waitReady("app_a", r.ID, ""); !bytes.Equal(got, data) {
			t.Error("the download differs from the upload")
		}
	})
}
