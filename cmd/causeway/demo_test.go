package main

import (
	"bytes"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// TestDemoCommandRunsEachStoryOnItsOwnNode is the done-when: on a
// fresh start, `causeway demo baas` and `causeway demo empathetic` each
// start an embedded node, narrate the story and exit 0.
func TestDemoCommandRunsEachStoryOnItsOwnNode(t *testing.T) {
	t.Parallel()
	for _, story := range []string{"baas", "empathetic"} {
		t.Run(story, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(binary, "demo", story)
			cmd.Env = cleanEnv()
			cmd.Dir = t.TempDir()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("causeway demo %s: %v\nstdout:\n%s\nstderr:\n%s", story, err, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), "✓ all 5 steps produced what they should") {
				t.Errorf("the narration does not end in success:\n%s", stdout.String())
			}
		})
	}
}

// TestDemoCommandFailsWithExitOneAndSaysWhy: a story that cannot reach its
// server exits 1, its narration says what was expected and what came, and
// standard error has one line naming the step.
func TestDemoCommandFailsWithExitOneAndSaysWhy(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	tests := []struct {
		name       string
		args       []string
		env        []string
		wantStdout string
		wantStderr string
	}{
		{"unreachable server", []string{"demo", "baas", "--server", closed, "--admin-token", "x"}, nil,
			"expected: GET /bank/v1/status to answer 200", "causeway: demo baas failed at: the platform, as the bank runs it"},
		{"admin token from the environment", []string{"demo", "empathetic", "--server", closed}, []string{"CAUSEWAY_ADMIN_TOKEN=x"},
			"✗ FAILED", "causeway: demo empathetic failed at:"},
		{"no admin token", []string{"demo", "baas", "--server", closed}, nil, "", "needs the bank's admin token"},
		{"unknown story", []string{"demo", "heist"}, nil, "", `unknown story "heist"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, tt.args...)
			cmd.Env = cleanEnv(tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout does not say %q:\n%s", tt.wantStdout, stdout.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tt.wantStderr) {
				t.Errorf("stderr = %q, want one line with %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
