package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestASecondServeOnALockedDataDirExitsNamingTheHolder: while a node
// lives, its data dir (SQLite file, embedded NATS store) is locked; a
// second `causeway serve` on it exits non-zero at once with one line
// naming the lock file and the holder's pid, and once the first has
// stopped a new node starts on it.
func TestASecondServeOnALockedDataDirExitsNamingTheHolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, _, logs := startServe(t, dir)

	// The guard only stops a test that would otherwise hang: a second
	// node that started would serve until killed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	second := exec.CommandContext(ctx, binary, "serve", "--data-dir", dir, "--addr", "127.0.0.1:0")
	second.Env = cleanEnv()
	var stderr bytes.Buffer
	second.Stdout, second.Stderr = &stderr, &stderr
	err := second.Run()
	if ctx.Err() != nil {
		t.Fatalf("the second node did not exit; it printed:\n%s", stderr.String())
	}
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() == 0 {
		t.Fatalf("the second node ended with %v, want a non-zero exit; it printed:\n%s", err, stderr.String())
	}
	out := strings.TrimRight(stderr.String(), "\n")
	lock := filepath.Join(dir, "causeway.lock")
	pid := strconv.Itoa(first.Process.Pid)
	if strings.Contains(out, "\n") || !strings.HasPrefix(out, "causeway: ") || !strings.Contains(out, lock) ||
		!strings.Contains(out, "locked by process "+pid) {
		t.Errorf("the second node printed %q, want one causeway: line naming %s and pid %s", out, lock, pid)
	}

	first.Process.Signal(syscall.SIGTERM)
	if err := first.Wait(); err != nil {
		t.Fatalf("the first node's exit after SIGTERM: %v\n%s", err, logs.String())
	}
	startServe(t, dir) // fails the test unless it becomes ready
}
