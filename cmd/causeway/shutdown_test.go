package main

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/causewayhq/causeway/client"
)

// TestSIGTERMEndsOpenStreamsAndExitsZero: a node with an event stream open
// ends the stream on SIGTERM with a last frame that tells the client when
// to reconnect, ends the response cleanly (no cut connection), and exits
// 0 after a clean shutdown instead of waiting out the drain for a client
// that never hangs up.
func TestSIGTERMEndsOpenStreamsAndExitsZero(t *testing.T) {
	t.Parallel()
	n := startNode(t, []string{"--data-dir", t.TempDir()})
	ctx := context.Background()
	dev, err := client.SignUp(ctx, n.base, "sigterm@tenants.example", "a long enough passphrase", "SIGTERM")
	if err != nil {
		t.Fatal(err)
	}
	app, err := dev.CreateApp(ctx, "stream app", []string{"events:read"})
	if err != nil {
		t.Fatal(err)
	}
	token := accessToken(t, n.base, app)

	// The client's context outlives the test's wait for the process, so
	// only the server can end the stream.
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(streamCtx, "GET", n.base+"/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("stream = %d", res.StatusCode)
	}
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		readErr <- sc.Err()
	}()
	// The first frame says the stream is open.
	if first := <-lines; first != "retry: 3000" {
		t.Fatalf("first line = %q, want the stream's retry field", first)
	}

	stopped := time.Now()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if err := <-readErr; err != nil {
		t.Errorf("the stream was cut, not ended: %v", err)
	}
	last := strings.Join(rest, "\n")
	if !strings.Contains(last, "\nretry: ") && !strings.HasPrefix(last, "retry: ") || !strings.Contains(last, ": this node is shutting down") {
		t.Errorf("the stream ended without a last frame asking to reconnect; after the first frame it sent:\n%s", last)
	}
	if err := n.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM with a stream open: %v\n%s", err, n.logs)
	}
	if !strings.Contains(n.logs.String(), "shut down cleanly") {
		t.Errorf("no clean shutdown in the logs:\n%s", n.logs)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(stopped).Round(time.Millisecond))
}
