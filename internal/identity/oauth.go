package identity

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
)

// The authorization server's paths.
const (
	TokenPath    = "/oauth2/token"
	JWKSPath     = "/.well-known/jwks.json"
	MetadataPath = "/.well-known/oauth-authorization-server"
)

// maxTokenRequestBytes bounds the token endpoint's form. The endpoint is
// outside huma, and a client-credentials request is a few hundred bytes.
const maxTokenRequestBytes = 16 << 10

// OAuthError is the token endpoint's error response (RFC 6749 §5.2).
type OAuthError struct {
	status      int
	Code        string `json:"error" enum:"invalid_request,invalid_client,unauthorized_client,unsupported_grant_type,invalid_scope" doc:"invalid_client (401): client authentication failed; unauthorized_client: the app is pending approval or suspended; invalid_scope: a scope the app does not hold; invalid_request, unsupported_grant_type: the request itself"`
	Description string `json:"error_description,omitempty" doc:"What went wrong, for a person to read"`
}

// TokenResponse is the token endpoint's answer (RFC 6749 §5.1). Its
// fields are in the order the endpoint has always written them.
type TokenResponse struct {
	AccessToken string `json:"access_token" doc:"The access token: an EdDSA-signed JWT (RFC 9068) whose iss is the issuer and aud causeway-api; send it as a Bearer token"`
	ExpiresIn   int64  `json:"expires_in" doc:"Seconds until it expires"`
	Scope       string `json:"scope" doc:"The scopes it carries, space-separated"`
	TokenType   string `json:"token_type" enum:"Bearer"`
}

// tokenForm documents the token endpoint's form (it is parsed by
// parseTokenRequest, not decoded into this).
type tokenForm struct {
	GrantType    string `json:"grant_type" enum:"client_credentials"`
	Scope        string `json:"scope,omitempty" maxLength:"1024" doc:"The scopes to ask for, space-separated, each one the app holds; without it the token carries every scope of the app"`
	ClientID     string `json:"client_id,omitempty" maxLength:"128" doc:"client_secret_post: the app's client id, when it does not authenticate with HTTP Basic"`
	ClientSecret string `json:"client_secret,omitempty" maxLength:"256" doc:"client_secret_post: the app's client secret, with client_id"`
}

func badRequest(code, desc string) *OAuthError {
	return &OAuthError{status: http.StatusBadRequest, Code: code, Description: desc}
}

func invalidClient(desc string) *OAuthError {
	return &OAuthError{status: http.StatusUnauthorized, Code: "invalid_client", Description: desc}
}

// tokenOperation documents POST /oauth2/token, which is served outside
// huma (its errors are OAuth's, not problems).
func tokenOperation(reg huma.Registry) *huma.Operation {
	schema := func(t reflect.Type) *huma.Schema { return reg.Schema(t, true, "") }
	oauthError := func(description string) *huma.Response {
		return &huma.Response{Description: description,
			Content: map[string]*huma.MediaType{"application/json": {Schema: schema(reflect.TypeFor[OAuthError]())}}}
	}
	unauthorized := oauthError("invalid_client: client authentication failed (an unknown client id, a wrong secret, " +
		"a deleted app, or no credentials at all).")
	unauthorized.Headers = map[string]*huma.Param{"WWW-Authenticate": {
		Description: `Basic realm="causeway", charset="UTF-8": authenticate with HTTP Basic.`,
		Schema:      &huma.Schema{Type: huma.TypeString},
	}}
	op := httpapi.NoStore(huma.Operation{
		OperationID: "get-access-token", Method: http.MethodPost, Path: TokenPath,
		Summary: "Get an access token (client credentials)",
		Description: "The OAuth2 client-credentials grant (RFC 6749 section 4.4): exchanges an app's client id and secret " +
			"for an access token to the /v1 API, valid 15 minutes by default (expires_in). Any OAuth2 client library " +
			"does this given the token URL, the client id and the secret; fetch a new token when it expires rather than " +
			"one per call.\n\nSend the form with grant_type=client_credentials, and authenticate either with HTTP Basic " +
			"(client_secret_basic: client id and secret, each form-urlencoded, as user and password) or with client_id " +
			"and client_secret in the form (client_secret_post), never both and never in the URL. Errors are OAuth " +
			"errors, not problems. An app pending the bank's approval or suspended gets 400 unauthorized_client. " +
			"The token is a JWT verifiable with the keys at /.well-known/jwks.json; /.well-known/oauth-authorization-server " +
			"describes this server (RFC 8414).",
		Tags: []string{"OAuth2"},
		// HTTP Basic, or no header at all with the credentials in the form.
		Security: []map[string][]string{{httpapi.SchemeClientBasic: {}}, {}},
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
			"application/x-www-form-urlencoded": {Schema: schema(reflect.TypeFor[tokenForm]())},
		}},
		Responses: map[string]*huma.Response{
			"200": {Description: "An access token", Content: map[string]*huma.MediaType{
				"application/json": {Schema: schema(reflect.TypeFor[TokenResponse]())},
			}},
			"400": oauthError("invalid_request (not a form, a parameter repeated, grant_type missing, credentials in the " +
				"URL or sent both ways), unsupported_grant_type (only client_credentials), unauthorized_client (the app " +
				"is not active) or invalid_scope (a scope the app does not hold)."),
			"401": unauthorized,
		},
	})
	return &op
}

