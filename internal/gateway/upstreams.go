package gateway

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/httpsig"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/stdwebhooks"
	"github.com/causewayhq/causeway/internal/store"
)

// ProxyPattern is the route of the upstream proxy.
const ProxyPattern = "/v1/ext/{prefix}/{path...}"

// How the gateway signs what it proxies: an HTTP Message Signature (RFC
// 9421) labelled SignatureLabel, by hmac-sha256 keyed with the upstream's
// signing secret (the bytes the base64 after "whsec_" encodes, as in
// Standard Webhooks) under the upstream's id as keyid, with the tag
// SignatureTag. It covers SignedComponents: the method, the target URI
// with its query, the Content-Digest (RFC 9530, sha-256) of the body,
// empty or not, and the calling app. docs/apis.md shows an upstream how
// to verify it.
const (
	HeaderAppID    = "Causeway-App-Id"
	SignatureLabel = "causeway"
	SignatureTag   = "causeway-upstream"
)

// SignedComponents are the components every proxied request's signature
// covers, in order.
var SignedComponents = []string{"@method", "@target-uri", "content-digest", "causeway-app-id"}

// Upstream is an API of the bank published to apps through the gateway at
// /v1/ext/{PathPrefix}/: a call to /v1/ext/{PathPrefix}/x goes to
// {BaseURL}/x for apps whose token carries Scope.
type Upstream struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	BaseURL    string    `json:"base_url"`
	PathPrefix string    `json:"path_prefix"`
	Scope      string    `json:"scope"`
	CreatedAt  time.Time `json:"created_at"`

	secret string
}

// NewUpstream describes an upstream to publish.
type NewUpstream struct {
	Name       string
	BaseURL    string
	PathPrefix string
	Scope      string
}

var slug = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// Validate checks the upstream and returns its base URL normalized
// (without a trailing slash).
func (n NewUpstream) Validate() (string, error) {
	name := strings.TrimSpace(n.Name)
	if name == "" || len(name) > 100 {
		return "", causeway.Errorf(causeway.EINVALID, "invalid_name", "name must be 1 to 100 characters")
	}
	u, err := url.Parse(n.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || len(n.BaseURL) > 2048 {
		return "", causeway.Errorf(causeway.EINVALID, "invalid_base_url",
			"base_url must be an absolute http or https URL without credentials, query or fragment")
	}
	if !slug.MatchString(n.PathPrefix) {
		return "", causeway.Errorf(causeway.EINVALID, "invalid_path_prefix",
			"path_prefix must be a slug: lower-case letters, digits and inner hyphens, at most 63 characters")
	}
	if !auth.ValidScope(n.Scope) {
		return "", causeway.Errorf(causeway.EINVALID, "invalid_scope",
			"scope must be one of %s", strings.Join(auth.AllScopes, ", "))
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// CreateUpstream publishes an upstream API and returns it with its signing
// secret ("whsec_…"), which is not shown again. A taken path prefix is
// ECONFLICT upstream_prefix_taken.
func (g *Gateway) CreateUpstream(ctx context.Context, n NewUpstream) (*Upstream, string, error) {
	base, err := n.Validate()
	if err != nil {
		return nil, "", err
	}
	up := &Upstream{
		ID:         ids.New("ups"),
		Name:       strings.TrimSpace(n.Name),
		BaseURL:    base,
		PathPrefix: n.PathPrefix,
		Scope:      n.Scope,
		CreatedAt:  g.now().UTC().Truncate(time.Microsecond),
		secret:     stdwebhooks.NewSecret(),
	}
	err = g.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO gateway_upstreams (id, name, base_url, path_prefix, scope, signing_secret, created_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			up.ID, up.Name, up.BaseURL, up.PathPrefix, up.Scope, g.sealer.Seal(up.secret), store.Micros(up.CreatedAt))
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{Action: "upstream.create", TargetType: "upstream", TargetID: up.ID,
			After: upstreamSummary(up)})
	})
	if store.IsUniqueViolation(err) {
		return nil, "", causeway.Errorf(causeway.ECONFLICT, "upstream_prefix_taken",
			"another upstream already uses the path prefix %q", n.PathPrefix)
	}
	if err != nil {
		return nil, "", err
	}
	g.upstreams.forget(up.PathPrefix)
	return up, up.secret, nil
}

