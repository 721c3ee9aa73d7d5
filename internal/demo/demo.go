// Package demo runs the two stories Causeway must carry end to end, as
// narrated, self-checking programs: Banking as a Service (SolarWorld) and
// Empathetic banking. `causeway demo baas|empathetic` runs them against an
// embedded node or a running one, and the end-to-end tests run the same
// code against test nodes on both runtimes.
//
// A story plays every part through the platform's public contract only:
// the fintech developers and their apps (the /v1 API with OAuth2 client
// credentials, mostly through the Go SDK), the bank (the /bank/v1 API with
// the admin token), and the developers' own back ends (small HTTP services
// on 127.0.0.1: webhook receivers that verify Standard Webhooks signatures,
// SPI endpoints). Each step checks what came back; the first step that did
// not produce what it should ends the story with a *Failure saying what was
// expected and what came.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Target is the platform a story runs against.
type Target struct {
	// URL is the platform's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// AdminToken is the bank admin token: the stories act as the bank
	// (publishing events, granting customers, approving data access,
	// activating SPIs) with it.
	AdminToken string
}

// Options tune a run.
type Options struct {
	// Out receives the narration; nil means io.Discard.
	Out io.Writer
	// Wait bounds each wait for something asynchronous: an event to
	// arrive, dataset content to be prepared. Default 30 s.
	Wait time.Duration
	// Timeout bounds the whole story. Default 5 min.
	Timeout time.Duration
}

// Failure is a step that did not produce what it should.
type Failure struct {
	Step     string // the step's title
	Expected string
	Got      string
}

func (f *Failure) Error() string {
	return fmt.Sprintf("step %q failed: expected %s; got %s", f.Step, f.Expected, f.Got)
}

// Stories are the demos by name, as `causeway demo <name>` knows them.
var Stories = map[string]func(context.Context, Target, Options) error{
	"baas":       BaaS,
	"empathetic": Empathetic,
}

// step is one narrated step of a story.
type step struct {
	title string
	run   func() error
}

// run is one story in progress: the narration, the HTTP client, the step
// being run and what to undo at the end.
type run struct {
	ctx    context.Context
	target Target
	wait   time.Duration
	log    *narrator
	hc     *http.Client
	// suffix makes this run's e-mail addresses and names unique, so that
	// runs against a shared server do not collide.
	suffix   string
	current  string
	cleanups []func(context.Context)
	cancel   context.CancelFunc
}

func begin(ctx context.Context, title string, t Target, o Options) *run {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Wait <= 0 {
		o.Wait = 30 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	b := make([]byte, 3)
	rand.Read(b)
	r := &run{
		ctx:    ctx,
		cancel: cancel,
		target: Target{URL: strings.TrimRight(t.URL, "/"), AdminToken: t.AdminToken},
		wait:   o.Wait,
		log:    newNarrator(o.Out),
		hc:     &http.Client{Timeout: 30 * time.Second},
		suffix: hex.EncodeToString(b),
	}
	r.log.title(title)
	return r
}

// steps runs the steps in order, stopping at the first failure, then undoes
// what the story left on the platform (webhooks, SPI registrations).
func (r *run) steps(steps ...step) error {
	defer r.cancel()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := len(r.cleanups) - 1; i >= 0; i-- {
			r.cleanups[i](ctx)
		}
	}()
	for i, s := range steps {
		r.current = s.title
		r.log.step(i, len(steps)-1, s.title)
		if err := s.run(); err != nil {
			var f *Failure
			if !errors.As(err, &f) {
				f = &Failure{Step: s.title, Expected: "the step to complete", Got: err.Error() + r.interrupted()}
			}
			r.log.failed(f)
			return f
		}
	}
	r.log.done(len(steps) - 1)
	return nil
}

// fail is the failure of the current step.
func (r *run) fail(expected string, got string, args ...any) error {
	return &Failure{Step: r.current, Expected: expected, Got: fmt.Sprintf(got, args...)}
}

// check fails the current step unless ok.
func (r *run) check(ok bool, expected string, got string, args ...any) error {
	if ok {
		return nil
	}
	return r.fail(expected, got, args...)
}

// cleanup registers fn to run when the story ends, however it ends.
func (r *run) cleanup(fn func(context.Context)) { r.cleanups = append(r.cleanups, fn) }

