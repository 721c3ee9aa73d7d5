// Package httpapi is the HTTP layer shared by the public API (/v1) and the
// bank API (/bank/v1): huma wiring and the OpenAPI document, RFC 9457
// problems, request ids, body limits, access logs, metrics, and admin
// authentication. Capability packages register their operations on the
// Server's API and Bank groups.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/netip"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
)

// Security scheme names used in the OpenAPI document.
const (
	SchemeBankAdmin = "bankAdmin"      // the bank's admin token
	SchemeAppOAuth2 = "oauth2"         // an app's client-credentials access token
	SchemeDeveloper = "developerToken" // a developer's session token
	// SchemeClientBasic is an app's client id and secret as HTTP Basic
	// credentials: only the OAuth2 token endpoint takes them.
	SchemeClientBasic = "clientBasic"
	// SchemeStreamTicket is a single-use stream ticket in the query
	// parameter ticket, for the event stream only (browsers' EventSource
	// cannot send an Authorization header).
	SchemeStreamTicket = "streamTicket"
)

// Config configures a Server.
type Config struct {
	Version string
	// AdminToken is the bank's admin token, or during a rotation the new
	// and the old ones, comma-separated (see AdminTokens).
	AdminToken string
	Logger     *slog.Logger
	// Registerer receives the HTTP metrics.
	Registerer prometheus.Registerer
	// MaxBodyBytes caps request bodies; default 1 MiB.
	MaxBodyBytes int64
	// TrustedProxies are the load balancers and proxies whose
	// X-Forwarded-For is believed when they connect (see ClientAddr). Empty:
	// the client is the connection's remote address.
	TrustedProxies []netip.Prefix
	// PublicURL is the node's base URL (the OAuth2 issuer): the document
	// names it as its server, and the token URL under it.
	PublicURL string
}

// Server routes every HTTP request of the platform.
type Server struct {
	mux *http.ServeMux
	// API registers operations under their full path (/v1/...).
	API huma.API
	// Bank registers operations under /bank/v1, behind the admin token.
	Bank *huma.Group

	log         *slog.Logger
	metrics     *metrics
	maxBody     int64
	adminTokens [][sha256.Size]byte
	// trustedProxies may say, in X-Forwarded-For, whom they forward for.
	trustedProxies []netip.Prefix
	router         http.Handler // the mux, wrapped by Use
	handler        http.Handler
	// security holds the security requirements of routes outside huma (e.g.
	// the upstream proxy), keyed by ServeMux pattern.
	security map[string][]map[string][]string
	// noStore holds the routes whose answers carry a secret or a token
	// (see NoStore), keyed by ServeMux pattern.
	noStore map[string]bool
	// operatorToken checks operators' personal tokens (see
	// AuthenticateOperators).
	operatorToken func(ctx context.Context, token string) (*auth.Operator, error)
	// hold may hold a bank operation back for a second operator (see
	// HoldDecisions).
	hold func(ctx huma.Context, next func(huma.Context))
	// notFoundPage answers browsers for routes that do not exist.
	notFoundPage http.Handler
	// streams are the open event streams (stream.go).
	streams streams
}

