package spi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/spi/spitest"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// BenchmarkInvoke measures calls per second through the invoker (finding
// the registrations, signing, the deadline, schema checks, the breaker and
// the audit row) beside plain POSTs of the same body to the same endpoint,
// at the same concurrency.
func BenchmarkInvoke(b *testing.B) {
	srv := spitest.New(b, approve(3, "fine"))
	srv.Record(false)
	const parallelism = 4 // goroutines per GOMAXPROCS

	b.Run("invoker", func(b *testing.B) {
		s := newService(b, storetest.OpenSQLite(b))
		bankReg(b, s, "app_a", core.PointFraudCheck, srv.URL, spi.Activation{OnFailure: spi.OnFailureStandIn})
		payload := fraudPayload()
		b.SetParallelism(parallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				a, err := s.Call(context.Background(), core.ExtensionCall{Point: core.PointFraudCheck, AppID: "app_a", Payload: payload})
				if err != nil || !a.Answered || a.StandIn {
					b.Errorf("answer = %+v, %v", a, err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})

	b.Run("direct", func(b *testing.B) {
		body, _ := json.Marshal(map[string]any{"id": "inv_1", "extension_point": core.PointFraudCheck,
			"deadline": "2026-01-01T00:00:00.000Z", "payload": fraudPayload()})
		transport := loopback.Transport()
		transport.MaxIdleConnsPerHost = 64
		client := &http.Client{Transport: transport}
		defer client.CloseIdleConnections()
		b.SetParallelism(parallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := client.Post(srv.URL, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
}
