package outbox_test

import (
	"context"
	"log/slog"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

func TestOnlyTheLeaseHolderPublishes(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		holder := e.relay(t, outbox.RelayOptions{NodeID: "node-a", LeaseTTL: time.Minute})
		other := e.relay(t, outbox.RelayOptions{NodeID: "node-b", LeaseTTL: time.Minute})
		if n := flush(t, holder); n != 0 || !holder.HoldsLease() {
			t.Fatalf("first Flush on an empty outbox: published %d, holds lease %v; want 0, true", n, holder.HoldsLease())
		}
		commit(t, e.db, event("payment.completed", 1), event("payment.completed", 2))

		if n := flush(t, other); n != 0 {
			t.Errorf("relay without the lease published %d events", n)
		}
		if other.HoldsLease() {
			t.Error("both relays hold the lease")
		}
		if n := pending(t, e.db); n != 2 {
			t.Errorf("Pending = %d, want 2", n)
		}
		if n := flush(t, holder); n != 2 {
			t.Errorf("lease holder published %d, want 2", n)
		}
		if n := streamMsgs(t, e.stream); n != 2 {
			t.Errorf("stream holds %d messages, want 2", n)
		}
	})
}

// TestAnotherRelayTakesOverWhenTheHolderStopsRenewing: a holder that dies
// without releasing (simulated by a Flush that is never followed by
// another) blocks publishing only until its lease expires.
func TestAnotherRelayTakesOverWhenTheHolderStopsRenewing(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		const ttl = 500 * time.Millisecond
		crashed := e.relay(t, outbox.RelayOptions{NodeID: "crashed", LeaseTTL: ttl})
		acquired := time.Now()
		flush(t, crashed)
		if !crashed.HoldsLease() {
			t.Fatal("first relay did not take the free lease")
		}
		commit(t, e.db, event("payment.completed", 1), event("payment.completed", 2))

		standby := e.relay(t, outbox.RelayOptions{NodeID: "standby", LeaseTTL: ttl, Interval: 20 * time.Millisecond})
		run(t, standby)
		standby.Notify()
		eventually(t, 15*time.Second, "standby publishes the backlog", func() bool { return pending(t, e.db) == 0 })
		if !standby.HoldsLease() {
			t.Error("standby published but does not report holding the lease")
		}
		var first int64
		if err := e.db.QueryRowContext(context.Background(), "SELECT min(published_at) FROM outbox_events").Scan(&first); err != nil {
			t.Fatal(err)
		}
		if expiry := acquired.Add(ttl); store.FromMicros(first).Before(expiry) {
			t.Errorf("standby published at %v, before the dead holder's lease expired at %v", store.FromMicros(first), expiry)
		}
		if n := streamMsgs(t, e.stream); n != 2 {
			t.Errorf("stream holds %d messages, want 2", n)
		}
	})
}

// TestStoppedRelayHandsOverTheLeaseAtOnce: a relay that shuts down cleanly
// releases its lease, so the standby publishes long before the lease would
// have expired.
func TestStoppedRelayHandsOverTheLeaseAtOnce(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		const ttl = time.Minute // far beyond the deadlines below
		opts := func(node string) outbox.RelayOptions {
			return outbox.RelayOptions{NodeID: node, LeaseTTL: ttl, Interval: 20 * time.Millisecond}
		}
		first := e.relay(t, opts("first"))
		stopFirst := run(t, first)
		eventually(t, 10*time.Second, "first relay takes the lease", first.HoldsLease)
		second := e.relay(t, opts("second"))
		run(t, second)

		commit(t, e.db, event("payment.completed", 1), event("payment.completed", 2))
		first.Notify()
		second.Notify()
		eventually(t, 10*time.Second, "first relay publishes", func() bool { return pending(t, e.db) == 0 })
		if second.HoldsLease() {
			t.Error("standby holds the lease while the first relay runs")
		}

		stopFirst()
		commit(t, e.db, event("payment.completed", 3))
		second.Notify()
		eventually(t, 10*time.Second, "second relay takes over", func() bool { return pending(t, e.db) == 0 })
		if !second.HoldsLease() {
			t.Error("second relay published without the lease")
		}
		if n := streamMsgs(t, e.stream); n != 3 {
			t.Errorf("stream holds %d messages, want 3", n)
		}
	})
}

// TestRunPublishesSoonAfterNotify: with a poll interval of an hour, only
// Notify can explain a prompt publish.
func TestRunPublishesSoonAfterNotify(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		r := e.relay(t, outbox.RelayOptions{Interval: time.Hour, LeaseTTL: time.Minute})
		commit(t, e.db, event("payment.completed", 1))
		run(t, r)
		eventually(t, 10*time.Second, "Run publishes the backlog on start", func() bool { return pending(t, e.db) == 0 })

		commit(t, e.db, event("payment.completed", 2))
		r.Notify()
		eventually(t, 10*time.Second, "Run publishes after Notify", func() bool { return pending(t, e.db) == 0 })
		if n := streamMsgs(t, e.stream); n != 2 {
			t.Errorf("stream holds %d messages, want 2", n)
		}
	})
}

func TestRunPrunesPublishedRowsPastRetention(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		r := e.relay(t, outbox.RelayOptions{
			Interval:      20 * time.Millisecond,
			Retention:     time.Nanosecond,
			PruneInterval: 20 * time.Millisecond,
		})
		commit(t, e.db, event("payment.completed", 1), event("payment.completed", 2))
		run(t, r)
		eventually(t, 10*time.Second, "published rows are pruned", func() bool { return rows(t, e.db) == 0 })
		if n := streamMsgs(t, e.stream); n != 2 {
			t.Errorf("stream holds %d messages, want 2: rows must be published before they are pruned", n)
		}
	})
}

