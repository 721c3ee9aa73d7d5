package webhooks_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/webhooks"
)

// BenchmarkDeliveries measures events delivered per second from the outbox
// to one unordered subscription (relay, stream, consumer, visibility,
// signing, POST, attempt record, ack) on SQLite and the embedded bus, next
// to its baseline: plain POSTs of the same body to the same receiver with
// as many in flight as the dispatcher allows.
func BenchmarkDeliveries(b *testing.B) {
	var received atomic.Int64
	rc := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		received.Add(1)
	}))
	// Connections opened, to show the dispatcher reuses them.
	var conns atomic.Int64
	rc.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	rc.Start()
	defer rc.Close()
	body := []byte(`{"specversion":"1.0","id":"evt_1","type":"payment.completed","source":"/causeway/sandbox-bank","data":{"amount":{"amount":"12.34","currency":"EUR"}}}`)
	const inFlight = 16

	b.Run("dispatcher", func(b *testing.B) {
		h := newHarness(b, storetest.OpenSQLite(b), bustest.OpenEmbedded(b, b.TempDir()), webhooks.Options{MaxInFlight: inFlight}, nil)
		h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}})
		received.Store(0)
		conns.Store(0)
		b.ResetTimer()
		start := time.Now()
		ctx := context.Background()
		for i := 0; i < b.N; i += 500 {
			evs := make([]outbox.Event, 0, 500)
			for j := i; j < min(i+500, b.N); j++ {
				evs = append(evs, payment(appA, "pay_bench", "12.34"))
			}
			if err := h.db.Tx(ctx, func(tx *sql.Tx) error { return outbox.Append(ctx, tx, evs...) }); err != nil {
				b.Fatal(err)
			}
		}
		eventually(b, time.Duration(b.N)*10*time.Millisecond+30*time.Second, "every event delivered", func() bool { return received.Load() >= int64(b.N) })
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
		b.ReportMetric(float64(conns.Load()), "conns")
	})

	b.Run("raw_post", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inFlight}}
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		start := time.Now()
		for range inFlight {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					resp, err := client.Post(rc.URL, "application/cloudevents+json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "posts/s")
	})
}
