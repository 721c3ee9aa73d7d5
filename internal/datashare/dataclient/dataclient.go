// Package dataclient is the data scientist's side of data partnering, as
// `causeway data` uses it: make an age key, request a dataset, follow the
// request, and pull its encrypted content with resume, ETag check and local
// decryption. Only this side ever turns the ciphertext back into rows.
package dataclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/page"
)

// Client calls the platform's data partnering API as one app.
type Client struct {
	server string
	hc     *http.Client
}

// Credentials authenticate a Client: an access token as is, or an app's
// client credentials (exchanged at the platform's token endpoint for
// tokens with the data:read scope).
type Credentials struct {
	Token        string
	ClientID     string
	ClientSecret string
}

// Option configures New.
type Option func(*options)

type options struct{ transport http.RoundTripper }

// WithTransport sends requests (token requests included) through rt
// instead of http.DefaultTransport.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// New returns a Client for the platform at server.
func New(ctx context.Context, server string, cred Credentials, opts ...Option) (*Client, error) {
	o := options{transport: http.DefaultTransport}
	for _, f := range opts {
		f(&o)
	}
	server = strings.TrimRight(server, "/")
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want a URL such as https://causeway.example", server)
	}
	c := &Client{server: server}
	switch {
	case cred.Token != "":
		c.hc = &http.Client{Transport: &bearer{token: cred.Token, next: o.transport}}
	case cred.ClientID != "" && cred.ClientSecret != "":
		cc := clientcredentials.Config{ClientID: cred.ClientID, ClientSecret: cred.ClientSecret,
			TokenURL: server + "/oauth2/token", Scopes: []string{"data:read"}}
		// The token source outlives ctx.
		c.hc = cc.Client(context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, &http.Client{Transport: o.transport}))
	default:
		return nil, errors.New("no credentials: give --client-id and --client-secret (or CAUSEWAY_CLIENT_ID and CAUSEWAY_CLIENT_SECRET), or --token")
	}
	return c, nil
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// Problem is an error answer of the platform (RFC 9457).
type Problem struct {
	Status     int    `json:"status"`
	Code       string `json:"code"`
	Detail     string `json:"detail"`
	RetryAfter time.Duration
}

func (p *Problem) Error() string {
	if p.Detail == "" {
		return fmt.Sprintf("%d %s", p.Status, p.Code)
	}
	return fmt.Sprintf("%s (%d %s)", p.Detail, p.Status, p.Code)
}

// ProblemCode returns the machine code of a *Problem, or "".
func ProblemCode(err error) string {
	var p *Problem
	if errors.As(err, &p) {
		return p.Code
	}
	return ""
}

func problemOf(res *http.Response) error {
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	p := &Problem{Status: res.StatusCode}
	if json.Unmarshal(b, p) != nil || p.Code == "" {
		p.Code, p.Detail = "http_"+strconv.Itoa(res.StatusCode), strings.TrimSpace(string(b))
	}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s >= 0 {
		p.RetryAfter = time.Duration(s) * time.Second
	}
	return p
}

func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return problemOf(res)
	}
	defer res.Body.Close()
	return json.NewDecoder(res.Body).Decode(out)
}

// Datasets returns the catalog (every page).
func (c *Client) Datasets(ctx context.Context) ([]*datashare.Dataset, error) {
	var all []*datashare.Dataset
	cursor := ""
	for {
		var page page.Page[*datashare.Dataset]
		if err := c.call(ctx, http.MethodGet, "/v1/datasets?limit=200&cursor="+url.QueryEscape(cursor), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if cursor = page.NextCursor; cursor == "" {
			return all, nil
		}
	}
}

// Request files an access request.
func (c *Client) Request(ctx context.Context, n datashare.NewAccessRequest) (*datashare.AccessRequest, error) {
	var r datashare.AccessRequest
	if err := c.call(ctx, http.MethodPost, "/v1/dataset-access-requests", n, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Status returns one of the app's access requests.
func (c *Client) Status(ctx context.Context, id string) (*datashare.AccessRequest, error) {
	var r datashare.AccessRequest
	if err := c.call(ctx, http.MethodGet, "/v1/dataset-access-requests/"+url.PathEscape(id), nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
