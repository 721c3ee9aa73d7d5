package webhooks

import "github.com/prometheus/client_golang/prometheus"

// metrics are the dispatcher's Prometheus metrics.
type metrics struct {
	attempts *prometheus.CounterVec
	latency  prometheus.Histogram
	disabled prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_webhook_attempts_total",
			Help: "Webhook delivery attempts, by origin and outcome (succeeded, failed, dead).",
		}, []string{"origin", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "causeway_webhook_attempt_duration_seconds",
			Help:    "Time from sending a webhook to reading the start of the answer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
		}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_webhook_subscriptions_disabled_total",
			Help: "Subscriptions the platform disabled (410 Gone, or failing too long).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.attempts, m.latency, m.disabled} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
