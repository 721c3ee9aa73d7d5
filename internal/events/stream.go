package events

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/httpapi"
)

// writeTimeout bounds one write to a stream client; a client that does not
// read for that long is dropped.
const writeTimeout = 30 * time.Second

// serveStream is GET /v1/events/stream: the events the calling app may see,
// as Server-Sent Events, until the client goes away. Each event is
//
//	id: <event id>
//	event: <event type>
//	data: <the CloudEvent, structured JSON>
//
// It resumes after the Last-Event-ID header or the after parameter (an
// event id or a pull cursor); without either it starts with the events
// published from now on. A ": ping" comment goes out every Heartbeat so
// proxies keep the connection open and dead clients are noticed. An app
// holding Options.StreamSlots' cap of streams is refused 429
// too_many_streams.
func (s *Service) serveStream(w http.ResponseWriter, r *http.Request) {
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
	start := st.CachedInfo().State.LastSeq + 1
	if after != "" {
		pos, err := s.position(ctx, st, app.ID, after)
		if err != nil {
			httpapi.WriteProblem(w, r, err)
			return
		}
		start = pos + 1
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
	it, err := cons.Messages()
	if err != nil {
		httpapi.WriteProblem(w, r, bus.Classify(fmt.Errorf("events: stream: %w", err)))
		return
	}
	defer s.dropConsumer(st, cons)
	defer it.Stop()

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

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	sse := &sseWriter{w: w, rc: rc}
	defer sse.done()
	// retry: tells EventSource how long to wait before reconnecting.
	if !sse.write([]byte("retry: 3000\n\n")) {
		return
	}
	log := s.log.With("app_id", app.ID)
	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-failed:
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				log.Warn("events: stream ended: the bus consumer failed", "error", err.Error())
			}
			return
		case <-heartbeat.C:
			if !sse.write([]byte(": ping\n\n")) {
				return
			}
		case m := <-msgs:
			env, err := FromMsg(m)
			if err != nil {
				continue
			}
			ok, err := s.vis.Visible(ctx, app.ID, env)
			if err != nil {
				// Skipping would lose the event; ending lets the client
				// resume from it with Last-Event-ID.
				log.Warn("events: stream ended: visibility check failed", "event_id", env.ID, "error", err.Error())
				return
			}
			if ok && !sse.write(frame(env)) {
				return
			}
		}
	}
}

// frame encodes one event as a Server-Sent Events message.
func frame(e *Envelope) []byte {
	var b bytes.Buffer
	b.WriteString("id: ")
	b.WriteString(e.ID)
	b.WriteString("\nevent: ")
	b.WriteString(e.Type)
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

// sseWriter writes and flushes stream messages, each within writeTimeout.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// write sends p at once and reports whether the client took it.
func (s *sseWriter) write(p []byte) bool {
	// Deadlines are not supported by every ResponseWriter (httptest's
	// recorder); then writes simply block as long as the client does.
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.w.Write(p); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}

// done clears the write deadline, so that it does not outlive the stream
// on a connection the server may reuse.
func (s *sseWriter) done() { _ = s.rc.SetWriteDeadline(time.Time{}) }