// upstreamSummary is an upstream in the audit trail: never its secret.
func upstreamSummary(up *Upstream) map[string]string {
	return map[string]string{"name": up.Name, "base_url": up.BaseURL, "path_prefix": up.PathPrefix, "scope": up.Scope}
}

// UpstreamPage is a page of upstreams.
type UpstreamPage struct {
	Data       []*Upstream `json:"data"`
	NextCursor string      `json:"next_cursor"`
}

// Upstreams lists the published upstreams, oldest first.
func (g *Gateway) Upstreams(ctx context.Context, limit int, cursor string) (*UpstreamPage, error) {
	limit, after, err := page.Args(limit, cursor)
	if err != nil {
		return nil, err
	}
	rows, err := g.db.QueryContext(ctx,
		`SELECT id, name, base_url, path_prefix, scope, created_at FROM gateway_upstreams
		 WHERE id > $1 ORDER BY id LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	pg := &UpstreamPage{Data: []*Upstream{}}
	for rows.Next() {
		var up Upstream
		var created int64
		if err := rows.Scan(&up.ID, &up.Name, &up.BaseURL, &up.PathPrefix, &up.Scope, &created); err != nil {
			return nil, err
		}
		up.CreatedAt = store.FromMicros(created)
		pg.Data = append(pg.Data, &up)
	}
	if err := rows.Err(); err != nil {
		return nil, store.Classify(err)
	}
	if len(pg.Data) > limit {
		pg.Data = pg.Data[:limit]
		pg.NextCursor = page.Cursor(pg.Data[limit-1].ID)
	}
	return pg, nil
}

// DeleteUpstream unpublishes an upstream (ENOTFOUND upstream_not_found if
// there is none). Other nodes stop proxying to it within CacheTTL.
func (g *Gateway) DeleteUpstream(ctx context.Context, id string) error {
	var up Upstream
	err := g.db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT name, base_url, path_prefix, scope FROM gateway_upstreams WHERE id = $1`, id).
			Scan(&up.Name, &up.BaseURL, &up.PathPrefix, &up.Scope)
		if errors.Is(err, sql.ErrNoRows) {
			return causeway.Errorf(causeway.ENOTFOUND, "upstream_not_found", "no upstream %s", id)
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM gateway_upstreams WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			// Another operator deleted it since the read.
			return causeway.Errorf(causeway.ENOTFOUND, "upstream_not_found", "no upstream %s", id)
		}
		return audit.Record(ctx, tx, audit.Change{Action: "upstream.delete", TargetType: "upstream", TargetID: id,
			Before: upstreamSummary(&up)})
	})
	if err != nil {
		return err
	}
	g.upstreams.forget(up.PathPrefix)
	return nil
}

// upstreamCache keeps each upstream's definition and reverse proxy for
// CacheTTL.
type upstreamCache struct {
	mu       sync.Mutex
	byPrefix map[string]*proxiedUpstream
}

type proxiedUpstream struct {
	up     *Upstream
	proxy  *httputil.ReverseProxy
	loaded time.Time
}

func newUpstreamCache() *upstreamCache {
	return &upstreamCache{byPrefix: map[string]*proxiedUpstream{}}
}

func (c *upstreamCache) forget(prefix string) {
	c.mu.Lock()
	delete(c.byPrefix, prefix)
	c.mu.Unlock()
}

