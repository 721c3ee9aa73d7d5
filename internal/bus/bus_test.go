package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/bus/bustest"
	"github.com/causewayhq/causeway/internal/testkit"
)

func eventsStream(t *testing.T, b *bus.Bus) jetstream.Stream {
	t.Helper()
	s, err := b.EnsureStream(context.Background(), "events", jetstream.StreamConfig{
		Subjects:   []string{b.Subject("events", ">")},
		Storage:    jetstream.FileStorage,
		Duplicates: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPublishedMessagesReachADurableConsumerInOrder(t *testing.T) {
	bustest.Each(t, func(t *testing.T, b *bus.Bus) {
		ctx := context.Background()
		s := eventsStream(t, b)
		for i := range 5 {
			if err := b.Publish(ctx, b.Subject("events", "payment", "completed"), fmt.Sprintf("evt_%d", i), []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "sub1", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := c.Fetch(5, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for m := range batch.Messages() {
			got = append(got, string(m.Data()))
			m.Ack()
		}
		if fmt.Sprint(got) != "[0 1 2 3 4]" {
			t.Errorf("received %v, want [0 1 2 3 4]", got)
		}
	})
}

func TestRepublishWithSameMsgIDIsDeduplicated(t *testing.T) {
	bustest.Each(t, func(t *testing.T, b *bus.Bus) {
		ctx := context.Background()
		s := eventsStream(t, b)
		for range 3 {
			// A relay that crashed after publishing but before marking the
			// row sent publishes the same event again.
			if err := b.Publish(ctx, b.Subject("events", "x"), "evt_same", []byte("once")); err != nil {
				t.Fatal(err)
			}
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 1 {
			t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
		}
	})
}

func TestStreamsAreNamespacedByPrefix(t *testing.T) {
	bustest.Each(t, func(t *testing.T, b *bus.Bus) {
		if got := b.Stream("events"); got[len(got)-7:] != "_EVENTS" {
			t.Errorf("Stream(events) = %q", got)
		}
		if err := b.Health(context.Background()); err != nil {
			t.Errorf("Health: %v", err)
		}
	})
}

func TestEmbeddedBusKeepsMessagesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s := eventsStream(t, b)
	b.Publish(ctx, b.Subject("events", "a"), "evt_a", []byte("kept"))
	_ = s
	b.Close()

	b = bustest.OpenEmbedded(t, dir)
	s = eventsStream(t, b)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("after restart the stream holds %d messages, want 1", info.State.Msgs)
	}
	if !b.Embedded() {
		t.Error("Embedded() = false for an embedded bus")
	}
}

func TestEmbeddedBusListensOnlyWhenAsked(t *testing.T) {
	ln := testkit.FreePort(t)
	b, err := bus.Open(context.Background(), bus.Config{DataDir: t.TempDir(), ListenAddr: ln})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close) // after the client's cleanup, which runs first
	other := bustest.OpenExternalURL(t, "nats://"+ln, "causeway")
	if err := other.Health(context.Background()); err != nil {
		t.Errorf("a client could not reach the embedded server on %s: %v", ln, err)
	}
}

func TestOpenFailsClearlyWhenUnreachable(t *testing.T) {
	_, err := bus.Open(context.Background(), bus.Config{URL: "nats://127.0.0.1:1"})
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
}

// TestLostNATSConnectionIsUnavailableThenRecovers cuts the path to the
// external NATS: health and publishes report EUNAVAILABLE (503s for the
// API), and both work again once the path is back.
func TestLostNATSConnectionIsUnavailableThenRecovers(t *testing.T) {
	url := testkit.NATS.URL(t)
	proxy := testkit.NewProxy(t, testkit.HostPort(t, url))
	b := bustest.OpenExternalURL(t, "nats://"+proxy.Addr(), bustest.Prefix())
	eventsStream(t, b)
	ctx := context.Background()

	proxy.Cut()
	testkit.WaitFor(t, "health reports the cut", func() bool { return b.Health(ctx) != nil })
	if err := b.Health(ctx); causeway.ErrorKind(err) != causeway.EUNAVAILABLE {
		t.Errorf("Health while cut = %v, want unavailable", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := b.Publish(pctx, b.Subject("events", "x"), "evt_cut", []byte("x"))
	cancel()
	if causeway.ErrorKind(err) != causeway.EUNAVAILABLE {
		t.Errorf("Publish while cut = %v, want unavailable", err)
	}

	proxy.Restore()
	testkit.WaitFor(t, "health recovers", func() bool { return b.Health(ctx) == nil })
	if err := b.Publish(ctx, b.Subject("events", "x"), "evt_back", []byte("x")); err != nil {
		t.Errorf("Publish after recovery: %v", err)
	}
}

// Ensuring a stream that already has its settings leaves it alone: every
// node and relay ensures the stream as it starts, and a needless update
// rewrote the stream's configuration under consumers being created (a data
// race inside the NATS server). A change of settings is still applied. The
// server announces each update with an advisory, which is what is counted.
func TestEnsuringAStreamUpdatesItOnlyWhenItsSettingsChange(t *testing.T) {
	bustest.Each(t, func(t *testing.T, b *bus.Bus) {
		eventsStream(t, b)
		updates := make(chan struct{}, 10)
		sub, err := b.Conn().Subscribe("$JS.EVENT.ADVISORY.STREAM.UPDATED."+b.Stream("events"), func(*nats.Msg) { updates <- struct{}{} })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		b.Conn().Flush()
		eventsStream(t, b)
		eventsStream(t, b)
		cfg := jetstream.StreamConfig{Subjects: []string{b.Subject("events", ">")}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Hour}
		s, err := b.EnsureStream(context.Background(), "events", cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Duplicates; got != 2*time.Hour {
			t.Errorf("changed settings were not applied: duplicates %s", got)
		}
		// The advisory of the one real update marks the point by which any
		// earlier, needless one would have arrived.
		select {
		case <-updates:
		case <-time.After(10 * time.Second):
			t.Fatal("no advisory for the update that changed settings")
		}
		select {
		case <-updates:
			t.Error("a stream with unchanged settings was updated")
		case <-time.After(200 * time.Millisecond):
		}
	})
}