// New returns a Server with its OpenAPI document at /openapi.json.
//
// It is long because it declares the whole OpenAPI document's frame (info,
// servers, the security schemes and their scopes) and the bank group's
// middleware in one place.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		mux:            http.NewServeMux(),
		log:            slog.New(LogRequestIDs(cfg.Logger.Handler())),
		maxBody:        cfg.MaxBodyBytes,
		adminTokens:    hashTokens(AdminTokens(cfg.AdminToken)),
		trustedProxies: cfg.TrustedProxies,
		metrics:        newMetrics(cfg.Registerer),
		security:       map[string][]map[string][]string{},
		noStore:        map[string]bool{},
		streams:        streams{open: map[*EventStream]struct{}{}, stopping: make(chan struct{})},
	}
	hc := huma.DefaultConfig("Causeway", cfg.Version)
	hc.OpenAPIPath = "/openapi"
	hc.DocsPath = ""
	hc.SchemasPath = ""
	// No $schema fields or Link headers in responses: the contract's bodies
	// are plain JSON.
	hc.CreateHooks = nil
	hc.Info.Description = "Causeway: APIs, events, SPIs and data partnering between a bank and the developers who build on it.\n\n" +
		"Text in requests (JSON members and their names, path and query parameters, headers) is UTF-8 without " +
		"control characters; a body field marked " + MultilineExtension + " may also hold tab and line breaks. " +
		"Other text is refused with 422 and the code invalid_text. Every text field has a maxLength.\n\n" +
		"Every error is an RFC 9457 problem (application/problem+json) with a stable code to branch on, and every answer " +
		"carries X-Request-Id. The calls of apps and developers are rate limited (RateLimit-* headers; 429 with " +
		"Retry-After beyond), and their POSTs take an Idempotency-Key that makes a retry safe."
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		SchemeBankAdmin: {Type: "http", Scheme: "bearer", Description: "An operator's personal token (cwop_…), " +
			"holding the operator's roles, or the bank's admin token, which holds every role. Each operation names the role it needs " +
			"(x-causeway-role, and in its description)."},
		SchemeDeveloper: {Type: "http", Scheme: "bearer", Description: "A developer token from sign-up or login."},
		SchemeClientBasic: {Type: "http", Scheme: "basic", Description: "An app's client id and secret, each " +
			"form-urlencoded, as the user and password of HTTP Basic (client_secret_basic). Only the token endpoint takes them."},
		SchemeStreamTicket: {Type: "apiKey", In: "query", Name: "ticket",
			Description: "A single-use stream ticket from POST /v1/events/stream-tickets, for GET /v1/events/stream from a browser's " +
				"EventSource, which cannot send an Authorization header. It expires a minute after it is issued and works once."},
		SchemeAppOAuth2: {
			Type:        "oauth2",
			Description: "An app's access token from the client-credentials grant.",
			Flows: &huma.OAuthFlows{ClientCredentials: &huma.OAuthFlow{
				TokenURL: cfg.PublicURL + "/oauth2/token",
				Scopes: map[string]string{
					"accounts:read":   "Read accounts, balances and transactions",
					"customers:write": "Create customers and open accounts",
					"payments:write":  "Initiate payments",
					"kyc:write":       "Run KYC checks",
					"loans:write":     "Apply for and fund loans",
					"events:read":     "Read events (list, stream, catalog) and the app's webhook subscriptions",
					"webhooks:write":  "Create, change, delete and re-send webhook subscriptions",
					"spi:write":       "Register SPI endpoints",
					"data:read":       "Request and download datasets",
				},
			}},
		},
	}
	// Every array is documented as an array, never null: fillNilSlices
	// sends [] for a nil slice.
	hc.Transformers = append(hc.Transformers, fillNilSlices)
	s.API = humago.New(s.mux, hc)
	oapi := s.API.OpenAPI()
	describeDocument(oapi, cfg.PublicURL)
	oapi.Components.Schemas.Schema(reflect.TypeFor[Problem](), true, "")
	// describe runs before markNoStore, which adds its headers to the
	// answers describe made.
	oapi.OnAddOperation = append(oapi.OnAddOperation, markMultiline, describe, s.markNoStore)
	s.Bank = huma.NewGroup(s.API, "/bank/v1")
	s.Bank.UseSimpleModifier(func(op *huma.Operation) {
		role := bankRole(op)
		op.Security = []map[string][]string{{SchemeBankAdmin: {}}}
		if op.Extensions == nil {
			op.Extensions = map[string]any{}
		}
		op.Extensions[RoleExtension] = string(role)
		op.Description = strings.TrimSpace(op.Description + "\n\nNeeds the operator role `" + string(role) + "`.")
		op.Tags = append(op.Tags, "Bank")
	})
	s.Bank.UseMiddleware(s.requireOperator, s.holdDecision)
	s.mux.HandleFunc("/", s.notFound)
	s.router = s.mux
	s.handler = Compress(s.instrument(s.router))
	return s
}

// Use wraps the router in mw, inside the shared middleware (request id,
// logs, metrics), so mw sees every routed request. The gateway uses it.
// Call it before serving.
func (s *Server) Use(mw func(http.Handler) http.Handler) {
	s.router = mw(s.router)
	s.handler = Compress(s.instrument(s.router))
}

// routeKey carries, in a request's context, the pattern instrument found
// for it, so the text rule and the gateway do not route it again.
type routeKey struct{}

// Route returns the ServeMux pattern that r would be routed to, such as
// "GET /v1/accounts/{id}", or "/" when no route matches. It is found once
// per request, as the request comes in.
func (s *Server) Route(r *http.Request) string {
	if pattern, ok := r.Context().Value(routeKey{}).(string); ok {
		return pattern
	}
	_, pattern := s.mux.Handler(r)
	return pattern
}

// HandleSecured registers a plain handler with security requirements, for
// routes outside huma that still need a credential (the OpenAPI document
// does not list them, so Security would not know them otherwise).
func (s *Server) HandleSecured(pattern string, security []map[string][]string, h http.Handler) {
	s.security[pattern] = security
	s.mux.Handle(pattern, h)
}

// Security returns the security requirements of the route with the given
// pattern: those of its OpenAPI operation, or of HandleSecured. Nil means
// the route is public.
func (s *Server) Security(pattern string) []map[string][]string {
	if sec, ok := s.security[pattern]; ok {
		return sec
	}
	if op := s.operation(pattern); op != nil {
		return op.Security
	}
	return nil
}

