package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TokenPath is where a Client fetches its access tokens, below the base URL.
const TokenPath = "/oauth2/token"

const (
	userAgent = "causeway-go"
	// retryDelay is the pause before the one retry after a network error,
	// or after a 503 without Retry-After.
	retryDelay = 250 * time.Millisecond
	// maxRetryWait caps a 503's Retry-After: a call is retried once, soon,
	// or fails.
	maxRetryWait = 5 * time.Second
	// defaultTimeout bounds a request, token fetch included, when no
	// WithHTTPClient is given.
	defaultTimeout = 30 * time.Second
)

// Client calls the public API as one app, with the app's OAuth2 client
// credentials. It is safe for concurrent use; make one and share it.
type Client struct {
	conn
}

// Option configures New, SignUp and LogIn.
type Option func(*settings)

type settings struct {
	hc     *http.Client
	scopes []string
}

// WithHTTPClient makes the SDK send its requests, token requests included,
// through hc (for a proxy, TLS settings or a timeout). Do not give a client
// that adds its own Authorization header. Without it the SDK uses a client
// with a 30 s timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) { s.hc = hc }
}

// WithScopes asks for access tokens carrying only these scopes (see the
// Scope constants) instead of all the app holds.
func WithScopes(scopes ...string) Option {
	return func(s *settings) { s.scopes = append([]string(nil), scopes...) }
}

func newSettings(opts []Option) settings {
	s := settings{}
	for _, o := range opts {
		o(&s)
	}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: defaultTimeout}
	}
	return s
}

// New returns a Client for the platform at baseURL (e.g.
// "https://causeway.example") acting as the app with clientID and
// clientSecret. It does not call the platform: the first call fetches an
// access token from baseURL+TokenPath (client_credentials grant), and a new
// one is fetched shortly before it expires, or once when the platform
// refuses it. Wrong credentials surface on the first call as an *Error with
// Code "invalid_client".
func New(baseURL, clientID, clientSecret string, opts ...Option) *Client {
	s := newSettings(opts)
	base := strings.TrimRight(baseURL, "/")
	return &Client{conn{
		base: base,
		hc:   s.hc,
		tokens: &tokenSource{
			cfg: &clientcredentials.Config{
				ClientID:     clientID,
				ClientSecret: clientSecret,
				TokenURL:     base + TokenPath,
				Scopes:       s.scopes,
				// The platform takes both; saying which saves the
				// library a second request when the secret is wrong.
				AuthStyle: oauth2.AuthStyleInHeader,
			},
			hc:   s.hc,
			lock: make(chan struct{}, 1),
		},
	}}
}

// CallOption configures one call that creates something (a POST).
type CallOption func(*callSettings)

type callSettings struct{ idempotencyKey string }

// WithIdempotencyKey sends key (1 to 255 printable ASCII characters) as the
// call's Idempotency-Key: the platform runs the first request with the key
// and answers every later one with the same body with the stored response,
// for 24 hours; the same key with another body is refused with code
// idempotency_key_reused. Without this option each call gets a random key,
// which makes the SDK's own retry safe but not yours.
func WithIdempotencyKey(key string) CallOption {
	return func(c *callSettings) { c.idempotencyKey = key }
}

// idempotencyKey returns the key opts set, or a new random one.
func idempotencyKey(opts []CallOption) string {
	var cs callSettings
	for _, o := range opts {
		o(&cs)
	}
	if cs.idempotencyKey != "" {
		return cs.idempotencyKey
	}
	return "cw-go-" + rand.Text()
}

// conn sends requests to the platform and decodes the answers, for an app
// (tokens), a developer (bearer) or nobody (sign-up).
type conn struct {
	base   string
	hc     *http.Client
	tokens *tokenSource
	bearer string
}

// request is one API call.
type request struct {
	method string
	path   string // below the base URL, ids already escaped
	query  url.Values
	body   any
	// idempotencyKey is sent as Idempotency-Key. A POST without one is not
	// retried.
	idempotencyKey string
}

