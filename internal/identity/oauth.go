package identity

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

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

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func badRequest(code, desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: code, Description: desc}
}

func invalidClient(desc string) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, Code: "invalid_client", Description: desc}
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
func parseTokenRequest(w http.ResponseWriter, r *http.Request) (*tokenRequest, *oauthError) {
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
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok.Token,
		"token_type":   "Bearer",
		"expires_in":   int64(tok.ExpiresIn.Seconds()),
		"scope":        strings.Join(tok.Scopes, " "),
	})
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
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
