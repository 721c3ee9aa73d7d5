package sso

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
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

// A real OpenID Provider for the tests: zitadel/oidc's op package serves
// discovery, authorize, token, userinfo and keys on 127.0.0.1, over the
// small in-memory op.Storage below (one confidential client that must use
// PKCE S256, a few users), with a login page that signs in whoever the test
// names at once. A test can take it down, or make its token endpoint hand
// out ID tokens re-signed with altered claims, to see how Finish copes with
// a provider that misbehaves.

// idpUser is a person at the provider.
type idpUser struct {
	Email string
	Name  string
	// Groups is the groups claim: nil for none, else a string, a []string
	// or anything else a provider might send.
	Groups any
	// GroupsAtUserinfoOnly leaves the groups out of the ID token: only the
	// userinfo endpoint sends them.
	GroupsAtUserinfoOnly bool
}

// testIdP is the provider and its storage.
type testIdP struct {
	URL      string // the issuer
	ClientID string
	Secret   string

	provider *op.Provider
	key      *ecdsa.PrivateKey
	keyID    string
	redirect string

	mu       sync.Mutex
	users    map[string]idpUser
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

// newIdP starts a provider whose one client, ClientID, may redirect to
// redirect only.
func newIdP(t *testing.T, redirect string) *testIdP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idp := &testIdP{
		ClientID: "causeway-console", Secret: "console-secret-" + randomString(),
		key: key, keyID: "k1", redirect: redirect,
		users:    map[string]idpUser{},
		requests: map[string]*idpRequest{}, codes: map[string]string{}, tokens: map[string]idpToken{},
	}
	srv := httptest.NewServer(http.HandlerFunc(idp.serveHTTP))
	t.Cleanup(srv.Close)
	idp.URL = srv.URL
	cfg := &op.Config{
		CryptoKey:       sha256.Sum256([]byte(randomString())),
		CodeMethodS256:  true,
		SupportedScopes: []string{"openid", "email", "profile", "groups"},
	}
	idp.provider, err = op.NewProvider(cfg, idp, op.StaticIssuer(idp.URL), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	return idp
}

func (idp *testIdP) addUser(subject string, u idpUser) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.users[subject] = u
}

// signInAs makes the login page sign in subject; "" makes it deny access.
func (idp *testIdP) signInAs(subject string) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.loginAs = subject
}

// setDown makes every endpoint answer 503 (true) or work (false).
func (idp *testIdP) setDown(down bool) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.down = down
}

// setTamper makes the token endpoint pass each ID token's claims through
// f and sign the result again, with the key f returns or, when nil, the
// provider's own key (whose JWKS then vouches for it). nil stops it.
func (idp *testIdP) setTamper(f func(claims map[string]any) *ecdsa.PrivateKey) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.tamper = f
}

func (idp *testIdP) seen() (challenges []oidc.CodeChallenge, scopes [][]string, userinfoCalls int) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return slices.Clone(idp.challenges), slices.Clone(idp.scopes), idp.userinfoCalls
}

func (idp *testIdP) serveHTTP(w http.ResponseWriter, r *http.Request) {
	idp.mu.Lock()
	down, tamper := idp.down, idp.tamper
	idp.mu.Unlock()
	switch {
	case down:
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	case r.URL.Path == "/login":
		idp.login(w, r)
	case r.URL.Path == "/oauth/token" && tamper != nil:
		idp.tamperedToken(w, r, tamper)
	default:
		idp.provider.ServeHTTP(w, r)
	}
}

// login is the provider's login page: it signs in loginAs at once, or
// answers access_denied to the client as a provider whose user declined.
func (idp *testIdP) login(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	idp.mu.Lock()
	req, ok := idp.requests[id]
	who := idp.loginAs
	if ok && who != "" {
		req.subject, req.done, req.authTime = who, true, time.Now()
	}
	idp.mu.Unlock()
	switch {
	case !ok:
		http.Error(w, "unknown auth request", http.StatusBadRequest)
	case who == "":
		op.AuthRequestError(w, r, req.snapshot(), oidc.ErrAccessDenied().WithDescription("the user declined"), idp.provider)
	default:
		// The provider's own session, as a real one keeps.
		http.SetCookie(w, &http.Cookie{Name: "idp_session", Value: who, Path: "/", HttpOnly: true})
		http.Redirect(w, r, idp.URL+"/authorize/callback?id="+url.QueryEscape(id), http.StatusFound)
	}
}

