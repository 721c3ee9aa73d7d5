package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/identity"
)

// How an operation of the reference can be tried from the portal: with an
// app's access token (issued from its client credentials, as the app
// itself would get one), or with a developer token made for the call.
const (
	tryApp       = "app"
	tryDeveloper = "developer"
)

// maxTryResponse bounds how much of a response the try page shows.
const maxTryResponse = 256 << 10

// tryWith says how an operation can be tried, or "" (the bank's
// operations, and those without credentials, which need no form).
func tryWith(path string, op *huma.Operation) string {
	if strings.HasPrefix(path, "/bank/") || streams(op) {
		return ""
	}
	sec := op.Security
	how := ""
	for _, req := range sec {
		if _, ok := req[httpapi.SchemeAppOAuth2]; ok {
			return tryApp
		}
		if _, ok := req[httpapi.SchemeDeveloper]; ok {
			how = tryDeveloper
		}
	}
	return how
}

// streams reports whether an operation answers with a stream, which a
// form cannot show.
func streams(op *huma.Operation) bool {
	for _, resp := range op.Responses {
		if resp != nil && resp.Content["text/event-stream"] != nil {
			return true
		}
	}
	return false
}

// exampleBody is a request body to start from: the schema's example
// values, or an empty value of each field's type, for the required fields
// (all of them when none is required).
func exampleBody(reg huma.Registry, s *huma.Schema) string {
	v := exampleValue(reg, s, 0)
	if v == nil {
		return ""
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}

func exampleValue(reg huma.Registry, s *huma.Schema, depth int) any {
	s = resolve(reg, s)
	if s == nil || depth > 4 {
		return nil
	}
	if len(s.Examples) > 0 {
		return s.Examples[0]
	}
	if len(s.Enum) > 0 {
		return s.Enum[0]
	}
	switch s.Type {
	case "object":
		obj := map[string]any{}
		for name, prop := range s.Properties {
			if len(s.Required) > 0 && !slices.Contains(s.Required, name) {
				continue
			}
			obj[name] = exampleValue(reg, prop, depth+1)
		}
		return obj
	case "array":
		if item := exampleValue(reg, s.Items, depth+1); item != nil {
			return []any{item}
		}
		return []any{}
	case "string":
		return ""
	case "integer", "number":
		return 0
	case "boolean":
		return false
	}
	return nil
}

// tryResult is what the try page shows of one call.
type tryResult struct {
	Method, URL, Curl string
	Status            int
	StatusText        string
	Headers           [][2]string
	Body              string
	Truncated         bool
}

// tryForm is the try form of one operation as it was filled in.
type tryForm struct {
	AppID  string
	Values map[string]string // parameter name -> value
	Body   string
}

// tryOperation calls one operation of the API for the developer, with
// their app's token or their own, and shows the answer. The call goes
// through the node's whole HTTP stack in process, gateway included:
// scopes, rate limits, idempotency and analytics apply as they would to
// the app calling from outside.
func (p *Portal) tryOperation(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ref := p.reference()
	op := ref.op(r.PostFormValue("op"))
	if op == nil || op.Try == "" {
		return errNotFound()
	}
	f := &tryForm{AppID: r.PostFormValue("app"), Values: map[string]string{}, Body: r.PostFormValue("body")}
	for _, prm := range op.Params {
		f.Values[prm.Name] = strings.TrimSpace(r.PostFormValue("p:" + prm.Name))
	}
	res, err := p.call(r, s, op, f, r.PostFormValue("client_secret"))
	if err != nil && !isFormError(err) {
		return err
	}
	apps, aerr := p.d.Identity.Apps(r.Context(), s.Dev, identity.MaxPageSize, "")
	if aerr != nil {
		return aerr
	}
	v := s.view("Try "+op.Method+" "+op.Path, "reference")
	if err != nil {
		v.Error = formError(err)
	}
	v.D = map[string]any{"Op": op, "Apps": apps.Data, "Form": f, "Result": res}
	p.render(w, r, http.StatusOK, "try", v)
	return nil
}

// call builds the request the form describes and serves it.
func (p *Portal) call(r *http.Request, s *devSession, op *refOp, f *tryForm, secret string) (*tryResult, error) {
	ctx, cancel := bounded(r)
	defer cancel()
	token, err := p.tryToken(ctx, r, s, op, f.AppID, secret)
	if err != nil {
		return nil, err
	}
	if op.Try == tryDeveloper {
		// The token was made for this one call: revoke it after, even
		// when the page's deadline has passed.
		defer p.d.Identity.LogOut(context.WithoutCancel(ctx), token)
	}
	path := op.Path
	query := url.Values{}
	header := http.Header{}
	for _, prm := range op.Params {
		val := f.Values[prm.Name]
		if val == "" {
			if prm.Required {
				return nil, causeway.Errorf(causeway.EINVALID, "missing_parameter", "%s is required", prm.Name)
			}
			continue
		}
		switch prm.In {
		case "path":
			path = strings.ReplaceAll(path, "{"+prm.Name+"}", url.PathEscape(val))
		case "query":
			query.Set(prm.Name, val)
		case "header":
			header.Set(prm.Name, val)
		}
	}
	target := path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader = http.NoBody
	if op.HasBody && strings.TrimSpace(f.Body) != "" {
		body = strings.NewReader(f.Body)
		header.Set("Content-Type", "application/json")
	}
	req, err := http.NewRequestWithContext(ctx, op.Method, target, body)
	if err != nil {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_parameter", "the parameters do not make a valid URL")
	}
	req.Header = header
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Host, req.RemoteAddr, req.TLS = r.Host, r.RemoteAddr, r.TLS
	rec := &captured{header: http.Header{}}
	p.srv.ServeHTTP(rec, req)

	res := &tryResult{Method: op.Method, URL: target, Status: rec.status, StatusText: http.StatusText(rec.status),
		Body: prettyJSON(rec.body.Bytes()), Truncated: rec.truncated}
	for _, name := range []string{"Content-Type", "Location", "Idempotent-Replayed", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After", "X-Request-Id"} {
		if v := rec.header.Get(name); v != "" {
			res.Headers = append(res.Headers, [2]string{name, v})
		}
	}
	res.Curl = curlLine(p.d.Identity.Issuer(), req, f.Body)
	return res, nil
}

// tryToken is the bearer token the call carries: an access token for the
// developer's app, issued from its client credentials by the token
// endpoint's own method, or a developer token made for this call (the
// session holds none: its cookie is not an API credential).
func (p *Portal) tryToken(ctx context.Context, r *http.Request, s *devSession, op *refOp, appID, secret string) (string, error) {
	if op.Try == tryDeveloper {
		tok, err := p.d.Identity.IssueDeveloperToken(ctx, s.Dev, tryTokenTTL)
		return tok.Token, err
	}
	if appID == "" {
		return "", causeway.Errorf(causeway.EINVALID, "missing_app", "choose the app to call as")
	}
	app, err := p.d.Identity.App(ctx, s.Dev, appID)
	if err != nil {
		return "", err
	}
	if secret == "" {
		return "", causeway.Errorf(causeway.EINVALID, "missing_secret", "enter the app's client secret (shown once when the app was created or its secret rotated)")
	}
	tok, err := p.d.Identity.IssueToken(ctx, identity.TokenRequest{ClientID: app.ClientID, ClientSecret: secret})
	if err != nil {
		if causeway.ErrorKind(err) == causeway.EUNAUTHORIZED {
			return "", causeway.Errorf(causeway.EINVALID, "invalid_client", "the client secret is not this app's")
		}
		return "", err
	}
	return tok.Token, nil
}

// curlLine is the same call as a command line, with the token left as a
// variable: the page never shows a credential.
func curlLine(base string, req *http.Request, body string) string {
	var b strings.Builder
	b.WriteString("curl -X " + req.Method + " '" + base + req.URL.RequestURI() + "'")
	b.WriteString(` -H "Authorization: Bearer $TOKEN"`)
	for _, name := range []string{"Idempotency-Key", "Content-Type"} {
		if v := req.Header.Get(name); v != "" {
			b.WriteString(" -H '" + name + ": " + strings.ReplaceAll(v, "'", `'\''`) + "'")
		}
	}
	if strings.TrimSpace(body) != "" && req.Header.Get("Content-Type") != "" {
		b.WriteString(" -d '" + strings.ReplaceAll(body, "'", `'\''`) + "'")
	}
	return b.String()
}

// captured is a response held in memory, up to maxTryResponse bytes.
type captured struct {
	header    http.Header
	status    int
	body      bytes.Buffer
	truncated bool
}

func (c *captured) Header() http.Header { return c.header }

func (c *captured) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *captured) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	if room := maxTryResponse - c.body.Len(); len(b) > room {
		c.body.Write(b[:max(room, 0)])
		c.truncated = true
		return len(b), nil
	}
	return c.body.Write(b)
}