// do sends r and decodes a 2xx answer into out (unless out is nil); any
// other status is an *Error. A GET, or a POST with an idempotency key, is
// retried once, with the same key, after a network error or a 503. A 401 to
// an access token makes it fetch a new token and send the request again,
// once.
func (c *conn) do(ctx context.Context, r request, out any) error {
	var body []byte
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("causeway: encoding the request: %w", err)
		}
		body = b
	}
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	canRetry := r.method == http.MethodGet || r.idempotencyKey != ""
	refreshed := false
	for {
		res, tok, transient, err := c.send(ctx, r.method, u, body, r.idempotencyKey)
		switch {
		case err != nil && transient && canRetry && ctx.Err() == nil:
			canRetry = false
			if err := sleep(ctx, retryDelay); err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		case res.StatusCode == http.StatusServiceUnavailable && canRetry:
			canRetry = false
			wait := min(max(retryAfter(res.Header), retryDelay), maxRetryWait)
			discard(res)
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			continue
		case res.StatusCode == http.StatusUnauthorized && tok != nil && !refreshed:
			// The token may have been revoked, or signed with a key the
			// platform rotated away: one new token, one more try. A
			// request refused for its token was never run, so this is
			// safe for any method.
			refreshed = true
			discard(res)
			c.tokens.forget(tok)
			continue
		}
		return decode(res, out)
	}
}

// send sends one attempt. transient reports an error worth one retry: the
// network failed, or the token endpoint answered 503.
func (c *conn) send(ctx context.Context, method, u string, body []byte, key string) (res *http.Response, tok *oauth2.Token, transient bool, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, false, fmt.Errorf("causeway: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	switch {
	case c.tokens != nil:
		tok, err = c.tokens.token(ctx)
		if err != nil {
			var e *Error
			return nil, nil, !errors.As(err, &e) || e.Status == http.StatusServiceUnavailable, err
		}
		tok.SetAuthHeader(req)
	case c.bearer != "":
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	res, err = c.hc.Do(req)
	if err != nil {
		return nil, nil, true, err
	}
	return res, tok, false, nil
}

// decode reads a response: JSON into out on 2xx, an *Error otherwise.
func decode(res *http.Response, out any) error {
	defer discard(res)
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return errorFrom(res)
	}
	if out == nil || res.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("causeway: decoding the answer to %s %s: %w", res.Request.Method, res.Request.URL.Path, err)
	}
	return nil
}

// discard drains and closes a body so that its connection is reused.
func discard(res *http.Response) {
	io.Copy(io.Discard, io.LimitReader(res.Body, maxErrorBody))
	res.Body.Close()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tokenSource caches the app's access token and fetches a new one when it
// is about to expire (10 s before). Unlike oauth2.ReuseTokenSource it
// fetches with the caller's context, so a cancelled call does not wait on
// the token endpoint, and it can forget a token the platform refused.
type tokenSource struct {
	cfg  *clientcredentials.Config
	hc   *http.Client
	lock chan struct{} // held while fetching, so concurrent calls fetch once

	mu  sync.Mutex
	tok *oauth2.Token
}

func (s *tokenSource) token(ctx context.Context) (*oauth2.Token, error) {
	if tok := s.cached(); tok != nil {
		return tok, nil
	}
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.lock }()
	if tok := s.cached(); tok != nil { // fetched while this call waited
		return tok, nil
	}
	tok, err := s.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, s.hc))
	if err != nil {
		return nil, tokenError(err)
	}
	s.mu.Lock()
	s.tok = tok
	s.mu.Unlock()
	return tok, nil
}

func (s *tokenSource) cached() *oauth2.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Valid() {
		return s.tok
	}
	return nil
}

// forget drops tok if it is still the cached token.
func (s *tokenSource) forget(tok *oauth2.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == tok {
		s.tok = nil
	}
}
