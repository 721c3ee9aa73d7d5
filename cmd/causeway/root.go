package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "causeway",
		Short:         "Causeway: APIs, events, SPIs and data partnering between a bank and its developers",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion(),
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return err
	})
	root.AddCommand(newServeCommand())
	root.AddCommand(newBenchCommand())
	root.AddCommand(newAgentCommand())
	root.AddCommand(newDataCommand())
	root.AddCommand(newDemoCommand())
	root.AddCommand(newOpenAPICommand())
	root.AddCommand(newOperatorCommand())
	return root
}

// envDefaults makes every flag of fs fall back to its environment variable
// (CAUSEWAY_ + upper-cased name with dashes as underscores) when the flag is
// not given on the command line.
func envDefaults(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		name := "CAUSEWAY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = e
			}
		}
	})
	return err
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, err
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
