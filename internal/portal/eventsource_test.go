package portal_test

import (
	"bufio"
	"context"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// These tests drive the event stream with the EventSource of a real
// browser, as a fintech's web page would: the page is served by the
// fintech's own server (another origin than the node), whose back end
// holds the app's credentials.

// fintechPage is the page's script: it keeps what EventSource delivers on
// window, for the test to read.
var fintechPage = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SolarWorld</title></head><body>
<script>
window.received = []; window.resets = []; window.errors = 0; window.opened = false;
var es = new EventSource({{.URL}});
es.onopen = function () { window.opened = true; };
es.onmessage = function (e) { window.received.push({lastEventId: e.lastEventId, event: JSON.parse(e.data)}); };
es.addEventListener("reset", function (e) { window.resets.push(JSON.parse(e.data)); });
es.onerror = function () { window.errors++; };
</script></body></html>`))

// servePage answers with the page, its EventSource on streamURL.
func servePage(w http.ResponseWriter, streamURL string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fintechPage.Execute(w, map[string]string{"URL": streamURL})
}

// receivedJS says whether the page's EventSource got, through onmessage,
// a CloudEvent of type typ about subject, under its own id.
func receivedJS(typ, subject string) string {
	return fmt.Sprintf(`window.received.some(function (m) { return m.event.type === %q && m.event.subject === %q && m.lastEventId === m.event.id; })`, typ, subject)
}

// testBrowserPageStreamsEventsWithATicket: the fintech's back end gets a
// stream ticket with the app's access token and puts it in the page; the
// page, on its own origin, opens EventSource on the node with it and
// receives the app's events through onmessage. The ticket works once. A
// page that asks to resume after an id the node does not know gets the
// reset message and then the events, instead of a fatal error.
func testBrowserPageStreamsEventsWithATicket(t *testing.T, n *platformtest.Node) {
	ctx := tab(t, 2*time.Minute)
	tok := eventsApp(t, n, "eventsource@solarworld.example")

	var mu sync.Mutex
	var tickets []string
	fintech := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		ticket := streamTicket(t, n.URL, tok)
		mu.Lock()
		tickets = append(tickets, ticket)
		mu.Unlock()
		u := n.URL + "/v1/events/stream?ticket=" + url.QueryEscape(ticket)
		if after := r.URL.Query().Get("after"); after != "" {
			u += "&after=" + url.QueryEscape(after)
		}
		servePage(w, u)
	}))
	defer fintech.Close()
	if fintech.URL == n.URL {
		t.Fatal("the page must come from another origin than the node")
	}

	navigate(t, ctx, fintech.URL+"/")
	waitFor(t, ctx, "the EventSource to open", `window.opened`, 30*time.Second)
	customer := createCustomer(t, n.URL, tok)
	waitFor(t, ctx, "customer.created through onmessage", receivedJS("customer.created", customer), 30*time.Second)

	mu.Lock()
	used := tickets[0]
	mu.Unlock()
	if res, _ := testkit.Fetch(t, n.URL+"/v1/events/stream?ticket="+url.QueryEscape(used), nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the page's ticket a second time = %d, want 401", res.StatusCode)
	}

	// An unknown position: 200, a reset, then the oldest retained events.
	navigate(t, ctx, fintech.URL+"/?after=evt_01jqz8s0d6e8f0g2h4j6k8m0n2")
	waitFor(t, ctx, "the events after the reset", receivedJS("customer.created", customer), 30*time.Second)
	if got := eval[string](t, ctx, `window.resets.map(function (r) { return r.reason; }).join()`); got != "unknown_event" {
		t.Errorf("reset messages = %q, want one unknown_event", got)
	}
	if errs := eval[int](t, ctx, `window.errors`); errs != 0 {
		t.Errorf("EventSource reported %d errors", errs)
	}
}

// testBrowserReconnectsAfterAnExpiredLastEventID: a page reads the stream
// through its own back end (same origin), which adds the app's token.
// When the connection drops, the browser's EventSource reconnects with
// Last-Event-ID; the event it names has meanwhile left the node's event
// log. The node answers 200 with the reset message, and the page keeps
// receiving.
func testBrowserReconnectsAfterAnExpiredLastEventID(t *testing.T, n *platformtest.Node) {
	ctx := tab(t, 2*time.Minute)
	tok := eventsApp(t, n, "reconnect@solarworld.example")

	var mu sync.Mutex
	var lastIDs []string
	cut := make(chan struct{}, 1)
	stop := make(chan struct{}) // the test is over: end the stream the browser holds
	fintech := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			servePage(w, "/events")
			return
		case "/events":
		default:
			http.NotFound(w, r)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", n.URL+"/v1/events/stream", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if id := r.Header.Get("Last-Event-ID"); id != "" {
			req.Header.Set("Last-Event-ID", id)
			mu.Lock()
			lastIDs = append(lastIDs, id)
			mu.Unlock()
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
		w.WriteHeader(res.StatusCode)
		chunks := make(chan []byte)
		go func() {
			defer close(chunks)
			buf := make([]byte, 4096)
			for {
				k, err := res.Body.Read(buf)
				if k > 0 {
					chunks <- append([]byte(nil), buf[:k]...)
				}
				if err != nil {
					return
				}
			}
		}()
		for {
			select {
			case b, ok := <-chunks:
				if !ok {
					return
				}
				w.Write(b)
				w.(http.Flusher).Flush()
			case <-cut:
				// The connection drops; reconnect soon (a test's pause,
				// not the node's three seconds).
				w.Write([]byte("retry: 100\n\n"))
				return
			case <-r.Context().Done():
				return
			case <-stop:
				return
			}
		}
	}))
	defer fintech.Close()
	defer close(stop)

	navigate(t, ctx, fintech.URL+"/")
	waitFor(t, ctx, "the EventSource to open", `window.opened`, 30*time.Second)
	first := createCustomer(t, n.URL, tok)
	waitFor(t, ctx, "the first customer.created", receivedJS("customer.created", first), 30*time.Second)
	lastID := eval[string](t, ctx, `window.received[window.received.length - 1].lastEventId`)

	// The event the browser saw last leaves the event log (retention).
	forgetEvent(t, n, lastID)
	cut <- struct{}{}
	second := createCustomer(t, n.URL, tok)
	waitFor(t, ctx, "the next customer.created after reconnecting", receivedJS("customer.created", second), 30*time.Second)
	if got := eval[string](t, ctx, `window.resets.map(function (r) { return r.reason; }).join()`); got != "unknown_event" {
		t.Errorf("reset messages = %q, want one unknown_event", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lastIDs) != 1 || lastIDs[0] != lastID {
		t.Errorf("the browser reconnected with Last-Event-ID %q, want [%s]", lastIDs, lastID)
	}
}

// forgetEvent deletes the event with id from the node's event log, as
// retention would.
func forgetEvent(t *testing.T, n *platformtest.Node, id string) {
	t.Helper()
	bg := context.Background()
	st, err := n.Bus.JetStream().Stream(bg, n.Bus.Stream("events"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(bg)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0; seq-- {
		m, err := st.GetMsg(bg, seq)
		if err != nil {
			continue
		}
		if m.Header.Get(jetstream.MsgIDHeader) == id {
			if err := st.DeleteMsg(bg, seq); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("event %s is not in the event log", id)
}

// eventsApp is an access token of a new sandbox app that onboards
// customers and reads events.
func eventsApp(t *testing.T, n *platformtest.Node, email string) string {
	t.Helper()
	_, _, clientID, secret := sandboxApp(t, n, email, "customers:write", "events:read")
	return appToken(t, n.URL, clientID, secret)
}

// createCustomer onboards a customer as the app and returns its id.
func createCustomer(t *testing.T, base, token string) string {
	t.Helper()
	var c struct{ ID string }
	if st := api(t, "POST", base+"/v1/customers", token, map[string]any{
		"type": "person", "name": "Maria Jansen", "date_of_birth": "1980-02-29", "email": "maria@example.com",
		"address": map[string]any{"line1": "Zonnelaan 7", "city": "Utrecht", "postcode": "3511 AB", "country": "NL"},
	}, &c); st != http.StatusCreated {
		t.Fatalf("create customer: %d", st)
	}
	return c.ID
}

// streamTicket gets a stream ticket with an app's access token.
func streamTicket(t *testing.T, base, token string) string {
	t.Helper()
	var tk struct{ Ticket string }
	if st := api(t, "POST", base+"/v1/events/stream-tickets", token, nil, &tk); st != http.StatusCreated || tk.Ticket == "" {
		t.Fatalf("stream ticket: %d", st)
	}
	return tk.Ticket
}

// goStream is an open event stream read by a Go client.
type goStream struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// openStream opens GET /v1/events/stream with query (which must carry
// the credential) and returns once the first frame arrived.
func openStream(t *testing.T, base, query string) *goStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events/stream"+query, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		cancel()
		res.Body.Close()
		t.Fatalf("stream: %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "retry: ") {
		cancel()
		t.Fatalf("stream opened with %q", sc.Text())
	}
	s := &goStream{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer res.Body.Close()
		io.Copy(io.Discard, res.Body)
	}()
	return s
}

func (s *goStream) close() {
	s.cancel()
	<-s.done
}
