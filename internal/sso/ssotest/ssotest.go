// Package ssotest is an OpenID Provider for tests: zitadel/oidc's op
// package serves discovery, authorize, token, userinfo and keys on
// loopback, over a small in-memory op.Storage (one confidential client that
// must use PKCE S256, a few users), with a login page that signs in whoever
// the test names at once. A test can take it down, or make its token
// endpoint hand out ID tokens re-signed with altered claims, to see how a
// client copes with a provider that misbehaves. It is a real provider, not
// a mock of the protocol: the console's single sign-on (package sso) runs
// against it unchanged.
package ssotest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// ClientID is the one client the provider knows: the console.
const ClientID = "causeway-console"

// User is a person at the provider.
type User struct {
	Email string
	Name  string
	// Groups is the groups claim: nil for none, else a string, a []string
	// or anything else a provider might send.
	Groups any
	// GroupsAtUserinfoOnly leaves the groups out of the ID token: only the
	// userinfo endpoint sends them.
	GroupsAtUserinfoOnly bool
}

// Provider is a running provider and its storage.
type Provider struct {
	// URL is the issuer, e.g. http://127.0.0.1:41234.
	URL string
	// ClientID and Secret are the console's registration.
	ClientID string
	Secret   string

	srv       *httptest.Server
	provider  *op.Provider
	loginPage bool
	key       *ecdsa.PrivateKey
	keyID     string

	mu       sync.Mutex
	redirect string
	users    map[string]User
	requests map[string]*idpRequest
	codes    map[string]string // code -> request id
	tokens   map[string]idpToken
	loginAs  string // the subject the login page signs in; "" denies access
	down     bool
	tamper   func(claims map[string]any) (key *ecdsa.PrivateKey)
	// What the provider saw.
	challenges    []oidc.CodeChallenge
	scopes        [][]string
	userinfoCalls int
}

type idpToken struct {
	subject string
	scopes  []string
	expires time.Time
}

// Options say where and how a provider listens.
type Options struct {
	// Host is the loopback address to listen on; default 127.0.0.1.
	// Another address than the client's (127.0.0.2 for a client on
	// 127.0.0.1) makes the provider another site to a browser, as the
	// bank's provider is to the console, so that the browser's SameSite
	// rules apply as they do in production.
	Host string
	// TLS serves https, with httptest's certificate (valid for 127.0.0.1
	// only), which Certificate returns for clients to trust.
	TLS bool
	// Redirect is the one redirect URL the client may use; "" until
	// SetRedirect sets it.
	Redirect string
	// LoginPage makes the login page a page whose button the person
	// clicks, as at a real provider, instead of signing them in at once.
	// In a browser the rest of the sign-in then starts from the
	// provider's page: a navigation another site began.
	LoginPage bool
}

// New starts a provider on 127.0.0.1 whose one client, ClientID, may
// redirect to redirect only. It stops when t ends.
func New(t testing.TB, redirect string) *Provider {
	t.Helper()
	return Start(t, Options{Redirect: redirect})
}

// Start starts a provider as o says. It stops when t ends.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{
		ClientID: ClientID, Secret: "console-secret-" + randomString(),
		key: key, keyID: "k1", redirect: o.Redirect, loginPage: o.LoginPage,
		users:    map[string]User{},
		requests: map[string]*idpRequest{}, codes: map[string]string{}, tokens: map[string]idpToken{},
	}
	l, err := net.Listen("tcp", net.JoinHostPort(o.Host, "0"))
	if err != nil {
		t.Fatalf("ssotest: listening on %s: %v", o.Host, err)
	}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serveHTTP))
	p.srv.Listener.Close()
	p.srv.Listener = l
	if o.TLS {
		p.srv.StartTLS()
	} else {
		p.srv.Start()
	}
	t.Cleanup(p.srv.Close)
	p.URL = p.srv.URL
	cfg := &op.Config{
		CryptoKey:       sha256.Sum256([]byte(randomString())),
		CodeMethodS256:  true,
		SupportedScopes: []string{"openid", "email", "profile", "groups"},
	}
	p.provider, err = op.NewProvider(cfg, storage{p}, op.StaticIssuer(p.URL), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Certificate is the provider's TLS certificate, nil without Options.TLS.
func (p *Provider) Certificate() *x509.Certificate { return p.srv.Certificate() }

// SetRedirect sets the one redirect URL the client may use: for a client
// whose address is known only after the provider's.
func (p *Provider) SetRedirect(redirect string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redirect = redirect
}

// AddUser adds a person, or replaces what the provider says about them
// (their groups, say) from their next sign-in on.
func (p *Provider) AddUser(subject string, u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[subject] = u
}

// SignInAs makes the login page sign in subject; "" makes it deny access.
func (p *Provider) SignInAs(subject string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loginAs = subject
}

// SetDown makes every endpoint answer 503 (true) or work (false).
func (p *Provider) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// SetTamper makes the token endpoint pass each ID token's claims through
// f and sign the result again, with the key f returns or, when nil, the
// provider's own key (whose JWKS then vouches for it). nil stops it.
func (p *Provider) SetTamper(f func(claims map[string]any) *ecdsa.PrivateKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = f
}

// Seen returns what the provider saw: the PKCE challenge and the scopes
// of each authorization request, and how often its userinfo endpoint was
// called.
func (p *Provider) Seen() (challenges []oidc.CodeChallenge, scopes [][]string, userinfoCalls int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.challenges), slices.Clone(p.scopes), p.userinfoCalls
}

