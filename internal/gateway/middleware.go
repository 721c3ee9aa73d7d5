package gateway

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
)

// Middleware returns the gateway's middleware for s. The platform installs
// it with s.Use(g.Middleware(s)). Each request is treated according to the
// security requirements its route declares (s.Security):
//
//   - none, or only the bank's admin token: passed through (the bank group
//     checks the admin token itself);
//   - developerToken: the developer is authenticated and put in the context
//     (auth.DeveloperFrom), then its own rate limit and daily quota apply
//     (the default limits, shared by all nodes like an app's);
//   - oauth2: the app is authenticated and put in the context
//     (auth.AppFrom), its token's scopes are checked, then its rate limit
//     and daily quota, and its call is counted in the analytics;
//   - streamTicket: without an Authorization header, the query parameter
//     ticket is consumed (Options.Tickets) and the app it was issued to is
//     treated as above.
//
// POST requests of apps and developers honour Idempotency-Key.
func (g *Gateway) Middleware(s *httpapi.Server) func(http.Handler) http.Handler {
	var policies sync.Map // route pattern -> *policy
	policy := func(pattern string) *policy {
		if p, ok := policies.Load(pattern); ok {
			return p.(*policy)
		}
		p := parsePolicy(s.Security(pattern))
		policies.Store(pattern, p)
		return p
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			pattern := s.Route(r)
			pol := policy(pattern)
			if pol.passThrough() || (pol.admin && s.IsAdmin(r)) {
				next.ServeHTTP(w, r)
				return
			}
			// The mux records the matched pattern on the request it is
			// given, and the access log and metrics around us read it from
			// there. We hand the mux a copy with the caller in its context,
			// so record the pattern on this request ourselves.
			r.Pattern = pattern
			app, dev, err := g.authenticate(r, pol)
			if err != nil {
				g.unauthorized(w, r, err)
				return
			}
			if app != nil {
				g.serveApp(w, r, next, pattern, pol, app)
				return
			}
			g.serveDeveloper(w, r, next, dev)
		})
	}
}

// policy is what a route's OpenAPI security requirements ask of a caller.
// The requirements are alternatives: any one of them admits the request.
type policy struct {
	public    bool       // anonymous access is allowed
	admin     bool       // the bank's admin token is one alternative
	developer bool       // a developer token is one alternative
	app       bool       // an app access token is one alternative
	ticket    bool       // a stream ticket (query parameter) is one alternative
	appScopes [][]string // the scopes each app alternative needs
}

func parsePolicy(sec []map[string][]string) *policy {
	p := &policy{public: len(sec) == 0}
	for _, req := range sec {
		if len(req) == 0 {
			p.public = true // {} in OpenAPI: no credential needed
		}
		if _, ok := req[httpapi.SchemeBankAdmin]; ok {
			p.admin = true
		}
		if _, ok := req[httpapi.SchemeDeveloper]; ok {
			p.developer = true
		}
		if _, ok := req[httpapi.SchemeStreamTicket]; ok {
			p.ticket = true
		}
		if scopes, ok := req[httpapi.SchemeAppOAuth2]; ok {
			p.app = true
			p.appScopes = append(p.appScopes, scopes)
		}
	}
	return p
}

// passThrough reports whether the gateway has nothing to check: the route
// is public or only for the bank, whose group checks the admin token.
func (p *policy) passThrough() bool {
	return p.public || (p.admin && !p.app && !p.developer && !p.ticket)
}

// missingScopes returns the scopes app lacks for the route, or nil. With
// several app alternatives it names what the first one misses.
func (p *policy) missingScopes(app *auth.App) []string {
	var first []string
	for i, scopes := range p.appScopes {
		var missing []string
		for _, s := range scopes {
			if !app.HasScope(s) {
				missing = append(missing, s)
			}
		}
		if missing == nil {
			return nil
		}
		if i == 0 {
			first = missing
		}
	}
	return first
}

// authenticate finds the caller the route accepts: an app first, then a
// developer; a stream ticket only when there is no Authorization header.
// The error is the first failure.
func (g *Gateway) authenticate(r *http.Request, pol *policy) (*auth.App, *auth.Developer, error) {
	token, ok := httpapi.BearerToken(r.Header.Get("Authorization"))
	if !ok && pol.ticket && g.tickets != nil && r.Header.Get("Authorization") == "" {
		if ticket := r.URL.Query().Get("ticket"); ticket != "" {
			app, err := g.tickets.AuthenticateTicket(r.Context(), ticket)
			if err != nil {
				return nil, nil, err
			}
			return app, nil, nil
		}
	}
	if !ok || (!pol.app && !pol.developer) {
		what := "a credential the gateway does not know" // a scheme this package does not handle: refuse
		switch {
		case pol.app && pol.ticket:
			what = "an app access token in the Authorization header (Bearer), or a stream ticket in the query parameter ticket"
		case pol.app:
			what = "an app access token in the Authorization header (Bearer)"
		case pol.developer:
			what = "a developer token in the Authorization header (Bearer)"
		}
		return nil, nil, causeway.Errorf(causeway.EUNAUTHORIZED, "unauthorized", "this route needs %s", what)
	}
	ctx := r.Context()
	var firstErr error
	if pol.app {
		app, err := g.auth.AuthenticateApp(ctx, token)
		if err == nil && app != nil {
			return app, nil, nil
		}
		firstErr = orInvalidToken(err)
	}
	if pol.developer {
		dev, err := g.auth.AuthenticateDeveloper(ctx, token)
		if err == nil && dev != nil {
			return nil, dev, nil
		}
		if firstErr == nil {
			firstErr = orInvalidToken(err)
		}
	}
	return nil, nil, firstErr
}

