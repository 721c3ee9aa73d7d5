package events_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/causewayhq/causeway/internal/events"
)

// BenchmarkPublish measures Publish (catalog lookup, schema validation,
// outbox append and commit) on SQLite.
func BenchmarkPublish(b *testing.B) {
	e := sqliteEnv(b, events.Options{})
	data, _ := json.Marshal(arrival)
	ce := events.CloudEvent{Type: "branch.customer.arrived", Source: "/bench", Data: data}
	ctx := context.Background()
	for b.Loop() {
		if _, err := e.svc.Publish(ctx, ce); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPull measures reading the feed in full pages of visible events
// from the embedded bus; events/s is events returned per second.
func BenchmarkPull(b *testing.B) {
	e := sqliteEnv(b, events.Options{})
	e.access.grant("app_a", "cus_01jqz8r3k2m4n6p8q0s2t4v6w8")
	data, _ := json.Marshal(arrival)
	ctx := context.Background()
	const n = 2000
	for range n {
		if _, err := e.svc.Publish(ctx, events.CloudEvent{Type: "branch.customer.arrived", Source: "/bench", Data: data}); err != nil {
			b.Fatal(err)
		}
	}
	e.waitFor(b, "app_a", n)
	got := 0
	for b.Loop() {
		cursor := ""
		for {
			p, err := e.svc.Pull(ctx, "app_a", cursor, events.MaxPageSize)
			if err != nil {
				b.Fatal(err)
			}
			if len(p.Events) == 0 {
				break
			}
			got += len(p.Events)
			cursor = p.Cursor
		}
	}
	b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "events/s")
}
