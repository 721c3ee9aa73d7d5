package bench

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func sampleReport(name string) *Report {
	r := NewReport(name, Runtime{Database: "sqlite", Bus: BusNone})
	r.Figures = append(r.Figures,
		NewFigure("transfers_per_s", 1500, "1/s", "raw_sqlite_commits_per_s", 6000),
		NewFigure("transfer_latency_p50", 4.2, "ms", "raw_sqlite_commit_latency_p50", 0.7))
	return r
}

func equalReports(a, b *Report) bool { return reflect.DeepEqual(a, b) }

func TestNewFigureRatioIsValueOverBaseline(t *testing.T) {
	if f := NewFigure("x", 1500, "1/s", "y", 6000); f.Ratio != 0.25 {
		t.Errorf("ratio = %v, want 0.25", f.Ratio)
	}
	if f := NewFigure("x", 1500, "1/s", "", 0); f.Ratio != 0 {
		t.Errorf("ratio without a baseline = %v, want 0", f.Ratio)
	}
}

func TestWriteJSONIsOneObjectForOneReportAndAnArrayForSeveral(t *testing.T) {
	one, two := sampleReport("payments"), sampleReport("events")

	var buf bytes.Buffer
	if err := WriteJSON(&buf, one); err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(buf.Bytes(), &obj); err != nil {
		t.Fatalf("one report: %v\n%s", err, buf.String())
	}
	for _, key := range []string{"benchmark", "figures", "go", "cpus", "runtime"} {
		if _, ok := obj[key]; !ok {
			t.Errorf("report JSON has no %q: %s", key, buf.String())
		}
	}
	if rt, _ := obj["runtime"].(map[string]any); rt["database"] != "sqlite" || rt["bus"] != "none" {
		t.Errorf("runtime = %v, want sqlite and no bus", obj["runtime"])
	}
	fig := obj["figures"].([]any)[0].(map[string]any)
	for _, key := range []string{"name", "value", "unit", "baseline", "baseline_value", "ratio"} {
		if _, ok := fig[key]; !ok {
			t.Errorf("figure JSON has no %q: %s", key, buf.String())
		}
	}

	buf.Reset()
	if err := WriteJSON(&buf, one, two); err != nil {
		t.Fatal(err)
	}
	var back []*Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("two reports: %v\n%s", err, buf.String())
	}
	if len(back) != 2 || !equalReports(back[0], one) || !equalReports(back[1], two) {
		t.Errorf("round trip = %+v", back)
	}
}

func TestWriteTableAlignsColumns(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, sampleReport("payments")); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "payments on SQLite, no bus (go") {
		t.Fatalf("table =\n%s", buf.String())
	}
	// Every row's value column starts where the header's does.
	col := strings.Index(lines[1], "value")
	for _, l := range lines[2:] {
		if l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row %q is not aligned with header %q", l, lines[1])
		}
	}
	if !strings.Contains(lines[2], "1500") || !strings.Contains(lines[2], "0.250") {
		t.Errorf("row = %q, want value 1500 and ratio 0.250", lines[2])
	}
}

func TestRuntimeIsWhatTheOptionsNameForTheBenchmarksThatRunABus(t *testing.T) {
	const pg, nats = "postgres://db.example/causeway", "nats://nats.example:4222"
	for _, c := range []struct {
		opts    Options
		withBus bool
		want    Runtime
		title   string
	}{
		{Options{}, true, Runtime{"sqlite", BusEmbedded}, "SQLite + embedded NATS"},
		{Options{}, false, Runtime{"sqlite", BusNone}, "SQLite, no bus"},
		{Options{DatabaseURL: pg, NATSURL: nats}, true, Runtime{"postgres", BusExternal}, "PostgreSQL + external NATS"},
		// A benchmark without a bus ignores the NATS URL, and says so.
		{Options{DatabaseURL: pg, NATSURL: nats}, false, Runtime{"postgres", BusNone}, "PostgreSQL, no bus"},
		{Options{NATSURL: nats}, true, Runtime{"sqlite", BusExternal}, "SQLite + external NATS"},
	} {
		got := c.opts.runtime(c.withBus)
		if got != c.want || got.String() != c.title {
			t.Errorf("%+v with bus %v: runtime %+v %q, want %+v %q", c.opts, c.withBus, got, got, c.want, c.title)
		}
	}
}
