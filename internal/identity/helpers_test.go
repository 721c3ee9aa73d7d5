package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
)

// cheapCost keeps argon2id fast in tests; production uses the defaults.
var cheapCost = PasswordCost{Time: 1, Memory: 64, Threads: 1}

const adminToken = "test-admin-token"

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// activations records OnAppActivated calls and can make them fail.
type activations struct {
	mu   sync.Mutex
	ids  []string
	fail error
}

func (a *activations) hook(_ context.Context, appID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.ids = append(a.ids, appID)
	return nil
}

func (a *activations) calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.ids)
}

func (a *activations) setFail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail = err
}

// env is one node: the service behind a real HTTP server.
type env struct {
	t         *testing.T
	db        *store.DB
	svc       *Service
	http      *httpapi.Server
	url       string
	clock     *clock
	logs      *syncBuffer
	activated *activations
}

// testIssuer is the issuer of every test service that does not set its
// own; nodes on one database share it, as an installation's nodes do.
const testIssuer = "http://identity.test"

// newEnv starts a node on db. opts may set Mode, Issuer and TokenTTL; the
// clock, logger, password cost and hook are the test's.
func newEnv(t *testing.T, db *store.DB, opts Options) *env {
	t.Helper()
	e := &env{t: t, db: db, clock: newClock(), logs: &syncBuffer{}, activated: &activations{}}
	if err := migrateAll(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Now = e.clock.Now
	opts.Logger = logger
	opts.PasswordCost = cheapCost
	opts.OnAppActivated = e.activated.hook
	if opts.Sealer == nil {
		opts.Sealer = testSealer(t, 1)
	}
	if opts.Issuer == "" {
		opts.Issuer = testIssuer
	}
	svc, err := open(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.http = httpapi.New(httpapi.Config{Version: "test", AdminToken: adminToken, Logger: logger, Registerer: prometheus.NewRegistry()})
	svc.Register(e.http)
	e.http.Use(developerAuth(e.http, svc))
	srv := httptest.NewServer(e.http)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// open is New followed by Start, as the platform does it.
func open(db *store.DB, opts Options) (*Service, error) {
	s, err := New(db, opts)
	if err != nil {
		return nil, err
	}
	if err := s.Start(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// developerAuth stands in for the gateway: on routes that declare the
// developer scheme, a valid developer token puts the developer in the
// context. Without a token the handler itself answers 401.
func developerAuth(srv *httpapi.Server, s *Service) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, req := range srv.Security(srv.Route(r)) {
				if _, ok := req[httpapi.SchemeDeveloper]; !ok {
					continue
				}
				if token, ok := httpapi.BearerToken(r.Header.Get("Authorization")); ok {
					dev, err := s.AuthenticateDeveloper(r.Context(), token)
					if err != nil {
						httpapi.WriteProblem(w, r, err)
						return
					}
					r = r.WithContext(auth.WithDeveloper(r.Context(), dev))
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// call sends a JSON request with an optional bearer token and decodes the
// answer into into; it returns the status.
func (e *env) call(method, path, token string, body, into any) int {
	e.t.Helper()
	res := e.do(method, path, token, body)
	defer res.Body.Close()
	if into != nil {
		b, _ := io.ReadAll(res.Body)
		if len(b) > 0 {
			if err := json.Unmarshal(b, into); err != nil {
				e.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
			}
		}
	}
	return res.StatusCode
}

func (e *env) do(method, path, token string, body any) *http.Response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

type signedUp struct {
	ID             string `json:"id"`
	OrganizationID string `json:"organization_id"`
	Token          string `json:"token"`
}

func (e *env) signUp(email string) signedUp {
	e.t.Helper()
	var out signedUp
	if code := e.call("POST", "/v1/developers", "", map[string]string{
		"email": email, "password": "correct horse battery", "organization": "Org of " + email,
	}, &out); code != http.StatusCreated || out.Token == "" {
		e.t.Fatalf("sign up %s: %d %+v", email, code, out)
	}
	return out
}

type createdApp struct {
	ID           string   `json:"id"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Scopes       []string `json:"scopes"`
	Status       string   `json:"status"`
	CreatedAt    string   `json:"created_at"`
}

func (e *env) createApp(devToken string, scopes ...string) createdApp {
	e.t.Helper()
	var out createdApp
	if code := e.call("POST", "/v1/apps", devToken, map[string]any{"name": "Test app", "scopes": scopes}, &out); code != http.StatusCreated {
		e.t.Fatalf("create app: %d %+v", code, out)
	}
	return out
}

// credentials is the standard client-credentials client, configured with
// nothing but what the contract gives a developer.
func (e *env) credentials(app createdApp, style oauth2.AuthStyle, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		TokenURL: e.url + TokenPath, ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		AuthStyle: style, Scopes: scopes,
	}
}

// accessToken gets a token with the standard client or fails the test.
func (e *env) accessToken(app createdApp, scopes ...string) *oauth2.Token {
	e.t.Helper()
	tok, err := e.credentials(app, oauth2.AuthStyleInHeader, scopes...).Token(context.Background())
	if err != nil {
		e.t.Fatalf("client credentials: %v", err)
	}
	return tok
}

// bank calls /bank/v1 with the admin token.
func (e *env) bank(method, path string, into any) int {
	e.t.Helper()
	return e.call(method, "/bank/v1"+path, adminToken, nil, into)
}

// postForm posts a raw token request.
func (e *env) postForm(body string, header http.Header) (*http.Response, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.url+TokenPath, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return res, out
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil || causeway.ErrorCode(err) != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

func jsonDecode(res *http.Response, v any) error { return json.NewDecoder(res.Body).Decode(v) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testSealer is a sealer with a fixed key; different ids give different
// keys.
func testSealer(t testing.TB, id byte) *seal.Sealer {
	key := make([]byte, 32)
	key[0] = id
	s, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// migrateAll creates identity's tables and the audit trail's, which the
// bank's decisions on apps and keys append to.
func migrateAll(ctx context.Context, db *store.DB) error {
	if err := Migrate(ctx, db); err != nil {
		return err
	}
	return audit.Migrate(ctx, db)
}