// TestRunRetriesUntilTheDatabaseOrBusComesBack cuts the path to PostgreSQL
// or to NATS before the relay starts: Run logs the failures, keeps going,
// and publishes once the path is back.
func TestRunRetriesUntilTheDatabaseOrBusComesBack(t *testing.T) {
	tests := []struct {
		name string
		// open returns a database and bus, and the proxy in front of the
		// one to cut.
		open func(t *testing.T) (*store.DB, *bus.Bus, *testkit.Proxy)
	}{
		{"database down", func(t *testing.T) (*store.DB, *bus.Bus, *testkit.Proxy) {
			u := storetest.PostgresURL(t)
			proxy := testkit.NewProxy(t, testkit.HostPort(t, u))
			db, err := store.Open(context.Background(), store.Config{URL: withHost(t, u, proxy.Addr())})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db, bustest.OpenEmbedded(t, t.TempDir()), proxy
		}},
		{"bus down", func(t *testing.T) (*store.DB, *bus.Bus, *testkit.Proxy) {
			proxy := testkit.NewProxy(t, testkit.HostPort(t, testkit.NATS.URL(t)))
			b := bustest.OpenExternalURL(t, "nats://"+proxy.Addr(), bustest.Prefix())
			return storetest.OpenSQLite(t), b, proxy
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, b, proxy := tt.open(t)
			migrate(t, db)
			commit(t, db, event("payment.completed", 1), event("payment.completed", 2))

			var warnings atomic.Int64
			log := slog.New(countWarnings{testLogger(t).Handler(), &warnings})
			r := outbox.NewRelay(db, b, outbox.RelayOptions{Logger: log, Interval: 20 * time.Millisecond})
			proxy.Cut()
			run(t, r)
			eventually(t, 15*time.Second, "Run reports failing rounds", func() bool { return warnings.Load() >= 2 })
			proxy.Restore()

			eventually(t, 30*time.Second, "Run publishes after recovery", func() bool {
				n, err := outbox.Pending(context.Background(), db)
				return err == nil && n == 0
			})
			s, err := outbox.EnsureStream(context.Background(), b, outbox.StreamLimits{})
			if err != nil {
				t.Fatal(err)
			}
			if n := streamMsgs(t, s); n != 2 {
				t.Errorf("stream holds %d messages, want 2", n)
			}
		})
	}
}

// countWarnings counts log records at warning level or above.
type countWarnings struct {
	slog.Handler
	n *atomic.Int64
}

func (h countWarnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countWarnings) WithAttrs(attrs []slog.Attr) slog.Handler {
	return countWarnings{h.Handler.WithAttrs(attrs), h.n}
}

func (h countWarnings) WithGroup(name string) slog.Handler {
	return countWarnings{h.Handler.WithGroup(name), h.n}
}

func withHost(t *testing.T, raw, host string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = host
	return u.String()
}

// TestEventStreamTakesTheInstallationsLimits: the stream keeps events as
// long as the installation says, and the platform's configuration wins over
// an edit made on the NATS side (every start re-applies it).
func TestEventStreamTakesTheInstallationsLimits(t *testing.T) {
	for _, b := range buses {
		t.Run(b.name, func(t *testing.T) {
			bs := b.open(t)
			ctx := context.Background()
			limits := outbox.StreamLimits{MaxAge: 90 * 24 * time.Hour}
			s, err := outbox.EnsureStream(ctx, bs, limits)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.CachedInfo().Config.MaxAge; got != limits.MaxAge {
				t.Fatalf("MaxAge = %s, want %s", got, limits.MaxAge)
			}
			cfg := s.CachedInfo().Config
			cfg.MaxAge = time.Hour
			if _, err := bs.JetStream().UpdateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			s, err = outbox.EnsureStream(ctx, bs, limits)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.CachedInfo().Config.MaxAge; got != limits.MaxAge {
				t.Errorf("after an edit on the NATS side and a start, MaxAge = %s, want %s", got, limits.MaxAge)
			}
		})
	}
	for _, bad := range []outbox.StreamLimits{{MaxAge: -time.Hour}, {MaxAge: time.Minute}, {Replicas: 7}, {Replicas: -1}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("limits %+v are accepted", bad)
		}
	}
}

// TestNotifyOnAnotherNodeWakesTheLeaseHolder: the lease holder polls only
// every twenty minutes here (an hour's interval, LeaseTTL/3), so only the
// other node's Notify, carried over the bus, explains a prompt publish of
// an event that node committed.
func TestNotifyOnAnotherNodeWakesTheLeaseHolder(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		opts := func(node string) outbox.RelayOptions {
			return outbox.RelayOptions{NodeID: node, Interval: time.Hour, LeaseTTL: time.Hour}
		}
		holder := e.relay(t, opts("holder"))
		run(t, holder)
		eventually(t, 10*time.Second, "the holder takes the lease", holder.HoldsLease)
		other := e.relay(t, opts("other"))

		commit(t, e.db, event("payment.completed", 1))
		other.Notify()
		eventually(t, 10*time.Second, "the holder publishes the other node's event", func() bool { return pending(t, e.db) == 0 })
		if other.HoldsLease() {
			t.Error("the other node took the lease")
		}
	})
}