func orInvalidToken(err error) error {
	if err == nil {
		return causeway.Errorf(causeway.EUNAUTHORIZED, "invalid_token", "the token is not valid")
	}
	return err
}

// unauthorized answers a failed authentication. Only credential errors get
// the RFC 6750 challenge; a store outage stays a 503.
func (g *Gateway) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	if causeway.ErrorKind(err) == causeway.EUNAUTHORIZED {
		challenge := `Bearer realm="causeway"`
		if code := causeway.ErrorCode(err); code != "unauthorized" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	g.reject(w, r, err)
}

// reject writes a problem for a request the gateway refuses.
func (g *Gateway) reject(w http.ResponseWriter, r *http.Request, err error) {
	g.metrics.rejected.WithLabelValues(rejectCode(err)).Inc()
	httpapi.WriteProblem(w, r, err)
}

func rejectCode(err error) string {
	var p *httpapi.Problem
	if errors.As(err, &p) {
		return p.Code
	}
	return causeway.ErrorCode(err)
}

// serveApp runs the app's part of the pipeline: scope, rate limit, quota,
// idempotency, handler, analytics.
func (g *Gateway) serveApp(w http.ResponseWriter, r *http.Request, next http.Handler, pattern string, pol *policy, app *auth.App) {
	start := time.Now()
	now := g.now()
	rec := &recorder{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			// httpapi turns the panic into a 500 (or aborts the
			// connection); count it as what the app will see.
			status := rec.status
			if status == 0 {
				status = http.StatusInternalServerError
			}
			g.analytics.add(app.ID, pattern, now, status, time.Since(start), false)
			panic(p)
		}
		if httpapi.Streamed(r.Context()) {
			// A stream is counted when it ends, and not as latency.
			g.analytics.add(app.ID, pattern, g.now(), rec.statusCode(), time.Since(start), true)
			return
		}
		g.analytics.add(app.ID, pattern, now, rec.statusCode(), time.Since(start), false)
	}()
	if missing := pol.missingScopes(app); missing != nil {
		w.Header().Set("WWW-Authenticate",
			`Bearer realm="causeway", error="insufficient_scope", scope="`+strings.Join(missing, " ")+`"`)
		g.reject(rec, r, causeway.Errorf(causeway.EFORBIDDEN, "insufficient_scope",
			"this route needs the scope %s, which the access token does not carry", strings.Join(missing, " ")))
		return
	}
	v := g.admit(r.Context(), app.ID, now)
	v.setHeaders(w.Header())
	if !v.allowed {
		g.reject(rec, r, v.err())
		return
	}
	g.serve(rec, r.WithContext(auth.WithApp(r.Context(), app)), next, "app:"+app.ID)
}

// serveDeveloper runs a developer's part of the pipeline: rate limit and
// quota, idempotency, handler. A developer has a budget of its own, under
// its id, with the default limits: its routes (creating apps, rotating
// secrets) are as open to abuse as an app's, and a developer's and an
// app's ids never collide (dev_ and app_ prefixes).
func (g *Gateway) serveDeveloper(w http.ResponseWriter, r *http.Request, next http.Handler, dev *auth.Developer) {
	v := g.admit(r.Context(), dev.ID, g.now())
	v.setHeaders(w.Header())
	if !v.allowed {
		g.reject(w, r, v.err())
		return
	}
	rec := &recorder{ResponseWriter: w}
	g.serve(rec, r.WithContext(auth.WithDeveloper(r.Context(), dev)), next, "developer:"+dev.ID)
}

// serve runs the handler, under the request's idempotency key if it is a
// POST that has one.
func (g *Gateway) serve(rec *recorder, r *http.Request, next http.Handler, principal string) {
	if r.Method == http.MethodPost && len(r.Header.Values("Idempotency-Key")) > 0 {
		g.serveIdempotent(rec, r, next, principal)
		return
	}
	next.ServeHTTP(rec, r)
}

// recorder remembers a response's status and, when capture is set, up to
// maxStoredResponse bytes of its body, for the idempotency store.
type recorder struct {
	http.ResponseWriter
	status   int
	capture  bool
	buf      bytes.Buffer
	overflow bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.capture && !r.overflow {
		if r.buf.Len()+len(b) > maxStoredResponse {
			r.overflow = true
			r.buf = bytes.Buffer{}
		} else {
			r.buf.Write(b)
		}
	}
	return r.ResponseWriter.Write(b)
}

// statusCode is the status sent, 200 if the handler wrote nothing.
func (r *recorder) statusCode() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

func (r *recorder) captured() []byte {
	if r.overflow {
		return nil
	}
	return slices.Clone(r.buf.Bytes())
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush passes flushes through for streaming responses.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
