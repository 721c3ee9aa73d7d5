package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestBenchRefusesBoundsThatAreNotPositive(t *testing.T) {
	t.Parallel()
	// Refused before any benchmark starts a node: one line, no tables.
	for _, args := range [][]string{
		{"bench", "events", "--rate", "0"},
		{"bench", "events", "--rate", "-5"},
		{"bench", "all", "--duration", "0s"},
		{"bench", "gateway", "--concurrency", "0"},
	} {
		cmd := exec.Command(binary, args...)
		cmd.Env = cleanEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err == nil {
			t.Errorf("%v exited 0", args)
			continue
		}
		if out := stderr.String(); !strings.Contains(out, "--duration, --concurrency and --rate must be positive") || strings.Contains(out, "running ") {
			t.Errorf("%v: stderr = %q, want the bounds refused before anything runs", args, out)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v printed %q", args, stdout.String())
		}
	}
}
