package httpapi

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server-Sent Events: responses that stay open for as long as the client
// likes (the event stream, the portal's live delivery log). They differ
// from requests in three ways this file owns:
//
//   - a stopping node ends them at once (EndStreams), each with a last
//     frame telling the client when to reconnect, so that a graceful
//     shutdown does not wait for clients that never hang up;
//   - their duration is not request latency: the metrics and the
//     gateway's analytics count them apart (Streamed);
//   - the node knows which are open and since when (OpenStreams).

// streamWriteTimeout bounds one write to a stream client; a client that
// does not read for that long is dropped.
const streamWriteTimeout = 30 * time.Second

// The last frame of a stream a stopping node ends asks the client to
// reconnect after a pause drawn from this range, so that a node's clients
// do not all reconnect at the same instant. By then the load balancer has
// taken the node out (--shutdown-delay), so they reach another node.
const (
	stopRetryMin = time.Second
	stopRetryMax = 4 * time.Second
)

// requestState travels in the context of every request instrument serves.
type requestState struct {
	srv      *Server
	streamed atomic.Bool
}

type requestStateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(requestStateKey{}).(*requestState)
	return st
}

// Streamed reports whether the request ctx belongs to was answered with an
// event stream (OpenEventStream): its duration is how long the client
// stayed, not how long the platform took to answer. The gateway's
// analytics read it once the handler has returned.
func Streamed(ctx context.Context) bool {
	st := stateFrom(ctx)
	return st != nil && st.streamed.Load()
}

// streams are a Server's open event streams.
type streams struct {
	mu       sync.Mutex
	open     map[*EventStream]struct{}
	stopping chan struct{}
	stopOnce sync.Once
}

// OpenStream is one open event stream, as OpenStreams reports it.
type OpenStream struct {
	// Route is the ServeMux pattern, such as "GET /v1/events/stream".
	Route string
	Since time.Time
}

// OpenStreams returns the event streams this node serves now.
func (s *Server) OpenStreams() []OpenStream {
	s.streams.mu.Lock()
	defer s.streams.mu.Unlock()
	out := make([]OpenStream, 0, len(s.streams.open))
	for e := range s.streams.open {
		out = append(out, OpenStream{Route: e.route, Since: e.since})
	}
	return out
}

// EndStreams ends every open event stream and every stream opened from
// now on, each with a last frame asking its client to reconnect after a
// pause. The platform calls it when its HTTP server starts shutting down
// (http.Server.RegisterOnShutdown), so that the drain waits only for
// requests that end by themselves. It may be called more than once.
func (s *Server) EndStreams() {
	s.streams.stopOnce.Do(func() { close(s.streams.stopping) })
}

// EventStream is one open Server-Sent Events response.
type EventStream struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	srv   *Server // nil when the request did not come through a Server
	route string
	since time.Time
	// stopping is closed when the node ends its streams; never, without
	// a Server.
	stopping <-chan struct{}
}

// OpenEventStream answers r with 200 and Content-Type text/event-stream,
// and a first frame with retry, the pause EventSource clients wait before
// they reconnect. Write the stream's messages with Send, stop when
// Stopping is closed or the request's context is done, and Close it.
// Nothing else may be written to w.
func OpenEventStream(w http.ResponseWriter, r *http.Request, retry time.Duration) *EventStream {
	e := &EventStream{w: w, rc: http.NewResponseController(w), route: r.Pattern, since: time.Now()}
	if st := stateFrom(r.Context()); st != nil {
		st.streamed.Store(true)
		e.srv = st.srv
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	// The events carry customers' data: no cache keeps them.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if e.srv != nil {
		e.stopping = e.srv.streams.stopping
		e.srv.streams.mu.Lock()
		e.srv.streams.open[e] = struct{}{}
		e.srv.streams.mu.Unlock()
		e.srv.metrics.streamsOpen.WithLabelValues(e.route).Inc()
	}
	e.Send(retryFrame(retry, ""))
	return e
}

// Send writes p (whole messages) and flushes it at once; it reports
// whether the client took it. A client that does not read within 30
// seconds is dropped.
func (e *EventStream) Send(p []byte) bool {
	// Deadlines are not supported by every ResponseWriter (httptest's
	// recorder); then writes simply block as long as the client does.
	_ = e.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := e.w.Write(p); err != nil {
		return false
	}
	return e.rc.Flush() == nil
}

// Stopping is closed when the node ends its streams (EndStreams): the
// handler returns, and Close sends the last frame.
func (e *EventStream) Stopping() <-chan struct{} { return e.stopping }

// Close ends the stream. When the node is stopping, it first sends the
// last frame: a retry field with a pause of one to four seconds, and a
// comment saying why, so the client reconnects (with Last-Event-ID) to
// another node.
func (e *EventStream) Close() {
	select {
	case <-e.stopping:
		pause := stopRetryMin + rand.N(stopRetryMax-stopRetryMin)
		e.Send(retryFrame(pause, "this node is shutting down; reconnect with Last-Event-ID"))
	default:
	}
	// Clear the deadline, so that it does not outlive the stream on a
	// connection the server may reuse.
	_ = e.rc.SetWriteDeadline(time.Time{})
	if e.srv != nil {
		e.srv.streams.mu.Lock()
		delete(e.srv.streams.open, e)
		e.srv.streams.mu.Unlock()
		e.srv.metrics.streamsOpen.WithLabelValues(e.route).Dec()
	}
}

// retryFrame is a message with only a retry field (in whole
// milliseconds) and, if given, a comment.
func retryFrame(retry time.Duration, comment string) []byte {
	b := fmt.Appendf(nil, "retry: %d\n", retry.Milliseconds())
	if comment != "" {
		b = fmt.Appendf(b, ": %s\n", comment)
	}
	return append(b, '\n')
}
