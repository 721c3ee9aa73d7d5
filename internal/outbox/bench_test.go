package outbox_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/causewayhq/causeway/internal/outbox"
)

// BenchmarkRelay measures the relay's throughput: b.N events are appended
// (untimed, 500 per transaction), then one Flush publishes them all and marks
// them; events/s is b.N over the Flush time. Run it with a fixed count, e.g.
// -benchtime=20000x, so the untimed appends stay bounded.
func BenchmarkRelay(b *testing.B) {
	for _, d := range databases {
		for _, bb := range buses {
			b.Run(d.name+"/"+bb.name, func(b *testing.B) {
				ctx := context.Background()
				db, bs := d.open(b), bb.open(b)
				migrate(b, db)
				if _, err := outbox.EnsureStream(ctx, bs, outbox.StreamLimits{}); err != nil {
					b.Fatal(err)
				}
				r := outbox.NewRelay(db, bs, outbox.RelayOptions{Logger: slog.New(slog.DiscardHandler)})
				batch := make([]outbox.Event, 0, 500)
				for i := range b.N {
					batch = append(batch, event("transaction.booked", i))
					if len(batch) == cap(batch) || i == b.N-1 {
						commit(b, db, batch...)
						batch = batch[:0]
					}
				}
				b.ResetTimer()
				n, err := r.Flush(ctx)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if n != b.N {
					b.Fatalf("Flush published %d, want %d", n, b.N)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