func (p *Provider) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	down, tamper := p.down, p.tamper
	p.mu.Unlock()
	switch {
	case down:
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	case r.URL.Path == "/login":
		p.login(w, r)
	case r.URL.Path == "/oauth/token" && tamper != nil:
		p.tamperedToken(w, r, tamper)
	default:
		p.provider.ServeHTTP(w, r)
	}
}

// login is the provider's login page: it signs in loginAs, or answers
// access_denied to the client as a provider whose user declined. With
// Options.LoginPage a GET shows a form whose button (#idp-sign-in) posts
// back here; otherwise the GET signs in at once.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	if p.loginPage && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>The bank's identity provider</title></head><body>
<form method="post" action="/login"><input type="hidden" name="id" value="%s"><button id="idp-sign-in" type="submit">Sign in</button></form>
</body></html>`, html.EscapeString(r.URL.Query().Get("id")))
		return
	}
	id := r.FormValue("id")
	p.mu.Lock()
	req, ok := p.requests[id]
	who := p.loginAs
	if ok && who != "" {
		req.subject, req.done, req.authTime = who, true, time.Now()
	}
	p.mu.Unlock()
	switch {
	case !ok:
		http.Error(w, "unknown auth request", http.StatusBadRequest)
	case who == "":
		op.AuthRequestError(w, r, req.snapshot(), oidc.ErrAccessDenied().WithDescription("the user declined"), p.provider)
	default:
		// The provider's own session, as a real one keeps.
		http.SetCookie(w, &http.Cookie{Name: "idp_session", Value: who, Path: "/", HttpOnly: true})
		http.Redirect(w, r, p.URL+"/authorize/callback?id="+url.QueryEscape(id), http.StatusSeeOther)
	}
}

// tamperedToken lets the real token endpoint answer, then replaces its ID
// token by one with the claims tamper made, signed again.
func (p *Provider) tamperedToken(w http.ResponseWriter, r *http.Request, tamper func(map[string]any) *ecdsa.PrivateKey) {
	rec := httptest.NewRecorder()
	p.provider.ServeHTTP(rec, r)
	var body map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	raw, _ := body["id_token"].(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		http.Error(w, "the ID token is not a JWS", http.StatusInternalServerError)
		return
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err == nil {
		err = json.Unmarshal(payload, &claims)
	}
	if err != nil {
		http.Error(w, "cannot read the ID token", http.StatusInternalServerError)
		return
	}
	key := tamper(claims)
	if key == nil {
		key = p.key
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: p.keyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	payload, _ = json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err == nil {
		body["id_token"], err = jws.CompactSerialize()
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

// idpRequest is an authorization request, as op.AuthRequest.
type idpRequest struct {
	id       string
	req      oidc.AuthRequest
	subject  string
	done     bool
	authTime time.Time
}

// snapshot copies r, so the op's goroutines never share it with the login
// page's.
func (r *idpRequest) snapshot() *idpRequest { c := *r; return &c }

func (r *idpRequest) GetID() string                      { return r.id }
func (r *idpRequest) GetACR() string                     { return "" }
func (r *idpRequest) GetAMR() []string                   { return []string{"pwd"} }
func (r *idpRequest) GetAudience() []string              { return []string{r.req.ClientID} }
func (r *idpRequest) GetAuthTime() time.Time             { return r.authTime }
func (r *idpRequest) GetClientID() string                { return r.req.ClientID }
func (r *idpRequest) GetNonce() string                   { return r.req.Nonce }
func (r *idpRequest) GetRedirectURI() string             { return r.req.RedirectURI }
func (r *idpRequest) GetResponseType() oidc.ResponseType { return r.req.ResponseType }
func (r *idpRequest) GetResponseMode() oidc.ResponseMode { return r.req.ResponseMode }
func (r *idpRequest) GetScopes() []string                { return r.req.Scopes }
func (r *idpRequest) GetState() string                   { return r.req.State }
func (r *idpRequest) GetSubject() string                 { return r.subject }
func (r *idpRequest) Done() bool                         { return r.done }
func (r *idpRequest) GetCodeChallenge() *oidc.CodeChallenge {
	return &oidc.CodeChallenge{Challenge: r.req.CodeChallenge, Method: r.req.CodeChallengeMethod}
}

// storage is the provider's op.Storage: its methods stay off Provider's
// own API.
type storage struct{ *Provider }

var errUnsupported = errors.New("not supported by the test provider")

// CreateAuthRequest keeps an authorization request; the client must use
// PKCE S256, as the bank's provider would require of the console.
func (p storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.challenges = append(p.challenges, oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod})
	p.scopes = append(p.scopes, slices.Clone(req.Scopes))
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with S256 is required")
	}
	r := &idpRequest{id: randomString(), req: *req}
	p.requests[r.id] = r
	return r.snapshot(), nil
}

func (p storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.requests[id]; ok {
		return r.snapshot(), nil
	}
	return nil, errors.New("no such auth request")
}

func (p storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.requests[p.codes[code]]; ok {
		return r.snapshot(), nil
	}
	return nil, errors.New("no such code")
}

func (p storage) SaveAuthCode(_ context.Context, id, code string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.codes[code] = id
	return nil
}

// DeleteAuthRequest ends a request and its code once tokens are issued:
// a code works once.
func (p storage) DeleteAuthRequest(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.requests, id)
	for code, rid := range p.codes {
		if rid == id {
			delete(p.codes, code)
		}
	}
	return nil
}

func (p storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, exp := randomString(), time.Now().Add(5*time.Minute)
	p.tokens[id] = idpToken{subject: req.GetSubject(), scopes: slices.Clone(req.GetScopes()), expires: exp}
	return id, exp, nil
}

func (p storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errUnsupported
}

func (p storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errUnsupported
}

func (p storage) TerminateSession(context.Context, string, string) error { return nil }

func (p storage) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (p storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (p storage) SigningKey(context.Context) (op.SigningKey, error) {
	return idpKey{p.key, p.keyID}, nil
}

func (p storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (p storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{idpPublicKey{&p.key.PublicKey, p.keyID}}, nil
}

func (p storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != p.ClientID {
		return nil, errors.New("no such client")
	}
	return idpClient{p.Provider}, nil
}

func (p storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != p.ClientID || secret != p.Secret {
		return errors.New("wrong client credentials")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in favour of SetUserinfoFromRequest.
func (p storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest writes the ID token's claims.
func (p storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return p.userinfo(info, req.GetSubject(), scopes, true)
}

// SetUserinfoFromToken answers the userinfo endpoint.
func (p storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	p.mu.Lock()
	tok, ok := p.tokens[tokenID]
	p.userinfoCalls++
	p.mu.Unlock()
	if !ok || time.Now().After(tok.expires) {
		return errors.New("the access token is invalid or expired")
	}
	return p.userinfo(info, tok.subject, tok.scopes, false)
}

func (p storage) userinfo(info *oidc.UserInfo, subject string, scopes []string, idToken bool) error {
	p.mu.Lock()
	u, ok := p.users[subject]
	p.mu.Unlock()
	if !ok {
		return errors.New("no such user")
	}
	info.Subject = subject
	for _, s := range scopes {
		switch s {
		case oidc.ScopeEmail:
			info.Email, info.EmailVerified = u.Email, true
		case oidc.ScopeProfile:
			info.Name, info.PreferredUsername = u.Name, strings.Split(u.Email, "@")[0]
		case "groups":
			if u.Groups != nil && !(idToken && u.GroupsAtUserinfoOnly) {
				info.AppendClaims("groups", u.Groups)
			}
		}
	}
	return nil
}

func (p storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errUnsupported
}

func (p storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (p storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errUnsupported
}

func (p storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (p storage) Health(context.Context) error { return nil }

// idpKey is the provider's signing key (op.SigningKey).
type idpKey struct {
	key *ecdsa.PrivateKey
	id  string
}

func (k idpKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k idpKey) ID() string                                  { return k.id }
func (k idpKey) Key() any                                    { return k.key }

// idpPublicKey is the key the provider publishes (op.Key).
type idpPublicKey struct {
	key *ecdsa.PublicKey
	id  string
}

func (k idpPublicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k idpPublicKey) ID() string                         { return k.id }
func (k idpPublicKey) Use() string                        { return "sig" }
func (k idpPublicKey) Key() any                           { return k.key }

// idpClient is the console's registration at the provider: a web
// (confidential) client using client_secret_basic, the code flow only,
// one redirect URL, and the groups scope besides the standard ones.
type idpClient struct{ p *Provider }

func (c idpClient) GetID() string { return c.p.ClientID }
func (c idpClient) RedirectURIs() []string {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return []string{c.p.redirect}
}
func (c idpClient) PostLogoutRedirectURIs() []string    { return nil }
func (c idpClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c idpClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c idpClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c idpClient) GrantTypes() []oidc.GrantType         { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c idpClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c idpClient) IDTokenLifetime() time.Duration       { return 5 * time.Minute }
func (c idpClient) DevMode() bool                        { return false }
func (c idpClient) IsScopeAllowed(scope string) bool     { return scope == "groups" }
func (c idpClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c idpClient) ClockSkew() time.Duration             { return 0 }
func (c idpClient) LoginURL(id string) string            { return c.p.URL + "/login?id=" + url.QueryEscape(id) }
func (c idpClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c idpClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// randomString returns 256 random bits, base64url.
func randomString() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
