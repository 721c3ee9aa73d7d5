package main

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"testing"
)

// TestOpenAPICommandPrintsWhatTheNodeServes: `causeway openapi` prints the
// very document a running node with the same public URL serves, so that
// CI lints the served document without running a node.
func TestOpenAPICommandPrintsWhatTheNodeServes(t *testing.T) {
	t.Parallel()
	const url = "https://api.bank.example"
	_, base, _ := startServe(t, t.TempDir(), "CAUSEWAY_PUBLIC_URL="+url)
	res, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(res.Body)
	res.Body.Close()
	cmd := exec.Command(binary, "openapi", "--public-url", url)
	cmd.Env = cleanEnv()
	printed, err := cmd.Output()
	if err != nil {
		t.Fatalf("causeway openapi: %v", err)
	}
	if res.StatusCode != 200 || !bytes.Equal(printed, served) {
		t.Errorf("causeway openapi printed %d bytes; the node served %d (%d bytes)", len(printed), res.StatusCode, len(served))
	}
	if !bytes.Contains(printed, []byte(`"servers":[{"description":"This node","url":"`+url+`"}]`)) {
		t.Errorf("the document does not name %s as its server", url)
	}
}
