package events_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/events"
)

// sseMessage is one Server-Sent Events message; comment lines are kept
// as they are.
type sseMessage struct {
	id, event, data string
	comments        []string
}

// sseClient reads a stream as app.
type sseClient struct {
	t      *testing.T
	res    *http.Response
	cancel context.CancelFunc
	lines  chan string
	done   chan struct{}
	once   sync.Once
}

func (e *env) connect(t *testing.T, app string, header http.Header, query string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/v1/events/stream"+query, nil)
	req.Header.Set(testAppHeader, app)
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		res.Body.Close()
		cancel()
		t.Fatalf("stream = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	c := &sseClient{t: t, res: res, cancel: cancel, lines: make(chan string, 64), done: make(chan struct{})}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			case <-c.done:
				return
			}
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) close() {
	c.once.Do(func() {
		close(c.done)
		c.cancel()
		c.res.Body.Close()
	})
}

// next returns the next message (an event, or only comments), within 10 s.
func (c *sseClient) next() sseMessage {
	c.t.Helper()
	var m sseMessage
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatal("the stream ended")
			}
			switch {
			case line == "":
				if m.id != "" || m.data != "" || len(m.comments) > 0 {
					return m
				}
			case strings.HasPrefix(line, ":"):
				m.comments = append(m.comments, line)
			case strings.HasPrefix(line, "id: "):
				m.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				m.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				m.data += strings.TrimPrefix(line, "data: ")
			}
		case <-timeout:
			c.t.Fatal("no message within 10s")
		}
	}
}

// nextEvent skips heartbeats.
func (c *sseClient) nextEvent() sseMessage {
	c.t.Helper()
	for {
		if m := c.next(); m.id != "" {
			return m
		}
	}
}

func TestStreamDeliversEventsAndResumesAfterLastEventID(t *testing.T) {
	eachBus(t, events.Options{Heartbeat: time.Hour}, func(t *testing.T, e *env) {
		e.access.grant("app_a", "cus_a")
		old := publishMix(t, e, 1) // before the stream: not sent
		e.waitFor(t, "app_a", 1)

		c := e.connect(t, "app_a", nil, "")
		want := publishMix(t, e, 2)
		var got []sseMessage
		for range 2 {
			got = append(got, c.nextEvent())
		}
		for i, m := range got {
			// No event field: EventSource's onmessage gets it, and the
			// CloudEvent says its type.
			if m.id != want[i] || m.event != "" {
				t.Errorf("message %d = id %q event %q, want %s without an event name", i, m.id, m.event, want[i])
			}
			var ce received
			if err := json.Unmarshal([]byte(m.data), &ce); err != nil || ce.ID != m.id || ce.SpecVersion != "1.0" || ce.Type != "branch.customer.arrived" {
				t.Errorf("message %d data is not its CloudEvent: %s (%v)", i, m.data, err)
			}
			if m.id == old[0] {
				t.Error("the stream sent an event from before it started")
			}
		}
		c.close()

		later := publishMix(t, e, 1)
		r := e.connect(t, "app_a", http.Header{"Last-Event-ID": {want[0]}}, "")
		for _, id := range []string{want[1], later[0]} {
			if m := r.nextEvent(); m.id != id {
				t.Errorf("after reconnecting: %q, want %s", m.id, id)
			}
		}
		r.close()

		q := e.connect(t, "app_a", nil, "?after="+want[1])
		if m := q.nextEvent(); m.id != later[0] {
			t.Errorf("with ?after: %q, want %s", m.id, later[0])
		}
	})
}

func TestStreamSendsHeartbeats(t *testing.T) {
	e := sqliteEnv(t, events.Options{Heartbeat: 50 * time.Millisecond})
	c := e.connect(t, "app_a", nil, "")
	for range 2 {
		m := c.next()
		if m.id != "" || len(m.comments) == 0 || m.comments[0] != ": ping" {
			t.Fatalf("message = %+v, want a ping", m)
		}
	}
}

