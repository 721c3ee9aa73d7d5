package datashare_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/agent"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// blobFiles lists the files in the hub's blob directory.
func blobFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "datashare"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// blobChunks returns the chunks DBBlobs keeps in db.
func blobChunks(t *testing.T, db *store.DB) [][]byte {
	t.Helper()
	rows, err := db.Query("SELECT data FROM datashare_blob_chunks")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var chunks [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, b)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return chunks
}

// grepTree reports the files under dir that contain marker.
func grepTree(t *testing.T, dir string, marker []byte) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, marker) {
			hits = append(hits, path)
		}
		return nil
	})
	return hits
}

// TestRemoteAgentDeliversCiphertextAndTheHubNeverHoldsPlaintext runs the
// hub (handlers, store, blob files, logs) and the data agent as separate
// components that meet only over HTTP, the agent reading a file on its
// own side that carries a known marker. After the download, neither the
// hub's data dir (its SQLite file and WAL included), nor its database, nor
// its logs hold the marker or any row.
func TestRemoteAgentDeliversCiphertextAndTheHubNeverHoldsPlaintext(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// On SQLite the database lives in the hub's data dir, so the grep
		// of the data dir covers it; on PostgreSQL the tables are read.
		var hubDir string
		if db.Dialect == store.SQLite {
			hubDir = filepath.Dir(db.Location)
		}
		h := newHub(t, db, func(o *datashare.Options) {
			if hubDir != "" {
				o.DataDir = hubDir
			}
			o.AgentToken = "agent-token-123"
		})
		if hubDir != "" {
			h.dataDir = hubDir
		}

		marker := "PLAINTEXT-MARKER-" + hex.EncodeToString(sha256.New().Sum([]byte(t.Name())))[:16]
		agentDir := t.TempDir()
		var src bytes.Buffer
		src.WriteString("account,note,amount\n")
		for i := range 3000 {
			src.WriteString("acc" + strings.Repeat("x", i%7) + "," + marker + "," + "12.34\n")
		}
		path := filepath.Join(agentDir, "exports", "notes.csv")
		os.MkdirAll(filepath.Dir(path), 0o700)
		os.WriteFile(path, src.Bytes(), 0o600)

		var d datashare.Dataset
		h.json("POST", "/bank/v1/datasets", adminToken, map[string]any{
			"name": "notes", "description": "notes", "columns": []map[string]any{
				{"name": "account", "type": "string"}, {"name": "note", "type": "string"}, {"name": "amount", "type": "number"}},
			"source": map[string]any{"kind": "file", "path": path},
		}, 201, &d)
		id := newIdentity(t)
		r := h.request("app_a", d.ID, id.Recipient().String())
		h.approve(r.ID)

		var agentLogs testkit.SyncBuffer
		a, err := agent.New(agent.Config{PseudonymKey: bytes.Repeat([]byte{1}, 32), AllowedDirs: []string{agentDir},
			Logger: slog.New(slog.NewJSONHandler(&agentLogs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		remote := &agent.Remote{Agent: a, Hub: h.url, Token: "agent-token-123", Once: true, PartSize: 16 << 10,
			Logger: slog.New(slog.NewJSONHandler(&agentLogs, nil))}
		if err := remote.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		ciphertext, _ := h.waitReady("app_a", r.ID, "")
		if got := decrypt(t, ciphertext, id); !bytes.Equal(got, src.Bytes()) {
			t.Fatalf("decrypted %d bytes, want the source's %d", len(got), src.Len())
		}
		if len(ciphertext) < 3*16<<10 {
			t.Fatalf("ciphertext of %d bytes did not need several parts", len(ciphertext))
		}

		// JSON Lines through the same agent: a conversion on its side.
		h.problem("GET", "/v1/dataset-access-requests/"+r.ID+"/content?format=jsonl", "app_a", nil, 409, "content_not_ready")
		if err := remote.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		jsonl, _ := h.waitReady("app_a", r.ID, "jsonl")
		if first := strings.SplitN(string(decrypt(t, jsonl, id)), "\n", 2)[0]; first != `{"account":"acc","note":"`+marker+`","amount":12.34}` {
			t.Errorf("first JSON line = %s", first)
		}

		for _, m := range []string{marker, "accxxx,"} {
			if hits := grepTree(t, h.dataDir, []byte(m)); len(hits) > 0 {
				t.Errorf("the hub's data dir holds plaintext %q in %v", m, hits)
			}
			if strings.Contains(h.logs.String(), m) {
				t.Errorf("the hub's logs hold plaintext %q", m)
			}
			for _, q := range []string{
				"SELECT count(*) FROM datashare_datasets WHERE description LIKE $1 OR sample LIKE $1 OR source LIKE $1",
				"SELECT count(*) FROM datashare_requests WHERE purpose LIKE $1",
				"SELECT count(*) FROM datashare_contents WHERE error LIKE $1",
				"SELECT count(*) FROM datashare_audit WHERE detail LIKE $1",
			} {
				var n int
				if err := db.QueryRow(q, "%"+m+"%").Scan(&n); err != nil || n != 0 {
					t.Errorf("%s: %d rows, %v", q, n, err)
				}
			}
		}
		if strings.Contains(agentLogs.String(), marker) {
			t.Error("the agent logged plaintext")
		}
		// On PostgreSQL the ciphertext itself is in the database (DBBlobs).
		chunks := blobChunks(t, db)
		if db.Dialect == store.Postgres && len(chunks) == 0 {
			t.Error("on PostgreSQL the ciphertext is not in the database")
		}
		for _, c := range chunks {
			for _, m := range []string{marker, "accxxx,"} {
				if bytes.Contains(c, []byte(m)) {
					t.Errorf("a blob chunk holds plaintext %q", m)
				}
			}
		}
	})
}

func TestAgentRefusesFilesOutsideItsAllowedDirectories(t *testing.T) {
	h := newHub(t, storetest.OpenSQLite(t))
	allowed, outside := t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "secret.csv")
	os.WriteFile(secret, []byte("a\nTOP-SECRET\n"), 0o600)
	link := filepath.Join(allowed, "link.csv")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, nil, allowed)
	for _, p := range []string{secret, link, filepath.Join(allowed, "missing.csv")} {
		_, err := a.Produce(context.Background(), &datashare.Job{Format: "csv", Recipient: newIdentity(t).Recipient().String(),
			Dataset: datashare.JobSource{Columns: []datashare.Column{{Name: "a", Type: "string"}}, Source: datashare.Source{Kind: "file", Path: p}}})
		if err == nil {
			t.Errorf("%s: produced", p)
		}
	}

	// Through the hub, the failure is recorded and retried, not a crash.
	var d datashare.Dataset
	h.json("POST", "/bank/v1/datasets", adminToken, map[string]any{"name": "secret", "description": "d",
		"columns": []map[string]any{{"name": "a", "type": "string"}}, "source": map[string]any{"kind": "file", "path": secret}}, 201, &d)
	r := h.request("app_a", d.ID, newIdentity(t).Recipient().String())
	h.approve(r.ID)
	remote := &agent.Remote{Agent: a, Hub: h.url, Token: adminToken, Once: true, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	if err := remote.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got datashare.AccessRequest
	h.json("GET", "/bank/v1/dataset-access-requests/"+r.ID, adminToken, nil, 200, &got)
	if c := got.Content[0]; c.Status != datashare.ContentPending || !strings.Contains(c.Error, "outside the agent's allowed directories") {
		t.Errorf("content = %+v", c)
	}
	if strings.Contains(h.logs.String(), "TOP-SECRET") {
		t.Error("the secret reached the hub's logs")
	}
}

func TestAgentRoutesNeedTheAdminOrAgentTokenAndKeepUploadsInOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db, func(o *datashare.Options) { o.AgentToken = "agent-secret" })
		d := h.publishSynthetic("s", 10)
		r := h.request("app_a", d.ID, newIdentity(t).Recipient().String())
		h.approve(r.ID)

		h.problem("GET", "/bank/v1/agent/jobs", "", nil, 401, "unauthorized")
		h.problem("GET", "/bank/v1/agent/jobs", "app_a", nil, 401, "unauthorized")
		h.problem("GET", "/bank/v1/dataset-access-requests", "agent-secret", nil, 401, "unauthorized") // the agent token is for agent routes only
		var jobs page.Page[*datashare.Job]
		h.json("GET", "/bank/v1/agent/jobs", "agent-secret", nil, 200, &jobs)
		if len(jobs.Data) != 1 || jobs.Data[0].RequestID != r.ID || jobs.Data[0].Dataset.Source.Generator != "synthetic" || jobs.Data[0].Lease != "" {
			t.Fatalf("jobs = %+v", jobs.Data)
		}
		var job datashare.Job
		h.json("POST", "/bank/v1/agent/jobs/"+jobs.Data[0].ID+"/claim", adminToken, map[string]any{}, 200, &job)
		h.problem("POST", "/bank/v1/agent/jobs/"+job.ID+"/claim", adminToken, map[string]any{}, 409, "job_unavailable")

		put := func(token, lease, offset string, body []byte) (int, http.Header, []byte) {
			req, _ := http.NewRequest("PUT", h.url+"/bank/v1/agent/jobs/"+job.ID+"/content", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set(datashare.HeaderLease, lease)
			req.Header.Set(datashare.HeaderUploadOffset, offset)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, res.Header, b
		}
		if code, _, _ := put("nope", job.Lease, "0", []byte("x")); code != 401 {
			t.Errorf("upload with a bad token = %d", code)
		}
		if code, hd, b := put("agent-secret", job.Lease, "0", []byte("hello ")); code != 200 || hd.Get(datashare.HeaderUploadOffset) != "6" {
			t.Fatalf("first part = %d %v %s", code, hd, b)
		}
		if code, hd, b := put("agent-secret", job.Lease, "0", []byte("hello ")); code != 409 || hd.Get(datashare.HeaderUploadOffset) != "6" || !strings.Contains(string(b), "wrong_offset") {
			t.Errorf("repeated part = %d %v %s", code, hd, b)
		}
		if code, _, b := put("agent-secret", "lse_other", "6", []byte("x")); code != 409 || !strings.Contains(string(b), "lease_lost") {
			t.Errorf("part under another lease = %d %s", code, b)
		}
		if code, _, _ := put("agent-secret", job.Lease, "six", []byte("x")); code != 400 {
			t.Errorf("part without an offset = %d", code)
		}
		if code, _, _ := put("agent-secret", job.Lease, "6", make([]byte, (1<<20)+1)); code != 413 {
			t.Errorf("oversized part = %d, want 413", code)
		}
		if code, _, _ := put("agent-secret", job.Lease, "6", []byte("world")); code != 200 {
			t.Fatalf("second part = %d", code)
		}
		sum := sha256.Sum256([]byte("hello world"))
		h.problem("POST", "/bank/v1/agent/jobs/"+job.ID+"/complete", adminToken, map[string]any{"lease": job.Lease, "size": 12, "sha256": hex.EncodeToString(sum[:])}, 409, "size_mismatch")
		bad := sha256.Sum256([]byte("hello there"))
		h.problem("POST", "/bank/v1/agent/jobs/"+job.ID+"/complete", adminToken, map[string]any{"lease": job.Lease, "size": 11, "sha256": hex.EncodeToString(bad[:])}, 422, "checksum_mismatch")
		var info datashare.ContentInfo
		h.json("POST", "/bank/v1/agent/jobs/"+job.ID+"/complete", adminToken, map[string]any{"lease": job.Lease, "size": 11, "sha256": hex.EncodeToString(sum[:])}, 200, &info)
		if info.Status != "ready" || info.ETag != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Errorf("completed = %+v", info)
		}
		got, hd := h.waitReady("app_a", r.ID, "")
		if string(got) != "hello world" || hd.Get("ETag") != info.ETag {
			t.Errorf("download = %q %s", got, hd.Get("ETag"))
		}
		h.json("GET", "/bank/v1/agent/jobs", adminToken, nil, 200, &jobs)
		if len(jobs.Data) != 0 {
			t.Errorf("a finished job is still offered: %+v", jobs.Data)
		}
	})
}
