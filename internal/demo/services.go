package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The demo's own services: what the developers run on their side. They
// listen on 127.0.0.1, so the platform must be allowed to call loopback
// addresses (--allow-private-targets 127.0.0.0/8).

// service is an HTTP server on 127.0.0.1.
type service struct {
	URL string
	srv *http.Server
}

// listen serves h on a free loopback port until the story ends.
func (r *run) listen(h http.Handler) (*service, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, r.fail("a free port on 127.0.0.1 for the demo's service", "%v", err)
	}
	s := &service{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	go s.srv.Serve(ln)
	r.cleanup(func(ctx context.Context) { s.srv.Shutdown(ctx) })
	return s, nil
}

// verifier checks Standard Webhooks signatures with a secret the platform
// gave when the subscription or registration was made. Until then it
// refuses everything with 503, which the platform retries.
type verifier struct {
	mu sync.Mutex
	wh *standardwebhooks.Webhook
}

func (v *verifier) setSecret(secret string) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.wh = wh
	v.mu.Unlock()
	return nil
}

// verify returns the body of a signed request, or the status to answer.
func (v *verifier) verify(req *http.Request) ([]byte, int, error) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	v.mu.Lock()
	wh := v.wh
	v.mu.Unlock()
	if wh == nil {
		return nil, http.StatusServiceUnavailable, errors.New("no signing secret yet")
	}
	if err := wh.Verify(body, req.Header); err != nil {
		return nil, http.StatusUnauthorized, err
	}
	return body, 0, nil
}

// arrival is one event a receiver accepted.
type arrival struct {
	Event cloudevents.Event
	At    time.Time
}

// receiver is a webhook endpoint: it verifies each delivery's signature,
// parses the CloudEvent, narrates it as it arrives and keeps it for the
// story to check. A retried delivery (same webhook-id) is kept once.
type receiver struct {
	name string
	log  *narrator
	verifier
	// describe, if set, adds a word on the event to the narration.
	describe func(cloudevents.Event) string

	mu       sync.Mutex
	events   []arrival
	seen     map[string]bool
	problems []string
}

func newReceiver(name string, log *narrator) *receiver {
	return &receiver{name: name, log: log, seen: map[string]bool{}}
}

func (h *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, status, err := h.verify(req)
	if err != nil {
		h.problem("%s refused a delivery (%d): %v", h.name, status, err)
		w.WriteHeader(status)
		return
	}
	var ev cloudevents.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.Validate() != nil {
		h.problem("%s got a delivery that is not a CloudEvent: %.200s", h.name, body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if id := req.Header.Get("webhook-id"); id != ev.ID() {
		h.problem("%s: webhook-id %s is not the event id %s", h.name, id, ev.ID())
	}
	h.mu.Lock()
	dup := h.seen[ev.ID()]
	if !dup {
		h.seen[ev.ID()] = true
		h.events = append(h.events, arrival{Event: ev, At: time.Now()})
	}
	h.mu.Unlock()
	if !dup {
		detail := ""
		if h.describe != nil {
			detail = h.describe(ev)
		}
		h.log.event("%s ⇐ %s %s%s (signature verified, webhook-id %s)", h.name, ev.Type(), ev.Subject(), detail, ev.ID())
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *receiver) problem(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.problems) < 20 {
		h.problems = append(h.problems, fmt.Sprintf(format, args...))
	}
}

// find returns the first accepted event that matches.
func (h *receiver) find(match func(cloudevents.Event) bool) (cloudevents.Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.events {
		if match(a.Event) {
			return a.Event, true
		}
	}
	return cloudevents.Event{}, false
}

// received lists the accepted events, in arrival order.
func (h *receiver) received() []arrival {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// troubles lists deliveries the receiver refused or found malformed.
func (h *receiver) troubles() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.problems)
}

// awaitEvent waits (bounded by the run's wait) until the receiver has
// accepted an event of type typ about subject, and returns it.
func (r *run) awaitEvent(h *receiver, typ, subject string) (cloudevents.Event, error) {
	var got cloudevents.Event
	match := func(e cloudevents.Event) bool { return e.Type() == typ && (subject == "" || e.Subject() == subject) }
	err := r.waitFor("event "+typ+" "+subject+" at "+h.name, func() (bool, error) {
		var ok bool
		got, ok = h.find(match)
		return ok, nil
	})
	if err != nil {
		if t := h.troubles(); len(t) > 0 {
			err.(*Failure).Got += "; the receiver saw: " + t[len(t)-1]
		}
		return got, err
	}
	return got, nil
}

// spiCall is a call from the platform to an SPI endpoint.
type spiCall struct {
	ID             string          `json:"id"`
	ExtensionPoint string          `json:"extension_point"`
	Deadline       time.Time       `json:"deadline"`
	Payload        json.RawMessage `json:"payload"`
}

// spiEndpoint is a developer's SPI endpoint: it verifies the platform's
// signature, decodes the call and answers with what answer returns.
type spiEndpoint struct {
	name string
	log  *narrator
	verifier
	answer func(spiCall) (any, error)

	mu    sync.Mutex
	calls int
	bad   []string
}

func (e *spiEndpoint) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, status, err := e.verify(req)
	if err != nil {
		e.mu.Lock()
		e.bad = append(e.bad, err.Error())
		e.mu.Unlock()
		e.log.event("%s refused a call (%d): %v", e.name, status, err)
		w.WriteHeader(status)
		return
	}
	var call spiCall
	if err := json.Unmarshal(body, &call); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	e.calls++
	e.mu.Unlock()
	answer, err := e.answer(call)
	if err != nil {
		e.log.event("%s could not answer: %v", e.name, err)
		w.WriteHeader(http.StatusUnprocessableEntity)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(answer)
}

func (e *spiEndpoint) hits() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls
}
