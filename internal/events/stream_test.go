package events_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

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
			if m.id != want[i] || m.event != "branch.customer.arrived" {
				t.Errorf("message %d = id %q event %q, want %s", i, m.id, m.event, want[i])
			}
			var ce received
			if err := json.Unmarshal([]byte(m.data), &ce); err != nil || ce.ID != m.id || ce.SpecVersion != "1.0" {
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

func TestStreamRefusesUnknownLastEventIDAndMissingApp(t *testing.T) {
	e := sqliteEnv(t, events.Options{})
	publishMix(t, e, 1)
	res := e.request(t, http.MethodGet, "/v1/events/stream", http.Header{testAppHeader: {"app_a"}, "Last-Event-ID": {"evt_01jqz8s0d6e8f0g2h4j6k8m0n2"}}, nil)
	if code, _ := res.problem(t); res.status != http.StatusNotFound || code != "unknown_event" {
		t.Errorf("unknown Last-Event-ID = %d %s, want 404 unknown_event", res.status, res.body)
	}
	if res := e.request(t, http.MethodGet, "/v1/events/stream", nil, nil); res.status != http.StatusUnauthorized {
		t.Errorf("without an app = %d, want 401", res.status)
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
