// Package spitest is a fintech's SPI endpoint for tests and benchmarks: a
// real HTTP server on 127.0.0.1 that records every call and can be told to
// answer, hang, fail with a status, send bad JSON or a huge body, or
// redirect.
package spitest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Mode is how the server behaves.
type Mode int

// Behaviours.
const (
	// Answer sends 200 with Behaviour.Body as JSON.
	Answer Mode = iota
	// Hang never answers: it waits until the caller gives up.
	Hang
	// HangAfterHeaders sends 200 and the start of a body, then waits
	// until the caller gives up.
	HangAfterHeaders
	// Status answers with Behaviour.Status and a small JSON error body.
	Status
	// BadJSON sends 200 with a body that is not JSON.
	BadJSON
	// Huge sends 200 with a valid JSON answer padded to Behaviour.Size
	// bytes, streamed without a Content-Length.
	Huge
	// Redirect sends 307 to a path of this server that would answer
	// Behaviour.Body; a client that follows it shows in RedirectHits.
	Redirect
)

// Behaviour tells the server what to do with the next calls.
type Behaviour struct {
	Mode   Mode
	Body   any
	Status int
	Size   int
}

// Request is a call the server received.
type Request struct {
	Header http.Header
	Body   []byte
	// Call is Body decoded: {id, extension_point, deadline, payload}.
	Call struct {
		ID             string          `json:"id"`
		ExtensionPoint string          `json:"extension_point"`
		Deadline       string          `json:"deadline"`
		Payload        json.RawMessage `json:"payload"`
	}
}

// Server is the test double.
type Server struct {
	// URL is where the SPI endpoint listens (path /spi).
	URL string

	srv           *httptest.Server
	mu            sync.Mutex
	behaviour     Behaviour
	requests      []Request
	record        bool
	hits          atomic.Int64
	redirectHits  atomic.Int64
	closed        chan struct{}
	closeOnce     sync.Once
	defaultAnswer any
}

// New starts a server that answers answer until told otherwise, and stops
// it when t ends.
func New(t testing.TB, answer any) *Server {
	s := &Server{closed: make(chan struct{}), record: true, defaultAnswer: answer,
		behaviour: Behaviour{Mode: Answer, Body: answer}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /spi", s.serve)
	mux.HandleFunc("POST /redirected", func(w http.ResponseWriter, r *http.Request) {
		s.redirectHits.Add(1)
		writeJSON(w, http.StatusOK, s.current().Body)
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL + "/spi"
	t.Cleanup(s.Close)
	return s
}

// Close stops the server, releasing hanging handlers first.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.srv.Close()
}

// Set changes the behaviour.
func (s *Server) Set(b Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.Body == nil {
		b.Body = s.defaultAnswer
	}
	s.behaviour = b
}

// Reply makes the server answer body with 200.
func (s *Server) Reply(body any) { s.Set(Behaviour{Mode: Answer, Body: body}) }

// Record turns recording of requests on (the default) or off, for
// benchmarks that make many calls.
func (s *Server) Record(on bool) {
	s.mu.Lock()
	s.record = on
	s.mu.Unlock()
}

func (s *Server) current() Behaviour {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.behaviour
}

// Hits is how many calls reached the SPI endpoint.
func (s *Server) Hits() int { return int(s.hits.Load()) }

// RedirectHits is how many calls followed a redirect.
func (s *Server) RedirectHits() int { return int(s.redirectHits.Load()) }

// Requests returns the calls received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Last returns the last call received; ok is false when there was none.
func (s *Server) Last() (r Request, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return Request{}, false
	}
	return s.requests[len(s.requests)-1], true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	if s.record {
		req := Request{Header: r.Header.Clone(), Body: body}
		json.Unmarshal(body, &req.Call)
		s.requests = append(s.requests, req)
	}
	b := s.behaviour
	s.mu.Unlock()

	switch b.Mode {
	case Answer:
		writeJSON(w, http.StatusOK, b.Body)
	case Hang:
		s.wait(r)
	case HangAfterHeaders:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"decision":`)
		http.NewResponseController(w).Flush()
		s.wait(r)
	case Status:
		writeJSON(w, b.Status, map[string]string{"error": http.StatusText(b.Status)})
	case BadJSON:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"decision": "approve", "score": 10,`)
	case Huge:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"decision":"approve","score":1,"reason":"`)
		http.NewResponseController(w).Flush() // no Content-Length: the client must cap the read itself
		chunk := strings.Repeat("x", 32<<10)
		for n := 0; n < b.Size; n += len(chunk) {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
		io.WriteString(w, `"}`)
	case Redirect:
		http.Redirect(w, r, s.srv.URL+"/redirected", http.StatusTemporaryRedirect)
	}
}

// wait blocks until the caller hangs up or the server closes.
func (s *Server) wait(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.closed:
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