// upstream returns the upstream published under prefix, with its proxy.
func (g *Gateway) upstream(ctx context.Context, prefix string) (*proxiedUpstream, error) {
	c := g.upstreams
	c.mu.Lock()
	p := c.byPrefix[prefix]
	c.mu.Unlock()
	if p != nil && time.Since(p.loaded) < g.cacheTTL {
		return p, nil
	}
	notFound := causeway.Errorf(causeway.ENOTFOUND, "upstream_not_found", "no upstream API is published under /v1/ext/%s/", prefix)
	if !slug.MatchString(prefix) {
		return nil, notFound
	}
	var up Upstream
	var created int64
	var stored string
	err := g.db.QueryRowContext(ctx,
		`SELECT id, name, base_url, path_prefix, scope, signing_secret, created_at
		 FROM gateway_upstreams WHERE path_prefix = $1`, prefix).
		Scan(&up.ID, &up.Name, &up.BaseURL, &up.PathPrefix, &up.Scope, &stored, &created)
	if errors.Is(err, sql.ErrNoRows) {
		c.forget(prefix)
		return nil, notFound
	}
	if err != nil {
		if p != nil {
			// The database is unwell; the definition we have is seconds
			// old, which beats failing the call.
			g.log.WarnContext(ctx, "reading an upstream failed; using the cached one", "prefix", prefix, "error", err.Error())
			return p, nil
		}
		return nil, store.Classify(err)
	}
	if up.secret, err = g.openSecret(stored); err != nil {
		return nil, fmt.Errorf("gateway: the signing secret of upstream %s: %w", up.ID, err)
	}
	up.CreatedAt = store.FromMicros(created)
	next := &proxiedUpstream{up: &up, loaded: time.Now()}
	if p != nil && p.up.ID == up.ID && p.up.BaseURL == up.BaseURL && p.up.secret == up.secret {
		next.proxy = p.proxy // unchanged: keep it
	} else if next.proxy, err = g.newProxy(&up); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.byPrefix[prefix] = next
	c.mu.Unlock()
	return next, nil
}

func (g *Gateway) newProxy(up *Upstream) (*httputil.ReverseProxy, error) {
	target, err := url.Parse(up.BaseURL)
	if err != nil {
		return nil, err
	}
	secret, err := stdwebhooks.Key(up.secret)
	if err != nil {
		return nil, err
	}
	key := httpsig.HMACKey(up.ID, secret)
	return &httputil.ReverseProxy{
		Transport: g.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			call := pr.In.Context().Value(proxyCallKey{}).(*proxyCall)
			pr.Out.URL.Path, pr.Out.URL.RawPath = call.path, call.rawPath
			pr.SetURL(target)
			h := pr.Out.Header
			// The app's credentials are for Causeway, not for the upstream;
			// the Causeway-* headers, the signature and the digest are ours
			// alone to set.
			h.Del("Authorization")
			h.Del("Proxy-Authorization")
			h.Del("Cookie")
			for name := range h {
				if strings.HasPrefix(name, "Causeway-") {
					h.Del(name)
				}
			}
			h.Del(httpsig.HeaderSignature)
			h.Del(httpsig.HeaderSignatureInput)
			h.Del(httpsig.HeaderContentDigest)
			app, _ := auth.AppFrom(pr.In.Context())
			h.Set(HeaderAppID, app.ID)
			h.Set(httpsig.HeaderContentDigest, call.digest)
			if id := httpapi.RequestID(pr.In.Context()); id != "" {
				h.Set("X-Request-Id", id)
			}
			err := httpsig.Sign(pr.Out, SignatureLabel, "", httpsig.Params{
				Components: SignedComponents, Created: g.now(), Alg: httpsig.AlgHMACSHA256, Tag: SignatureTag}, key)
			if err != nil {
				// Every covered field was set above: this is a bug. The
				// upstream refuses the unsigned call.
				g.log.ErrorContext(pr.In.Context(), "signing a proxied call failed", "upstream", up.ID, "error", err.Error())
			}
		},
		ModifyResponse: func(res *http.Response) error {
			// The gateway's own headers describe the app's budget and
			// replays; an upstream must not contradict them.
			for _, name := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Idempotent-Replayed", "X-Request-Id"} {
				res.Header.Del(name)
			}
			return nil
		},
		ErrorHandler: g.upstreamError,
		BufferPool:   proxyBuffers,
	}, nil
}

