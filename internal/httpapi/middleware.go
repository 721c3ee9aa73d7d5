package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
)

type requestIDKey struct{}
type loggerKey struct{}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestLogger returns ctx carrying l, the logger handlers and error
// mapping use for this request.
func WithRequestLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// A caller may pass its own request id; anything that is not a short token
// is replaced, so ids stay safe to log and to echo.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func newRequestID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "req_" + hex.EncodeToString(b)
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
	body   *requestBody // nil without one
}

// SetReadDeadline sets the connection's read deadline while the request
// body is still being read, and does nothing once it has been read to its
// end: a deadline then would fire under the handler (see requestBody).
func (r *statusRecorder) SetReadDeadline(t time.Time) error {
	if r.body != nil && r.body.read.Load() {
		return nil
	}
	return http.NewResponseController(r.ResponseWriter).SetReadDeadline(t)
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines (SSE).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush passes flushes through for streaming responses.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// metrics are the HTTP request metrics, labelled by route pattern (never by
// raw path, which would explode the label space with ids).
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// Event streams last as long as their clients stay: they have a
	// gauge and a histogram of their own, and are not in duration.
	streamsOpen    *prometheus.GaugeVec
	streamDuration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_http_requests_total",
			Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "causeway_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method; event streams are in causeway_http_stream_duration_seconds instead.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		streamsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_http_streams_open",
			Help: "Event streams (Server-Sent Events) this node serves now, by route.",
		}, []string{"route"}),
		streamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "causeway_http_stream_duration_seconds",
			Help:    "How long event streams (Server-Sent Events) stayed open, by route.",
			Buckets: []float64{1, 10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration, m.streamsOpen, m.streamDuration)
	return m
}

// instrument wraps the router: request id, per-request logger, the
// request's state (see Streamed), the
// no-store headers of routes that answer with secrets (NoStore), body
// limit, panic recovery, access log, metrics, and the text rule (checkText), so
// bad text is refused before the gateway or any handler reads it. It must
// sit directly around the ServeMux, because the mux records the matched
// pattern on the request it is given, and the metrics read it from there.
//
// It is long because its steps are one middleware, in the order they wrap
// the request; split, that order would be spread over several functions.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		log := s.log // adds request_id from the context (LogRequestIDs)
		_, pattern := s.mux.Handler(r)
		if s.noStore[pattern] {
			// Before anything answers: the gateway's refusals and
			// replays, and the handler's errors, carry it too.
			setNoStore(w.Header())
		}
		state := &requestState{srv: s}
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		ctx = context.WithValue(ctx, requestStateKey{}, state)
		ctx = context.WithValue(ctx, routeKey{}, pattern)
		ctx = WithRequestLogger(ctx, log)
		addr := s.clientAddr(r)
		ctx = WithClientAddr(ctx, addr)
		// The bank-side changes this request makes name it in the audit trail.
		origin := audit.Origin{RequestID: id, ClientAddr: addrText(addr)}
		if d, ok := ConfirmedDecision(ctx); ok {
			origin.Confirms = d.ProposalID
		}
		ctx = audit.WithOrigin(ctx, origin)
		r = r.WithContext(ctx)
		if r.ContentLength > s.maxBody {
			WriteProblem(w, r, NewProblem(http.StatusRequestEntityTooLarge, "body_too_large",
				"request body exceeds "+strconv.FormatInt(s.maxBody, 10)+" bytes"))
			return
		}
		var body *requestBody
		if r.Body != nil {
			body = &requestBody{ReadCloser: http.MaxBytesReader(w, r.Body, s.maxBody), w: w}
			r.Body = body
		}
		rec := &statusRecorder{ResponseWriter: w, body: body}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(ctx, "panic", "panic", p, "path", r.URL.Path)
				if rec.status == 0 {
					WriteProblem(rec, r, causeway.Errorf(causeway.EINTERNAL, "internal", "an internal error occurred"))
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			s.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
			if state.streamed.Load() {
				s.metrics.streamDuration.WithLabelValues(route).Observe(elapsed.Seconds())
			} else {
				s.metrics.duration.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			log.Log(r.Context(), level, "request",
				"method", r.Method, "path", r.URL.Path, "route", route,
				"status", status, "bytes", rec.bytes, "duration_ms", float64(elapsed.Microseconds())/1000)
		}()
		if err := s.checkText(rec, r); err != nil {
			r.Pattern = pattern
			WriteProblem(rec, r, err)
			return
		}
		next.ServeHTTP(rec, r)
	})
}

// requestBody knows when the request body has been read to its end, and
// lifts the connection's read deadline then.
//
// huma bounds the reading of a body with a read deadline (BodyReadTimeout,
// 5 s) and leaves it set. Once a body is read, net/http keeps reading the
// connection in the background while the handler runs, and a deadline that
// fires under that read cancels the request's context and every later
// request's on the same keep-alive connection. That happened whenever
// middleware read the body before huma did (the gateway does, to compare
// idempotent requests) and the handler then ran longer than the deadline
// (an app's sandbox seeding, an SPI with a long deadline): the request's
// context was cancelled mid-way and each later call on the connection was
// answered 500 "context canceled". So a deadline is applied only while the
// body is still being read (see statusRecorder.SetReadDeadline).
type requestBody struct {
	io.ReadCloser
	w    http.ResponseWriter
	read atomic.Bool
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.read.Swap(true) {
		// The zero time is no deadline. A writer without a connection
		// (a test recorder) has nothing to lift.
		_ = http.NewResponseController(b.w).SetReadDeadline(time.Time{})
	}
	return n, err
}