// tokenRequest is a parsed, well-formed token request.
type tokenRequest struct {
	grantType    string
	clientID     string
	clientSecret string
	scopes       []string
}

// parseTokenRequest reads a token request: the form body (bounded), with
// every parameter at most once (RFC 6749 §3.2), and exactly one client
// authentication method: HTTP Basic with form-urlencoded id and secret
// (client_secret_basic, §2.3.1) or both in the body (client_secret_post).
func parseTokenRequest(w http.ResponseWriter, r *http.Request) (*tokenRequest, *OAuthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, badRequest("invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTokenRequestBytes))
	if err != nil {
		return nil, badRequest("invalid_request", "the body is unreadable or larger than 16 KiB")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("invalid_request", "the body is not a valid form")
	}
	for name, values := range form {
		if len(values) > 1 {
			return nil, badRequest("invalid_request", "parameter "+strconvQuote(name)+" is repeated")
		}
	}
	// Credentials in the URL end up in logs and histories (§2.3.1).
	if q := r.URL.Query(); q.Has("client_secret") {
		return nil, badRequest("invalid_request", "client credentials must not be sent in the URL")
	}
	req := &tokenRequest{grantType: form.Get("grant_type")}
	if req.grantType == "" {
		return nil, badRequest("invalid_request", "grant_type is required")
	}
	if req.grantType != "client_credentials" {
		return nil, badRequest("unsupported_grant_type", "only the client_credentials grant is supported")
	}
	if scope := form.Get("scope"); scope != "" {
		req.scopes = strings.Fields(scope)
	}

	if h := r.Header.Get("Authorization"); h != "" {
		scheme, _, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Basic") {
			return nil, invalidClient("use HTTP Basic (client_secret_basic) or client_id and client_secret in the body")
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			return nil, invalidClient("malformed HTTP Basic credentials")
		}
		// RFC 6749 §2.3.1: id and secret are form-urlencoded before they
		// are joined and base64-encoded.
		if id, err = url.QueryUnescape(id); err != nil {
			return nil, invalidClient("malformed client id")
		}
		if secret, err = url.QueryUnescape(secret); err != nil {
			return nil, invalidClient("malformed client secret")
		}
		if form.Has("client_secret") || form.Has("client_id") && form.Get("client_id") != id {
			return nil, badRequest("invalid_request", "use one client authentication method: HTTP Basic or the body, not both")
		}
		req.clientID, req.clientSecret = id, secret
	} else {
		req.clientID, req.clientSecret = form.Get("client_id"), form.Get("client_secret")
	}
	if req.clientID == "" || req.clientSecret == "" {
		return nil, invalidClient("client authentication is required: client_secret_basic or client_secret_post")
	}
	return req, nil
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(truncate(s, 64))
	return string(b)
}