// proxyBuffers lends the reverse proxies the buffers they copy responses
// through. Without a pool, httputil.ReverseProxy allocates (and zeroes)
// 32 KiB for every proxied call: half of all the bytes a call through the
// gateway allocated.
var proxyBuffers = &bufferPool{}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// proxyCall is what proxy has checked and read of a call for the
// upstream's Rewrite: the path to forward, decoded and escaped, and the
// Content-Digest of the body.
type proxyCall struct {
	path, rawPath, digest string
}

type proxyCallKey struct{}

// proxy serves /v1/ext/{prefix}/{path...}: the middleware has
// authenticated the app; the upstream decides the scope it needs.
func (g *Gateway) proxy(w http.ResponseWriter, r *http.Request) {
	app, ok := auth.AppFrom(r.Context())
	if !ok {
		httpapi.WriteProblem(w, r, causeway.Errorf(causeway.EUNAUTHORIZED, "unauthorized", "this route needs an app access token"))
		return
	}
	path, rawPath, err := proxiedPath(escapedRest(r.URL.EscapedPath()))
	if err != nil {
		g.reject(w, r, err)
		return
	}
	p, err := g.upstream(r.Context(), r.PathValue("prefix"))
	if err != nil {
		httpapi.WriteProblem(w, r, err)
		return
	}
	if !app.HasScope(p.up.Scope) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="causeway", error="insufficient_scope", scope="`+p.up.Scope+`"`)
		g.reject(w, r, causeway.Errorf(causeway.EFORBIDDEN, "insufficient_scope",
			"this upstream API needs the scope %s, which the access token does not carry", p.up.Scope))
		return
	}
	// The signature covers the body's digest, which must be known before
	// the headers go out: the body is read whole (httpapi caps its size).
	body, err := proxiedBody(r)
	if err != nil {
		httpapi.WriteProblem(w, r, err)
		return
	}
	call := &proxyCall{path: path, rawPath: rawPath, digest: httpsig.ContentDigest(body)}
	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), proxyCallKey{}, call), g.upstreamTimeout)
	defer cancel()
	p.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// proxiedBody reads r's body and puts it back, as bytes of a known length.
func proxiedBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, httpapi.NewProblem(http.StatusRequestEntityTooLarge, "body_too_large",
				"request body exceeds "+strconv.FormatInt(tooBig.Limit, 10)+" bytes")
		}
		return nil, causeway.Errorf(causeway.EBADREQUEST, "unreadable_body", "the request body could not be read")
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.Header.Del("Transfer-Encoding")
	return b, nil
}

// escapedRest is the part of an escaped /v1/ext/{prefix}/{path...} path
// after the prefix, still escaped.
func escapedRest(escaped string) string {
	rest := strings.TrimPrefix(escaped, "/v1/ext/")
	_, rest, _ = strings.Cut(rest, "/")
	return rest
}

// upstreamError answers a call the upstream did not: 504 if it was too
// slow, 502 otherwise. Neither is stored under an idempotency key.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusGatewayTimeout, "upstream_timeout",
			"the upstream API did not answer within "+g.upstreamTimeout.String()))
		return
	}
	httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusBadGateway, "upstream_unavailable",
		"the upstream API could not be reached: "+errorClass(err)))
}

// errorClass names what went wrong without internal addresses.
func errorClass(err error) string {
	msg := err.Error()
	for _, s := range []string{"connection refused", "no such host", "connection reset", "EOF", "timeout", "tls"} {
		if strings.Contains(msg, s) {
			return s
		}
	}
	return "transport error"
}
