package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/platform/platformtest"
)

// TestOperatorCreateMakesTheFirstOperatorWithTheAdminToken: `causeway
// operator create` creates an operator on a running node with the admin
// token from the data dir's file (during a rotation, its first token),
// prints a generated password once, and that password logs in.
func TestOperatorCreateMakesTheFirstOperatorWithTheAdminToken(t *testing.T) {
	t.Parallel()
	n := platformtest.Start(t, platformtest.Embedded.Config(t))
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "admin-token"), []byte(platformtest.AdminToken+",an-old-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (string, error) {
		root := newRootCommand()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetIn(strings.NewReader(stdin))
		root.SetArgs(append([]string{"operator", "create", "--server", n.URL}, args...))
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}

	out, err := run("", "--data-dir", dataDir, "--email", "first@bank.example", "--name", "First", "--role", "admin,viewer")
	if err != nil {
		t.Fatalf("operator create: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`password \(shown once[^:]*\): (\S+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "roles admin, viewer") {
		t.Fatalf("the output names no password or the wrong roles:\n%s", out)
	}
	op, err := n.Identity.OperatorLogIn(context.Background(), "first@bank.example", m[1], "")
	if err != nil {
		t.Fatalf("logging in with the printed password: %v", err)
	}
	if op.Roles.String() != "admin viewer" {
		t.Errorf("roles = %s", op.Roles)
	}

	// A password from standard input is not printed.
	const password = "read from standard input"
	out, err = run(password+"\n", "--admin-token", platformtest.AdminToken, "--email", "second@bank.example", "--role", "risk-officer", "--password-stdin")
	if err != nil || strings.Contains(out, password) || strings.Contains(out, "shown once") {
		t.Fatalf("operator create --password-stdin: %v\n%s", err, out)
	}
	if _, err := n.Identity.OperatorLogIn(context.Background(), "second@bank.example", password, ""); err != nil {
		t.Errorf("logging in with the password from standard input: %v", err)
	}

	// The node's refusals are shown, and so is a wrong token.
	if out, err := run("", "--admin-token", platformtest.AdminToken, "--email", "third@bank.example", "--role", "root"); err == nil {
		t.Errorf("an unknown role was accepted:\n%s", out)
	}
	if _, err := run("", "--admin-token", "not-the-token", "--email", "fourth@bank.example", "--role", "viewer"); err == nil ||
		!strings.Contains(err.Error(), "401") {
		t.Errorf("a wrong admin token = %v, want the node's 401", err)
	}
}
