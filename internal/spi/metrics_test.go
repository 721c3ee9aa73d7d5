package spi_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/spi/spitest"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// metric returns the value of the series of family name whose labels
// include want (a counter's value, or a histogram's sample count).
func metric(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func TestMetricsCountOutcomesAndLatencyPerRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newService(t, storetest.OpenSQLite(t), func(o *spi.Options) { o.Registerer, o.BreakerFailures = reg, 2 })
	srv := spitest.New(t, approve(1, "ok"))
	r := bankReg(t, s, "app_a", core.PointFraudCheck, srv.URL, spi.Activation{OnFailure: spi.OnFailureStandIn})
	call(t, s, "")
	srv.Set(spitest.Behaviour{Mode: spitest.Status, Status: 500})
	call(t, s, "")
	call(t, s, "") // opens the breaker
	call(t, s, "") // skipped

	for outcome, want := range map[string]float64{spi.OutcomeAnswered: 1, spi.OutcomeStandIn: 2, spi.OutcomeSkippedBreakerOpen: 1} {
		got := metric(t, reg, "causeway_spi_invocations_total",
			map[string]string{"registration": r.ID, "extension_point": core.PointFraudCheck, "outcome": outcome})
		if got != want {
			t.Errorf("%s = %v, want %v", outcome, got, want)
		}
	}
	if got := metric(t, reg, "causeway_spi_invocation_duration_seconds", map[string]string{"registration": r.ID}); got != 3 {
		t.Errorf("latency samples = %v, want 3 (skipped calls excluded)", got)
	}
	if got := metric(t, reg, "causeway_spi_breaker_open", map[string]string{"registration": r.ID}); got != 1 {
		t.Errorf("breaker gauge = %v", got)
	}
	// A second Service on the same registry shares the collectors.
	newService(t, storetest.OpenSQLite(t), func(o *spi.Options) { o.Registerer = reg })
}