// tamperedToken lets the real token endpoint answer, then replaces its ID
// token by one with the claims tamper made, signed again.
func (idp *testIdP) tamperedToken(w http.ResponseWriter, r *http.Request, tamper func(map[string]any) *ecdsa.PrivateKey) {
	rec := httptest.NewRecorder()
	idp.provider.ServeHTTP(rec, r)
	var body map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	raw, _ := body["id_token"].(string)
	parts := strings.Split(raw, ".")
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
		key = idp.key
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: idp.keyID}},
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

// The op.Storage methods.

var errUnsupported = errors.New("not supported by the test provider")

// CreateAuthRequest keeps an authorization request; the client must use
// PKCE S256, as the bank's provider would require of the console.
func (idp *testIdP) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.challenges = append(idp.challenges, oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod})
	idp.scopes = append(idp.scopes, slices.Clone(req.Scopes))
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with S256 is required")
	}
	r := &idpRequest{id: randomString(), req: *req}
	idp.requests[r.id] = r
	return r.snapshot(), nil
}

func (idp *testIdP) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if r, ok := idp.requests[id]; ok {
		return r.snapshot(), nil
	}
	return nil, errors.New("no such auth request")
}

func (idp *testIdP) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if r, ok := idp.requests[idp.codes[code]]; ok {
		return r.snapshot(), nil
	}
	return nil, errors.New("no such code")
}

func (idp *testIdP) SaveAuthCode(_ context.Context, id, code string) error {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.codes[code] = id
	return nil
}

// DeleteAuthRequest ends a request and its code once tokens are issued:
// a code works once.
func (idp *testIdP) DeleteAuthRequest(_ context.Context, id string) error {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	delete(idp.requests, id)
	for code, rid := range idp.codes {
		if rid == id {
			delete(idp.codes, code)
		}
	}
	return nil
}

func (idp *testIdP) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	id, exp := randomString(), time.Now().Add(5*time.Minute)
	idp.tokens[id] = idpToken{subject: req.GetSubject(), scopes: slices.Clone(req.GetScopes()), expires: exp}
	return id, exp, nil
}

func (idp *testIdP) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errUnsupported
}

func (idp *testIdP) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errUnsupported
}

func (idp *testIdP) TerminateSession(context.Context, string, string) error { return nil }

func (idp *testIdP) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (idp *testIdP) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (idp *testIdP) SigningKey(context.Context) (op.SigningKey, error) {
	return idpKey{idp.key, idp.keyID}, nil
}

func (idp *testIdP) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (idp *testIdP) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{idpPublicKey{&idp.key.PublicKey, idp.keyID}}, nil
}

func (idp *testIdP) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != idp.ClientID {
		return nil, errors.New("no such client")
	}
	return idpClient{idp}, nil
}

func (idp *testIdP) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != idp.ClientID || secret != idp.Secret {
		return errors.New("wrong client credentials")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in favour of SetUserinfoFromRequest.
func (idp *testIdP) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest writes the ID token's claims.
func (idp *testIdP) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return idp.userinfo(info, req.GetSubject(), scopes, true)
}

// SetUserinfoFromToken answers the userinfo endpoint.
func (idp *testIdP) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	idp.mu.Lock()
	tok, ok := idp.tokens[tokenID]
	idp.userinfoCalls++
	idp.mu.Unlock()
	if !ok || time.Now().After(tok.expires) {
		return errors.New("the access token is invalid or expired")
	}
	return idp.userinfo(info, tok.subject, tok.scopes, false)
}

func (idp *testIdP) userinfo(info *oidc.UserInfo, subject string, scopes []string, idToken bool) error {
	idp.mu.Lock()
	u, ok := idp.users[subject]
	idp.mu.Unlock()
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

func (idp *testIdP) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errUnsupported
}

func (idp *testIdP) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (idp *testIdP) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errUnsupported
}

func (idp *testIdP) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (idp *testIdP) Health(context.Context) error { return nil }

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
type idpClient struct{ idp *testIdP }

func (c idpClient) GetID() string                       { return c.idp.ClientID }
func (c idpClient) RedirectURIs() []string              { return []string{c.idp.redirect} }
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
func (c idpClient) LoginURL(id string) string            { return c.idp.URL + "/login?id=" + url.QueryEscape(id) }
func (c idpClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c idpClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