// TestStreamResumesFromTheOldestEventWhenItCannotResume: EventSource
// clients give up for good on any answer but 200, so a Last-Event-ID the
// stream cannot resume after (unknown, another app's, or a cursor from
// before the oldest retained event) starts the stream at the oldest
// retained event, after a "reset" message that says so.
func TestStreamResumesFromTheOldestEventWhenItCannotResume(t *testing.T) {
	e := sqliteEnv(t, events.Options{Heartbeat: time.Hour})
	e.access.grant("app_a", "cus_a")
	e.access.grant("app_b", "cus_b")
	want := publishMix(t, e, 3)
	theirs := e.waitFor(t, "app_b", 3)

	for name, lastID := range map[string]string{
		"unknown id":      "evt_01jqz8s0d6e8f0g2h4j6k8m0n2",
		"another app's":   theirs[0].ID,
		"not an event id": strings.Repeat("x", 600),
	} {
		t.Run(name, func(t *testing.T) {
			c := e.connect(t, "app_a", http.Header{"Last-Event-ID": {lastID}}, "")
			reset := c.next()
			var why struct{ Reason, Detail string }
			if reset.event != "reset" || reset.id != "" || json.Unmarshal([]byte(reset.data), &why) != nil || why.Reason != "unknown_event" {
				t.Fatalf("first message = %+v, want a reset event without an id", reset)
			}
			for _, id := range want {
				if m := c.nextEvent(); m.id != id {
					t.Fatalf("after the reset: %q, want %s (the oldest events first)", m.id, id)
				}
			}
		})
	}

	t.Run("expired cursor", func(t *testing.T) {
		st, err := e.bus.JetStream().Stream(context.Background(), e.bus.Stream("events"))
		if err != nil {
			t.Fatal(err)
		}
		// Retention drops the first two messages (want[0] and app_b's).
		if err := st.Purge(context.Background(), jetstream.WithPurgeSequence(3)); err != nil {
			t.Fatal(err)
		}
		cursor := e.pull(t, "app_a", "?limit=1").NextCursor // now after want[1]
		c := e.connect(t, "app_a", nil, "?after="+cursor)
		if m := c.nextEvent(); m.id != want[2] {
			t.Errorf("a cursor still retained resumes at %q, want %s", m.id, want[2])
		}
		c.close()

		expired := base64.RawURLEncoding.EncodeToString([]byte("events:1")) // after the purged first message
		c = e.connect(t, "app_a", http.Header{"Last-Event-ID": {expired}}, "")
		reset := c.next()
		if reset.event != "reset" || !strings.Contains(reset.data, `"events_expired"`) {
			t.Fatalf("first message = %+v, want a reset for expired events", reset)
		}
		if m := c.nextEvent(); m.id != want[1] {
			t.Errorf("after the reset: %q, want %s, the oldest retained", m.id, want[1])
		}
	})

	if res := e.request(t, http.MethodGet, "/v1/events/stream", nil, nil); res.status != http.StatusUnauthorized {
		t.Errorf("without an app = %d, want 401", res.status)
	}
}

// TestStoppingNodeEndsStreamsWithARetryHint: when the node stops
// (EndStreams, called as its HTTP server shuts down), an open stream gets
// a last frame asking the client to reconnect after a pause, and ends; a
// stream opened while the node stops ends the same way at once.
func TestStoppingNodeEndsStreamsWithARetryHint(t *testing.T) {
	e := sqliteEnv(t, events.Options{Heartbeat: time.Hour})
	open := e.connect(t, "app_a", nil, "")
	if first := <-open.lines; first != "retry: 3000" {
		t.Fatalf("first line = %q", first)
	}
	if n := len(e.srv.OpenStreams()); n != 1 {
		t.Errorf("open streams = %d, want 1", n)
	}
	e.srv.EndStreams()
	for _, c := range []*sseClient{open, e.connect(t, "app_a", nil, "")} {
		var rest []string
		for l := range c.lines {
			rest = append(rest, l)
		}
		last := strings.Join(rest, "\n")
		if !regexp.MustCompile(`(?m)^retry: [1-4][0-9]{3}$`).MatchString(last) || !strings.Contains(last, ": this node is shutting down") {
			t.Errorf("the stream ended with:\n%s\nwant a last frame with a retry of 1 to 4 seconds", last)
		}
	}
	if n := len(e.srv.OpenStreams()); n != 0 {
		t.Errorf("open streams after the node stopped = %d", n)
	}
}

// TestFeedsLeaveNoConsumersBehind: every pull and every stream uses a
// consumer of its own and deletes it when done, so feeds cost the bus
// nothing between requests.
func TestFeedsLeaveNoConsumersBehind(t *testing.T) {
	eachBus(t, events.Options{}, func(t *testing.T, e *env) {
		e.access.grant("app_a", "cus_a")
		want := publishMix(t, e, 3)
		e.waitFor(t, "app_a", 3)
		e.pull(t, "app_a", "?after="+want[0])
		c := e.connect(t, "app_a", http.Header{"Last-Event-ID": {want[1]}}, "")
		if m := c.nextEvent(); m.id != want[2] {
			t.Errorf("stream sent %q, want %s", m.id, want[2])
		}
		c.close()
		st, err := e.bus.JetStream().Stream(context.Background(), e.bus.Stream("events"))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			info, err := st.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Consumers == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d consumers are left on the events stream", info.State.Consumers)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
