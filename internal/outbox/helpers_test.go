package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// env is one database and one bus, migrated and with the events stream.
type env struct {
	db     *store.DB
	bus    *bus.Bus
	stream jetstream.Stream
}

// The backends every test runs on: a fresh database and bus per test.
var (
	databases = []struct {
		name string
		open func(testing.TB) *store.DB
	}{
		{"sqlite", storetest.OpenSQLite},
		{"postgres", storetest.OpenPostgres},
	}
	buses = []struct {
		name string
		open func(testing.TB) *bus.Bus
	}{
		{"embedded", func(tb testing.TB) *bus.Bus { return bustest.OpenEmbedded(tb, tb.TempDir()) }},
		{"external", bustest.OpenExternal},
	}
)

// each runs fn on every combination of database (SQLite, PostgreSQL) and
// bus (embedded, external NATS), as subtests such as "sqlite/embedded",
// each with a fresh database and stream.
func each(t *testing.T, fn func(t *testing.T, e env)) {
	t.Helper()
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) {
			for _, b := range buses {
				t.Run(b.name, func(t *testing.T) {
					db, bs := d.open(t), b.open(t)
					migrate(t, db)
					s, err := outbox.EnsureStream(context.Background(), bs, outbox.StreamLimits{})
					if err != nil {
						t.Fatal(err)
					}
					fn(t, env{db: db, bus: bs, stream: s})
				})
			}
		})
	}
}

func migrate(t testing.TB, db *store.DB) {
	t.Helper()
	if err := outbox.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
}

// relay returns a relay on e whose logs go to the test's output.
func (e env) relay(t *testing.T, opts outbox.RelayOptions) *outbox.Relay {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	return outbox.NewRelay(e.db, e.bus, opts)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// run starts r.Run until the test ends, and returns a stop function that
// cancels it and waits for it to return.
func run(t *testing.T, r *outbox.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return within 15s of cancellation")
		}
	}
	t.Cleanup(stop)
	return stop
}

// event returns a payment event with a small JSON body.
func event(typ string, n int) outbox.Event {
	return outbox.Event{
		Type:    typ,
		Source:  "/causeway/sandbox-bank",
		Subject: fmt.Sprintf("pay_%03d", n),
		Data:    json.RawMessage(fmt.Sprintf(`{"id":"pay_%03d","amount":{"amount":"12.34","currency":"EUR"}}`, n)),
	}
}

// commit appends events in one committed transaction.
func commit(t testing.TB, db *store.DB, events ...outbox.Event) {
	t.Helper()
	ctx := context.Background()
	err := db.Tx(ctx, func(tx *sql.Tx) error { return outbox.Append(ctx, tx, events...) })
	if err != nil {
		t.Fatal(err)
	}
}

func pending(t testing.TB, db *store.DB) int {
	t.Helper()
	n, err := outbox.Pending(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func rows(t testing.TB, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM outbox_events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func flush(t testing.TB, r *outbox.Relay) int {
	t.Helper()
	n, err := r.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// streamMsgs is the number of messages the stream holds.
func streamMsgs(t testing.TB, s jetstream.Stream) uint64 {
	t.Helper()
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// received reads every message in the stream from the start.
func received(t testing.TB, s jetstream.Stream) []jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	want := int(streamMsgs(t, s))
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for len(msgs) < want {
		batch, err := c.Fetch(want-len(msgs), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		before := len(msgs)
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
		if len(msgs) == before {
			t.Fatalf("stream holds %d messages but only %d could be read", want, len(msgs))
		}
	}
	return msgs
}

// eventually polls cond until it holds or the deadline passes. Deadlines
// are generous: they bound a hung test, they do not measure latency.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