// admin is the bank's credential.
func (r *run) admin() string { return r.target.AdminToken }

// call sends a JSON request to the platform with a bearer token (an app's
// access token, a developer token or the admin token) and decodes the JSON
// answer into out. An answer other than want is a Failure of the current
// step that quotes the problem the platform sent.
func (r *run) call(method, path, token string, body any, want int, out any) error {
	_, err := r.callHeaders(method, path, token, body, want, out, nil)
	return err
}

func (r *run) callHeaders(method, path, token string, body any, want int, out any, headers map[string]string) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(r.ctx, method, r.target.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	r.log.line("  → %s %s", method, path)
	res, err := r.hc.Do(req)
	if err != nil {
		return nil, r.fail(fmt.Sprintf("%s %s to answer %d", method, path, want), "no answer: %v%s", err, r.interrupted())
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, r.fail(fmt.Sprintf("%s %s to answer %d", method, path, want), "a broken answer: %v", err)
	}
	r.log.http(method, path, res.StatusCode)
	if res.StatusCode != want {
		return nil, r.fail(fmt.Sprintf("%s %s to answer %d", method, path, want), "%d %s", res.StatusCode, shorten(string(raw), 600))
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, r.fail(fmt.Sprintf("%s %s to answer JSON", method, path), "%v in %s", err, shorten(string(raw), 300))
		}
	}
	return res.Header, nil
}

// via narrates a call that fn makes through a client library (the Go SDK,
// the data client), named by how, and turns its error into a Failure of
// the current step.
func (r *run) via(method, path, how string, fn func() error) error {
	r.log.line("  → %s %s (%s)", method, path, how)
	if err := fn(); err != nil {
		return r.fail(fmt.Sprintf("%s %s (%s) to succeed", method, path, how), "%v%s", err, r.interrupted())
	}
	return nil
}

// waitFor polls cond every 50 ms until it reports true, for at most the
// run's wait.
func (r *run) waitFor(what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(r.wait)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return r.fail(what+" within "+r.wait.String(), "nothing by the deadline")
		}
		select {
		case <-r.ctx.Done():
			return r.fail(what, "nothing before the story stopped%s", r.interrupted())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// interrupted says why the story's context ended, if it did.
func (r *run) interrupted() string {
	switch {
	case errors.Is(r.ctx.Err(), context.DeadlineExceeded):
		return " (the story ran out of time; see --timeout)"
	case r.ctx.Err() != nil:
		return " (the story was interrupted)"
	}
	return ""
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// narrator writes the story's log: one line at a time, each with the time
// since the start, safe to use from the demo's services as events arrive.
type narrator struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func newNarrator(w io.Writer) *narrator { return &narrator{w: w, start: time.Now()} }

func (n *narrator) line(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, "[%6.2fs] %s\n", time.Since(n.start).Seconds(), fmt.Sprintf(format, args...))
}

func (n *narrator) raw(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	io.WriteString(n.w, s)
}

func (n *narrator) title(t string) {
	n.raw(fmt.Sprintf("\n%s\n%s\n", t, strings.Repeat("=", len([]rune(t)))))
}

func (n *narrator) step(i, last int, title string) {
	label := fmt.Sprintf("Step %d/%d", i, last)
	if i == 0 {
		label = "Setup"
	}
	n.raw(fmt.Sprintf("\n%s: %s\n", label, title))
}

// http narrates the status of a raw HTTP call.
func (n *narrator) http(method, path string, status int) {
	n.line("  ← %d %s", status, http.StatusText(status))
}

// say is what came back, or what a party did.
func (n *narrator) say(format string, args ...any) { n.line("      "+format, args...) }

// ok is a check that held.
func (n *narrator) ok(format string, args ...any) { n.line("  ✓ "+format, args...) }

// event is something that arrived at one of the demo's services.
func (n *narrator) event(format string, args ...any) { n.line("  ⚡ "+format, args...) }

func (n *narrator) failed(f *Failure) {
	n.raw(fmt.Sprintf("\n✗ FAILED: %s\n    expected: %s\n    got:      %s\n", f.Step, f.Expected, f.Got))
}

func (n *narrator) done(steps int) {
	n.raw(fmt.Sprintf("\n✓ all %d steps produced what they should\n", steps))
}