// Handle registers a plain net/http handler, for routes outside the API
// (health, metrics, the portal). pattern is a ServeMux pattern.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP serves every request through the shared middleware.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if s.notFoundPage != nil && !IsAPIPath(r.URL.Path) && acceptsHTML(r) {
		s.notFoundPage.ServeHTTP(w, r)
		return
	}
	WriteProblem(w, r, causeway.Errorf(causeway.ENOTFOUND, "not_found", "no route for %s %s", r.Method, r.URL.Path))
}

// HandleNotFound serves browsers that ask for a page no route has (GET
// or HEAD, accepting text/html, outside the API's paths) with h instead
// of a problem document: the portal's 404 page. API clients keep getting
// RFC 9457 problems.
func (s *Server) HandleNotFound(h http.Handler) { s.notFoundPage = h }

// IsAPIPath reports whether path belongs to the API, where every answer
// is JSON: the versioned APIs, OAuth2 and the OpenAPI document.
func IsAPIPath(path string) bool {
	for _, prefix := range []string{"/v1/", "/bank/", "/oauth2/", "/.well-known/", "/openapi"} {
		if strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
}

func acceptsHTML(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// IsAdmin reports whether r carries the bank's admin token. The comparison
// is over fixed-length hashes, in constant time.
func (s *Server) IsAdmin(r *http.Request) bool {
	token, ok := BearerToken(r.Header.Get("Authorization"))
	return ok && s.IsAdminToken(token)
}

// IsAdminToken reports whether token is one of the bank's admin tokens,
// comparing fixed-length hashes in constant time (and with every token, so
// the time does not say which matched). The bank console's login uses it
// too, so there is one admin check.
func (s *Server) IsAdminToken(token string) bool {
	_, ok := s.AdminTokenIndex(token)
	return ok
}

// AdminTokenIndex reports which of the accepted admin tokens (in the order
// of AdminTokens) token is, with the same constant-time comparison as
// IsAdminToken; the console records which token a session logged in with.
func (s *Server) AdminTokenIndex(token string) (int, bool) {
	sum := sha256.Sum256([]byte(token))
	index := -1
	for i, t := range s.adminTokens {
		if subtle.ConstantTimeCompare(sum[:], t[:]) == 1 {
			index = i
		}
	}
	return index, index >= 0
}

// AdminTokens splits a configured admin token into the tokens accepted:
// "new,old" while a rotation runs on a rolling restart; the first is the
// current one. Empty parts are dropped.
func AdminTokens(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func hashTokens(tokens []string) [][sha256.Size]byte {
	out := make([][sha256.Size]byte, len(tokens))
	for i, t := range tokens {
		out[i] = sha256.Sum256([]byte(t))
	}
	return out
}

// AuthenticateOperators sets how the bank API checks an operator's
// personal token (identity.Service.AuthenticateOperatorToken); without
// it only the admin token opens the bank API. Call it before serving.
func (s *Server) AuthenticateOperators(fn func(ctx context.Context, token string) (*auth.Operator, error)) {
	s.operatorToken = fn
}

// Operator returns the operator r's bearer token stands for: the admin
// token's holder, or the operator of a personal operator token.
func (s *Server) Operator(r *http.Request) (*auth.Operator, error) {
	token, ok := BearerToken(r.Header.Get("Authorization"))
	switch {
	case !ok:
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "unauthorized", "this route needs an operator token or the bank's admin token as a bearer token")
	case s.IsAdminToken(token):
		return auth.AdminTokenHolder(), nil
	case s.operatorToken == nil:
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "unauthorized", "this route needs the bank's admin token as a bearer token")
	}
	return s.operatorToken(r.Context(), token)
}

// requireOperator lets in a bank route's caller who holds the role the
// route declares (see bankRoles): 401 without a valid operator or admin
// token, 403 role_required without the role. A decision a second
// operator confirmed (see ConfirmDecision) acts as that operator.
func (s *Server) requireOperator(ctx huma.Context, next func(huma.Context)) {
	r, _ := humago.Unwrap(ctx)
	op, err := s.Operator(r)
	if d, ok := ConfirmedDecision(ctx.Context()); ok {
		op, err = d.Operator, nil
	}
	if err == nil {
		if role, ok := RequiredRole(ctx.Operation()); ok && !op.Roles.Allow(role) {
			err = causeway.Errorf(causeway.EFORBIDDEN, "role_required", "this operation needs the operator role %s", role)
		}
	}
	if err != nil {
		p := ProblemFor(err)
		p.RequestID = RequestID(ctx.Context())
		if p.Status == http.StatusUnauthorized {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="causeway-bank"`)
		}
		ctx.SetHeader("Content-Type", "application/problem+json")
		ctx.SetStatus(p.Status)
		writeJSON(ctx.BodyWriter(), p)
		return
	}
	next(huma.WithContext(ctx, auth.WithOperator(ctx.Context(), op)))
}

// BearerToken extracts the token from an Authorization header value.
func BearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
