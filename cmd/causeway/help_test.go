package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestHelpShowsEachFlagWithItsTypeAndBooleansPlain: in every command's
// help a flag's value placeholder is its type (pflag takes a backquoted
// word of the usage text as the placeholder instead), and a boolean flag
// is written plain, `--json`, not `--json[=true|false]`.
func TestHelpShowsEachFlagWithItsTypeAndBooleansPlain(t *testing.T) {
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
