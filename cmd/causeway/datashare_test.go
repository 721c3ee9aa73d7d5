package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireDataAgentFlag fails unless serve has its --data-agent flag (data
// partnering is wired into the platform).
func requireDataAgentFlag(t *testing.T) {
	t.Helper()
	out, _ := exec.Command(binary, "serve", "--help").CombinedOutput()
	if !bytes.Contains(out, []byte("--data-agent")) {
		t.Fatal("serve has no --data-agent flag: data partnering is not wired into the platform")
	}
}

// run runs the causeway binary and returns its standard output; it fails
// the test on a non-zero exit.
func dataRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, stderr, err := dataRunErr(env, args...)
	if err != nil {
		t.Fatalf("causeway %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func dataRunErr(env []string, args ...string) (string, string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func dataCall(t *testing.T, method, url, token string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s = %d, want %d: %s", method, url, res.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
}

// TestDataPartneringAcrossProcessesHubNeverHoldsPlaintext is the done-when
// of data partnering, with the real binary as hub, data agent and data
// scientist in separate processes: keygen -> request -> bank approval ->
// agent -> pull -> the source's checksum, through the CLI and through
// `age -d`; the hub's data dir and logs never hold the plaintext marker;
// revocation stops the next pull.
func TestDataPartneringAcrossProcessesHubNeverHoldsPlaintext(t *testing.T) {
	t.Parallel()
	requireDataAgentFlag(t)
	const admin = "cwadm_e2e-data"
	hubDir := t.TempDir()
	_, base, logs := startServe(t, hubDir, "CAUSEWAY_ADMIN_TOKEN="+admin, "CAUSEWAY_DATA_AGENT=external")

	// A data scientist's app with data:read.
	var dev struct {
		Token string `json:"token"`
	}
	dataCall(t, "POST", base+"/v1/developers", "", map[string]any{"email": "ds@example.com", "password": "correct horse battery", "organization": "Lab"}, 201, &dev)
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	dataCall(t, "POST", base+"/v1/apps", dev.Token, map[string]any{"name": "model lab", "scopes": []string{"data:read"}}, 201, &app)
	creds := []string{"CAUSEWAY_CLIENT_ID=" + app.ClientID, "CAUSEWAY_CLIENT_SECRET=" + app.ClientSecret, "CAUSEWAY_SERVER=" + base}

	// The bank's export, on the agent's side only, with a known marker.
	agentDir := t.TempDir()
	marker := "E2E-PLAINTEXT-MARKER-7f3a9c"
	var src bytes.Buffer
	src.WriteString("customer,segment,note\n")
	for i := range 20000 {
		src.WriteString("c" + strings.Repeat("9", i%5) + ",retail," + marker + "\n")
	}
	export := filepath.Join(agentDir, "exports", "segments.csv")
	os.MkdirAll(filepath.Dir(export), 0o700)
	os.WriteFile(export, src.Bytes(), 0o600)
	var ds struct {
		ID string `json:"id"`
	}
	dataCall(t, "POST", base+"/bank/v1/datasets", admin, map[string]any{
		"name": "segments", "description": "customer segments",
		"columns": []map[string]any{{"name": "customer", "type": "string"}, {"name": "segment", "type": "string"}, {"name": "note", "type": "string"}},
		"source":  map[string]any{"kind": "file", "path": export},
	}, 201, &ds)

	work := t.TempDir()
	key := filepath.Join(work, "key.txt")
	recipient := strings.TrimSpace(dataRun(t, nil, "data", "keygen", "-o", key))
	if !strings.HasPrefix(recipient, "age1") {
		t.Fatalf("keygen printed %q", recipient)
	}
	var req struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	out := dataRun(t, creds, "data", "request", "--dataset", ds.ID, "--purpose", "segment model", "--days", "7", "--identity", key, "--json")
	if err := json.Unmarshal([]byte(out), &req); err != nil || req.Status != "awaiting_approval" {
		t.Fatalf("request printed %s", out)
	}
	dataCall(t, "POST", base+"/bank/v1/dataset-access-requests/"+req.ID+"/approve", admin, map[string]any{"reason": "ok"}, 200, nil)

	agentArgs := []string{"agent", "--hub", base, "--token", admin, "--once", "--allow-dir", filepath.Join(agentDir, "exports"),
		"--agent-dir", filepath.Join(agentDir, "state"), "--bank-data-dir", hubDir}
	dataRun(t, nil, agentArgs...)

	plain := filepath.Join(work, "segments.csv")
	dataRun(t, creds, "data", "pull", req.ID, "-i", key, "-o", plain, "--progress", "never")
	got, _ := os.ReadFile(plain)
	if sha256.Sum256(got) != sha256.Sum256(src.Bytes()) {
		t.Fatalf("pulled %d bytes with another checksum than the source's %d", len(got), src.Len())
	}

	// The standard age command decrypts the same download.
	if agePath, err := exec.LookPath("age"); err == nil {
		tok := dataAccessToken(t, base, app.ClientID, app.ClientSecret)
		r, _ := http.NewRequest("GET", base+"/v1/dataset-access-requests/"+req.ID+"/content", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(r)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("download: %v %v", err, res)
		}
		enc := filepath.Join(work, "segments.csv.age")
		f, _ := os.Create(enc)
		io.Copy(f, res.Body)
		f.Close()
		res.Body.Close()
		dec, err := exec.Command(agePath, "-d", "-i", key, enc).Output()
		if err != nil || !bytes.Equal(dec, src.Bytes()) {
			t.Fatalf("age -d: %v (%d bytes)", err, len(dec))
		}
	} else if os.Getenv("CI") != "" {
		t.Fatal("the age command is not installed; CI must install Debian's age")
	}

	// A sandbox dataset, made by the agent from the bank's own database.
	var catalog struct {
		Data []struct {
			ID, Name string
		} `json:"data"`
	}
	dataCall(t, "GET", base+"/v1/datasets", dataAccessToken(t, base, app.ClientID, app.ClientSecret), nil, 200, &catalog)
	var txns string
	for _, d := range catalog.Data {
		if d.Name == "pseudonymized-transactions" {
			txns = d.ID
		}
	}
	if txns == "" {
		t.Fatalf("the sandbox catalog lacks pseudonymized-transactions: %+v", catalog.Data)
	}
	out = dataRun(t, creds, "data", "request", "--dataset", "pseudonymized-transactions", "--purpose", "spend model", "--days", "1", "--identity", key, "--json")
	var req2 struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(out), &req2)
	dataCall(t, "POST", base+"/bank/v1/dataset-access-requests/"+req2.ID+"/approve", admin, map[string]any{}, 200, nil)
	dataRun(t, nil, agentArgs...)
	txnFile := filepath.Join(work, "txns.csv")
	dataRun(t, creds, "data", "pull", req2.ID, "-i", key, "-o", txnFile, "--progress", "never")
	if b, _ := os.ReadFile(txnFile); !bytes.HasPrefix(b, []byte("customer_hash,account_hash,account_type,booked_date,amount,currency,direction,category\n")) || bytes.Count(b, []byte("\n")) < 100 {
		t.Errorf("pseudonymized transactions: %.200s", b)
	}

	// The hub never held the plaintext: not in its data dir (database,
	// WAL, blobs, NATS store), not in its logs.
	filepath.WalkDir(hubDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(marker)) {
				t.Errorf("the hub's %s holds the plaintext marker", path)
			}
		}
		return nil
	})
	if strings.Contains(logs.String(), marker) {
		t.Error("the hub's logs hold the plaintext marker")
	}

	// Revocation stops the next pull at once.
	dataCall(t, "POST", base+"/bank/v1/dataset-access-requests/"+req.ID+"/revoke", admin, map[string]any{"reason": "contract ended"}, 200, nil)
	_, stderr, err := dataRunErr(creds, "data", "pull", req.ID, "-i", key, "-o", filepath.Join(work, "again.csv"), "--progress", "never")
	if err == nil || !strings.Contains(stderr, "access_not_granted") {
		t.Errorf("pull after revocation: %v: %s", err, stderr)
	}
}

func dataAccessToken(t *testing.T, base, id, secret string) string {
	t.Helper()
	res, err := http.PostForm(base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	if tok.AccessToken == "" {
		t.Fatalf("no access token (%d)", res.StatusCode)
	}
	return tok.AccessToken
}