// token serves POST /oauth2/token. Its answers, errors included, are not
// to be cached (RFC 6749 §5.1): Register marks the route NoStore.
func (s *Service) token(w http.ResponseWriter, r *http.Request) {
	req, oerr := parseTokenRequest(w, r)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	tok, err := s.IssueToken(r.Context(), TokenRequest{
		ClientID: req.clientID, ClientSecret: req.clientSecret, Scopes: req.scopes,
	})
	if err != nil {
		var ce *causeway.Error
		if !errors.As(err, &ce) || ce.Kind == causeway.EUNAVAILABLE || ce.Kind == causeway.EINTERNAL {
			httpapi.WriteProblem(w, r, err)
			return
		}
		switch ce.Code {
		case "invalid_client":
			writeOAuthError(w, invalidClient(ce.Message))
		case "unauthorized_client", "invalid_scope":
			writeOAuthError(w, badRequest(ce.Code, ce.Message))
		default:
			writeOAuthError(w, badRequest("invalid_request", ce.Message))
		}
		return
	}
	writeJSON(w, http.StatusOK, TokenResponse{
		AccessToken: tok.Token,
		TokenType:   "Bearer",
		ExpiresIn:   int64(tok.ExpiresIn.Seconds()),
		Scope:       strings.Join(tok.Scopes, " "),
	})
}

func writeOAuthError(w http.ResponseWriter, e *OAuthError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="causeway", charset="UTF-8"`)
	}
	writeJSON(w, e.status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// jwks serves the public keys that verify access tokens (RFC 7517).
func (s *Service) jwks(w http.ResponseWriter, r *http.Request) {
	keys, err := s.publicKeys(r.Context())
	if err != nil {
		httpapi.WriteProblem(w, r, err)
		return
	}
	set := jwk.NewSet()
	for _, k := range keys {
		jk, err := jwk.Import(k.public)
		if err != nil {
			httpapi.WriteProblem(w, r, err)
			return
		}
		for _, kv := range []struct {
			name  string
			value any
		}{{jwk.KeyIDKey, k.KID}, {jwk.AlgorithmKey, jwa.EdDSA()}, {jwk.KeyUsageKey, jwk.ForSignature}} {
			if err := jk.Set(kv.name, kv.value); err != nil {
				httpapi.WriteProblem(w, r, err)
				return
			}
		}
		if err := set.AddKey(jk); err != nil {
			httpapi.WriteProblem(w, r, err)
			return
		}
	}
	// Short caching: verifiers refetch on an unknown kid anyway, and a
	// rotation should reach them soon.
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, http.StatusOK, set)
}

// Metadata is the authorization server metadata document (RFC 8414).
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	// ResponseTypesSupported is required by RFC 8414; there is no
	// authorization endpoint, so it is empty.
	ResponseTypesSupported []string `json:"response_types_supported"`
	// AccessTokenAudience is the "aud" of every access token (Audience):
	// a verifier checks it beside "iss". RFC 8414 has no member for it
	// and allows extensions, so it is named for what it is.
	AccessTokenAudience string `json:"access_token_audience"`
}

// MetadataFor returns the metadata document for an issuer.
func MetadataFor(issuer string) Metadata {
	return Metadata{
		Issuer:                            issuer,
		TokenEndpoint:                     issuer + TokenPath,
		JWKSURI:                           issuer + JWKSPath,
		GrantTypesSupported:               []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
		ScopesSupported:                   append([]string(nil), auth.AllScopes...),
		ResponseTypesSupported:            []string{},
		AccessTokenAudience:               Audience,
	}
}

func (s *Service) metadata(w http.ResponseWriter, r *http.Request) {
	// The document is the same whoever asks and under whatever Host: it
	// comes from the configured issuer only, so a cache may share it.
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, MetadataFor(s.opts.Issuer))
}
