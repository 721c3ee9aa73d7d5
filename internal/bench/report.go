package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"text/tabwriter"

	"github.com/causewayhq/causeway/internal/store"
)

// Report is the outcome of one benchmark, in the JSON shape of the external
// contract, so runs can be compared across commits:
//
//	{"benchmark":"payments","figures":[{"name":"transfers_per_s","value":0,"unit":"1/s",
//	 "baseline":"raw_sqlite_commits_per_s","baseline_value":0,"ratio":0}],"go":"go1.26.8","cpus":2,
//	 "runtime":{"database":"sqlite","bus":"none"}}
//
// A report of a run against a running server (Options.Server) also has
// "target":"http://127.0.0.1:8080".
type Report struct {
	Benchmark string   `json:"benchmark"`
	Figures   []Figure `json:"figures"`
	Go        string   `json:"go"`   // the Go version that built the binary
	CPUs      int      `json:"cpus"` // GOMAXPROCS: the CPUs the run could use
	// Runtime is what the benchmark ran on: figures from the embedded
	// default and from the scale-out runtime are not comparable.
	Runtime Runtime `json:"runtime"`
	// Target is the base URL of the running server the benchmark measured
	// (Options.Server), whose own status named its runtime; empty when the
	// benchmark started what it measured in this process.
	Target string `json:"target,omitempty"`
}

// Runtime is the database and the bus a benchmark ran on.
type Runtime struct {
	// Database is "sqlite" (a file in a temporary directory) or
	// "postgres" (a fresh schema, with Options.DatabaseURL).
	Database string `json:"database"`
	// Bus is BusEmbedded, BusExternal or BusNone.
	Bus string `json:"bus"`
}

// Buses a benchmark can run on.
const (
	BusEmbedded = "embedded" // NATS JetStream inside the process
	BusExternal = "external" // the NATS of Options.NATSURL, under a fresh prefix
	BusNone     = "none"     // the benchmark runs no bus (nothing it measures publishes events)
)

// String names the runtime for the table, e.g. "PostgreSQL + external NATS".
func (rt Runtime) String() string {
	db := rt.Database
	switch db {
	case string(store.SQLite):
		db = "SQLite"
	case string(store.Postgres):
		db = "PostgreSQL"
	}
	if rt.Bus == BusNone || rt.Bus == "" {
		return db + ", no bus"
	}
	return db + " + " + rt.Bus + " NATS"
}

// Figure is one measured value beside its baseline, measured in the same
// run on the same machine.
type Figure struct {
	Name          string  `json:"name"`
	Value         float64 `json:"value"`
	Unit          string  `json:"unit"`
	Baseline      string  `json:"baseline"`
	BaselineValue float64 `json:"baseline_value"`
	// Ratio is Value / BaselineValue (0 when the baseline is 0).
	Ratio float64 `json:"ratio"`
}

// NewReport returns an empty report for the named benchmark run on rt,
// stamped with the Go version and the CPUs available to this process.
func NewReport(benchmark string, rt Runtime) *Report {
	// GOMAXPROCS rather than NumCPU: since Go 1.25 it follows the
	// container's CPU limit, which is what the run could actually use.
	return &Report{Benchmark: benchmark, Figures: []Figure{}, Go: runtime.Version(), CPUs: runtime.GOMAXPROCS(0), Runtime: rt}
}

// NewFigure returns a figure with its ratio to the baseline computed.
func NewFigure(name string, value float64, unit, baseline string, baselineValue float64) Figure {
	f := Figure{Name: name, Value: value, Unit: unit, Baseline: baseline, BaselineValue: baselineValue}
	if baselineValue != 0 {
		f.Ratio = value / baselineValue
	}
	return f
}

// WriteTable prints reports as one aligned text table: a title line per
// report naming the benchmark, what it ran on (after the server's URL when
// it measured one), the Go version and the CPUs, then one row per figure.
func WriteTable(w io.Writer, reports ...*Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		on := r.Runtime.String()
		if r.Target != "" {
			on = r.Target + ": " + on
		}
		fmt.Fprintf(tw, "%s on %s (%s, %d cpus)\n", r.Benchmark, on, r.Go, r.CPUs)
		fmt.Fprintln(tw, "figure\tvalue\tunit\tbaseline\tbaseline value\tratio")
		for _, f := range r.Figures {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
				f.Name, formatNumber(f.Value), f.Unit, f.Baseline, formatNumber(f.BaselineValue), formatNumber(f.Ratio))
		}
	}
	return tw.Flush()
}

// formatNumber keeps about three significant digits for small numbers and
// drops the fraction of large ones (a rate of 12345.678/s is 12346).
func formatNumber(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// WriteJSON writes reports as indented JSON: a single object when there is
// exactly one report, otherwise an array of report objects (so a file from
// `causeway bench payments` holds an object, and one from `causeway bench
// all` an array once more than one benchmark exists).
func WriteJSON(w io.Writer, reports ...*Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if len(reports) == 1 {
		return enc.Encode(reports[0])
	}
	if reports == nil {
		reports = []*Report{}
	}
	return enc.Encode(reports)
}
