package spi

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// errCallerGone marks an attempt cut short because the caller gave up: not
// the endpoint's fault, so the breaker does not count it.
var errCallerGone = errors.New("the caller gave up")

// breakers holds one circuit breaker per registration. An open breaker
// makes a dead endpoint cost nothing: calls fail at once, without a
// network call, until the breaker lets a probe through.
type breakers struct {
	mu       sync.Mutex
	byID     map[string]*gobreaker.TwoStepCircuitBreaker[struct{}]
	failures uint32
	openFor  time.Duration
	metrics  *metrics
	log      *slog.Logger
}

func newBreakers(failures uint32, openFor time.Duration, m *metrics, log *slog.Logger) *breakers {
	return &breakers{byID: map[string]*gobreaker.TwoStepCircuitBreaker[struct{}]{},
		failures: failures, openFor: openFor, metrics: m, log: log}
}

// get returns the breaker of registration id, creating it closed.
func (b *breakers) get(id string) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	b.mu.Lock()
	defer b.mu.Unlock()
	cb, ok := b.byID[id]
	if !ok {
		cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        id,
			MaxRequests: 1, // one probe at a time while half-open
			// Consecutive failures only: a flaky endpoint that mostly
			// answers keeps its breaker closed, and its policy handles
			// the odd failure.
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= b.failures },
			Timeout:     b.openFor,
			IsExcluded:  func(err error) bool { return errors.Is(err, errCallerGone) },
			OnStateChange: func(name string, from, to gobreaker.State) {
				open := 0.0
				if to != gobreaker.StateClosed {
					open = 1
				}
				b.metrics.breakerOpen.WithLabelValues(name).Set(open)
				b.log.Info("spi circuit breaker", "registration", name, "from", from.String(), "to", to.String())
			},
		})
		b.byID[id] = cb
	}
	return cb
}

// forget drops the breaker of a registration that was deactivated or
// deleted, so a reactivated one starts closed.
func (b *breakers) forget(id string) {
	b.mu.Lock()
	delete(b.byID, id)
	b.mu.Unlock()
	b.metrics.breakerOpen.DeleteLabelValues(id)
}

// Breaker states, as BreakerStates reports them.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// BreakerStates returns the state of this node's circuit breaker for each
// registration it has called: closed, open (calls fail at once) or
// half-open (one probe is let through). Breakers are per node: each node
// learns on its own that an endpoint is down, so on N nodes a dead
// endpoint costs up to N times the failures that trip one breaker before
// every node stops calling it. A registration absent from the map has not
// been called on this node since it started (or was reactivated).
func (s *Service) BreakerStates() map[string]string {
	return s.breakers.states()
}

func (b *breakers) states() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]string, len(b.byID))
	for id, cb := range b.byID {
		switch cb.State() {
		case gobreaker.StateOpen:
			out[id] = BreakerOpen
		case gobreaker.StateHalfOpen:
			out[id] = BreakerHalfOpen
		default:
			out[id] = BreakerClosed
		}
	}
	return out
}
