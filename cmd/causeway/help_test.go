package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestHelpShowsEachFlagWithItsTypeAndBooleansPlain: in every command's
// help a flag's value placeholder is its type (pflag takes a backquoted
// word of the usage text as the placeholder instead), and a boolean flag
// is written plain, `--json`, not `--json[=true|false]`.
func TestHelpShowsEachFlagWithItsTypeAndBooleansPlain(t *testing.T) {
	t.Parallel()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				name, _ := pflag.UnquoteUsage(f)
				t.Errorf("%s --%s shows %q as its value instead of its type: its usage has a backquoted word", c.CommandPath(), f.Name, name)
			}
		})
		if usage := c.Flags().FlagUsages(); strings.Contains(usage, "[=") {
			t.Errorf("%s help shows an optional value:\n%s", c.CommandPath(), usage)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand())

	// What an operator reads.
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"serve", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if i := strings.Index(l, "--"); i >= 0 {
			if fields := strings.Fields(l[i:]); len(fields) > 0 {
				lines[fields[0]] = l
			}
		}
	}
	for flag, prefix := range map[string]string{"--data-agent": "--data-agent string ", "--help": "--help ",
		"--event-retention": "--event-retention duration ", "--signup-rate": "--signup-rate int "} {
		if l := lines[flag]; !strings.Contains(l, prefix) {
			t.Errorf("serve --help shows %s as %q, want %q", flag, strings.TrimSpace(l), prefix)
		}
	}
}

// TestConfigurationTableListsEveryServeFlag keeps the operators' table in
// docs/operations.md complete and true: one row per flag of `serve`, with
// its environment variable and, where the flag has one, its default.
func TestConfigurationTableListsEveryServeFlag(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Configuration\n")
	if !ok {
		t.Fatal("docs/operations.md has no ## Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	type row struct{ env, def string }
	rows := map[string]row{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`--") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`-")
		if _, dup := rows[name]; dup {
			t.Errorf("--%s has two rows", name)
		}
		rows[name] = row{env: strings.Trim(strings.TrimSpace(cells[2]), "`"), def: strings.TrimSpace(cells[3])}
	}

	serve := newServeCommand()
	serve.Flags().VisitAll(func(f *pflag.Flag) {
		r, ok := rows[f.Name]
		delete(rows, f.Name)
		if !ok {
			t.Errorf("--%s is missing from the configuration table", f.Name)
			return
		}
		if want := "CAUSEWAY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")); r.env != want {
			t.Errorf("--%s: the table says %s, the variable is %s", f.Name, r.env, want)
		}
		switch f.DefValue {
		case "", "0", "0s", "false":
			return // the table words "none" its own way
		}
		shown := ""
		if _, rest, ok := strings.Cut(r.def, "`"); ok {
			shown, _, _ = strings.Cut(rest, "`")
		}
		if f.Value.Type() == "duration" {
			a, errA := time.ParseDuration(shown)
			b, errB := time.ParseDuration(f.DefValue)
			if errA == nil && errB == nil && a == b {
				return
			}
		}
		if shown != f.DefValue {
			t.Errorf("--%s: the table's default is %q, the flag's %q", f.Name, r.def, f.DefValue)
		}
	})
	for name := range rows {
		t.Errorf("the configuration table lists --%s, which serve does not have", name)
	}
}
