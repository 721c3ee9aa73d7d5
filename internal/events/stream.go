package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/httpapi"
)

// streamRetry is the pause EventSource clients wait before reconnecting
// after a dropped connection.
const streamRetry = 3 * time.Second

// resetEvent is the name of the control message the stream sends first
// when it cannot resume where the client asked (see serveStream).
const resetEvent = "reset"

// serveStream is GET /v1/events/stream: the events the calling app may see,
// as Server-Sent Events, until the client goes away. Each event is
//
//	id: <event id>
//	data: <the CloudEvent, structured JSON>
//
// without an event field, so that EventSource's onmessage receives it; the
// CloudEvent's type says what it is. A ": ping" comment goes out every
// Heartbeat so proxies keep the connection open and dead clients are
// noticed.
//
// It resumes after the Last-Event-ID header or the after parameter (an
// event id or a pull cursor); without either it starts with the events
// published from now on. A position it cannot resume from (an id that is
// not among the retained events the app may see, or a cursor older than
// the oldest of them) is not an error, which EventSource clients treat as
// fatal: the stream starts at the oldest retained event, after a "reset"
// message saying so (see resetFrame).
//
// An app holding Options.StreamSlots' cap of streams is refused 429
// too_many_streams. A stopping node ends the stream with a last frame
// asking the client to reconnect after a pause (httpapi.EventStream).
func (s *Service) serveStream(w http.ResponseWriter, r *http.Request) {
	// The stream may be read from any web page that holds a credential
	// for it: a stream ticket in the URL, as EventSource sends no
	// Authorization header. Browsers send no ambient credential here (the
	// API takes no cookies), so allowing every origin lets a fintech's
	// page, served from its own origin, read the stream its back end got
	// a ticket for, and nothing else.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	ctx := r.Context()
	app, ok := auth.AppFrom(ctx)
	if !ok || app.ID == "" {
		httpapi.WriteProblem(w, r, errNoApp)
		return
	}
	if s.opts.StreamSlots != nil {
		// Each stream holds a bus consumer and a goroutine for as long as
		// the client likes: an app gets a few, not as many as it opens.
		release, err := s.opts.StreamSlots.Acquire(ctx, app.ID)
		if err != nil {
			httpapi.WriteProblem(w, r, err)
			return
		}
		defer release()
	}
	st, err := s.eventStream(ctx)
	if err != nil {
		httpapi.WriteProblem(w, r, err)
		return
	}
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("after")
	}
	start, reset, err := s.streamStart(ctx, st, app.ID, after)
	if err != nil {
		httpapi.WriteProblem(w, r, err)
		return
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		InactiveThreshold: consumerIdle,
	})
	if err != nil {
		httpapi.WriteProblem(w, r, bus.Classify(fmt.Errorf("events: stream: %w", err)))
		return
	}
	defer s.dropConsumer(st, cons)
	it, err := cons.Messages()
	if err != nil {
		httpapi.WriteProblem(w, r, bus.Classify(fmt.Errorf("events: stream: %w", err)))
		return
	}
	defer it.Stop()
	msgs, failed := pump(ctx, it)

	sse := httpapi.OpenEventStream(w, r, streamRetry)
	defer sse.Close()
	if reset != "" && !sse.Send(resetFrame(reset)) {
		return
	}
	s.send(ctx, sse, app.ID, msgs, failed)
}

// pump hands the consumer's messages over msgs until ctx is done, or its
// error over failed.
func pump(ctx context.Context, it jetstream.MessagesContext) (<-chan jetstream.Msg, <-chan error) {
	msgs := make(chan jetstream.Msg)
	failed := make(chan error, 1)
	go func() {
		for {
			m, err := it.Next()
			if err != nil {
				failed <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return msgs, failed
}

// send writes the events of msgs the app may see to sse, with a heartbeat
// while there are none, until the client goes, the node stops or the
// consumer fails.
func (s *Service) send(ctx context.Context, sse *httpapi.EventStream, appID string, msgs <-chan jetstream.Msg, failed <-chan error) {
	log := s.log.With("app_id", appID)
	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sse.Stopping():
			return
		case err := <-failed:
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				log.WarnContext(ctx, "stream ended: the bus consumer failed", "error", err.Error())
			}
			return
		case <-heartbeat.C:
			if !sse.Send([]byte(": ping\n\n")) {
				return
			}
		case m := <-msgs:
			env, err := FromMsg(m)
			if err != nil {
				continue
			}
			ok, err := s.vis.Visible(ctx, appID, env)
			if err != nil {
				// Skipping would lose the event; ending lets the client
				// resume from it with Last-Event-ID.
				log.WarnContext(ctx, "stream ended: visibility check failed", "event_id", env.ID, "error", err.Error())
				return
			}
			if ok && !sse.Send(frame(env)) {
				return
			}
		}
	}
}

// Reasons a reset message gives.
const (
	resetUnknownEvent = "unknown_event"
	resetExpired      = "events_expired"
)

// streamStart is the stream sequence a stream resuming after after starts
// at, and why it starts at the oldest retained event instead, if it does:
// after names no retained event the app may see (resetUnknownEvent; the
// answer is the same whether the id expired, is another app's or never
// existed), or is a cursor from before the oldest retained event
// (resetExpired).
func (s *Service) streamStart(ctx context.Context, st jetstream.Stream, appID, after string) (uint64, string, error) {
	state := st.CachedInfo().State
	oldest := max(state.FirstSeq, 1)
	if after == "" {
		return state.LastSeq + 1, "", nil
	}
	pos, err := s.position(ctx, st, appID, after)
	if causeway.ErrorCode(err) == "unknown_event" {
		return oldest, resetUnknownEvent, nil
	}
	if err != nil {
		return 0, "", err
	}
	if pos+1 < state.FirstSeq {
		return oldest, resetExpired, nil
	}
	return pos + 1, "", nil
}

// resetFrame is the message a stream sends first when it starts at the
// oldest retained event instead of where the client asked: a named event
// (EventSource's onmessage does not fire for it; listen for "reset"), with
// no id, so the client's last event id stays until an event arrives. The
// client may have missed events and will see some again: a client that
// keeps state reconciles it (GET /v1/events, or the resources
// themselves), and de-duplicates on event ids.
func resetFrame(reason string) []byte {
	detail := "the position to resume from is not among the retained events this app may see " +
		"(it expired, or it is not one of this app's events); the stream starts at the oldest retained event"
	if reason == resetExpired {
		detail = "events after the position to resume from have expired; the stream starts at the oldest retained event"
	}
	b, _ := json.Marshal(struct {
		Reason string `json:"reason"`
		Detail string `json:"detail"`
	}{reason, detail})
	return fmt.Appendf(nil, "event: %s\ndata: %s\n\n", resetEvent, b)
}

// frame encodes one event as a Server-Sent Events message without an event
// field: EventSource dispatches it to onmessage.
func frame(e *Envelope) []byte {
	var b bytes.Buffer
	b.WriteString("id: ")
	b.WriteString(e.ID)
	b.WriteByte('\n')
	// The body is compact JSON on one line; should it ever hold a line
	// break, each line becomes a data field and the client joins them.
	for line := range bytes.SplitSeq(e.Body, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimSuffix(line, []byte("\r")))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.Bytes()
}
