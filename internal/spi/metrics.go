package spi

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the invoker's Prometheus metrics, labelled per registration
// (there are few registrations, so the label space stays small).
type metrics struct {
	invocations *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	breakerOpen *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_spi_invocations_total",
			Help: "Attempts to reach SPI registrations, by registration, extension point and outcome.",
		}, []string{"registration", "extension_point", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "causeway_spi_invocation_duration_seconds",
			Help:    "Latency of calls made to SPI registrations (skipped calls excluded).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"registration", "extension_point"}),
		breakerOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_spi_breaker_open",
			Help: "1 while this node's circuit breaker for a registration is open or half-open, else 0.",
		}, []string{"registration"}),
	}
	if reg == nil {
		return m, nil
	}
	// A second Service on the same registry (tests, a restart in process)
	// shares the collectors already there.
	var err error
	if m.invocations, err = register(reg, m.invocations); err != nil {
		return nil, err
	}
	if m.latency, err = register(reg, m.latency); err != nil {
		return nil, err
	}
	if m.breakerOpen, err = register(reg, m.breakerOpen); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
