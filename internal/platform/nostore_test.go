package platform_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/spi/spitest"
)

// TestAnswersCarryingSecretsAreNeverCached: every answer that carries a
// secret or a token (a developer token, a client secret, an access token,
// a webhook, SPI or upstream signing secret), and every answer of those
// routes besides (their errors, the gateway's refusals, idempotent
// replays), says Cache-Control: no-store and Pragma: no-cache; so do the
// portal's pages that show a secret once. And every operation of the
// OpenAPI document whose answer has a secret or a token in it documents
// the header, so a new one cannot forget it.
func TestAnswersCarryingSecretsAreNeverCached(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		doc := openapitest.Fetch(t, n.URL)
		var answers []cachedAnswer
		seen := func(what string, res response, status int) response {
			t.Helper()
			if res.status != status {
				t.Fatalf("%s: %d %s, want %d", what, res.status, res.body, status)
			}
			answers = append(answers, cachedAnswer{what: what, status: res.status, header: res.header})
			return res
		}

		anon := &client{t: t, base: n.URL, doc: doc}
		const password = "a password for the cache test"
		var dev struct{ Token string }
		seen("sign-up", anon.do("POST", "/v1/developers", "/v1/developers", map[string]any{
			"email": "cache@secrets.example", "password": password, "organization": "Cache"}), 201).decode(t, &dev)
		seen("login", anon.do("POST", "/v1/developers/login", "/v1/developers/login", map[string]any{
			"email": "cache@secrets.example", "password": password}), 200)
		seen("login refused", anon.do("POST", "/v1/developers/login", "", map[string]any{
			"email": "cache@secrets.example", "password": "not the password"}), 401)
		seen("app creation refused by the gateway", anon.do("POST", "/v1/apps", "", map[string]any{"name": "x", "scopes": []string{"events:read"}}), 401)

		d := &client{t: t, base: n.URL, token: dev.Token, doc: doc}
		body := map[string]any{"name": "Cache", "scopes": []string{"events:read", "webhooks:write", "spi:write"}}
		var app struct {
			ID           string
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		seen("app creation", d.do("POST", "/v1/apps", "/v1/apps", body, "Idempotency-Key", "cache-app"), 201).decode(t, &app)
		if res := seen("app creation replayed", d.do("POST", "/v1/apps", "/v1/apps", body, "Idempotency-Key", "cache-app"), 201); res.header.Get("Idempotent-Replayed") != "true" {
			t.Fatal("the second app creation is not a replay")
		}
		seen("app creation refused", d.do("POST", "/v1/apps", "", map[string]any{"name": "", "scopes": []string{"root"}}), 422)
		seen("client secret rotation", d.do("POST", "/v1/apps/"+app.ID+"/rotate-secret", "/v1/apps/{id}/rotate-secret", nil), 200).decode(t, &app)

		token := func(what, secret string, status int) response {
			t.Helper()
			req, _ := http.NewRequest("POST", n.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(app.ClientID, secret)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return seen(what, response{status: res.StatusCode, header: res.Header, body: b}, status)
		}
		token("token refused", "not the secret", 401)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		token("token", app.ClientSecret, 200).decode(t, &tok)

		a := &client{t: t, base: n.URL, token: tok.AccessToken, doc: doc}
		hooks := httptest.NewServer(&rawReceiver{})
		defer hooks.Close()
		var wh struct{ ID string }
		seen("webhook creation", a.do("POST", "/v1/webhooks", "/v1/webhooks", map[string]any{"url": hooks.URL, "event_types": []string{"payment.*"}}), 201).decode(t, &wh)
		seen("webhook secret rotation", a.do("POST", "/v1/webhooks/"+wh.ID+"/rotate-secret", "/v1/webhooks/{id}/rotate-secret", nil), 200)
		seen("stream ticket", a.do("POST", "/v1/events/stream-tickets", "/v1/events/stream-tickets", nil), 201)
		spi := spitest.New(t, map[string]any{"insights": []any{}})
		var reg struct{ ID string }
		seen("SPI registration", a.do("POST", "/v1/spi-registrations", "/v1/spi-registrations", map[string]any{
			"extension_point": "accounts.lookup", "url": spi.URL}), 201).decode(t, &reg)
		seen("SPI secret rotation", a.do("POST", "/v1/spi-registrations/"+reg.ID+"/rotate-secret", "/v1/spi-registrations/{id}/rotate-secret", nil), 200)

		bank := &client{t: t, base: n.URL, token: platformtest.AdminToken, doc: doc}
		seen("upstream creation", bank.do("POST", "/bank/v1/upstreams", "/bank/v1/upstreams", map[string]any{
			"name": "Cards", "base_url": hooks.URL, "path_prefix": "cards", "scope": "events:read"}), 201)

		answers = append(answers, portalSecretPages(t, n)...)
		for _, a := range answers {
			// Pragma is for HTTP/1.0 caches between an API client and us;
			// the portal's pages are for browsers, which honour
			// Cache-Control.
			if cc, pragma := a.header.Get("Cache-Control"), a.header.Get("Pragma"); cc != "no-store" || (pragma != "no-cache" && !a.portal) {
				t.Errorf("%s (%d): Cache-Control %q, Pragma %q; want no-store and no-cache", a.what, a.status, cc, pragma)
			}
		}

		// Every operation whose answer holds a secret or a token says so.
		var openapi struct {
			Paths      map[string]map[string]operationDoc
			Components struct{ Schemas map[string]schemaDoc }
		}
		res := anon.do("GET", "/openapi.json", "", nil)
		if err := json.Unmarshal(res.body, &openapi); err != nil {
			t.Fatal(err)
		}
		secretish := regexp.MustCompile(`(^|_)(secret|token|ticket)$`)
		for path, ops := range openapi.Paths {
			for method, op := range ops {
				for status, r := range op.Responses {
					if !strings.HasPrefix(status, "2") {
						continue
					}
					for _, mt := range r.Content {
						s := mt.Schema
						if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
							s = openapi.Components.Schemas[name]
						}
						for _, prop := range s.Required {
							if secretish.MatchString(prop) && r.Headers["Cache-Control"] == nil {
								t.Errorf("%s %s answers %s with %q but does not document Cache-Control: no-store (httpapi.NoStore)",
									strings.ToUpper(method), path, status, prop)
							}
						}
					}
				}
			}
		}
	})
}

// cachedAnswer is an answer whose caching headers are checked.
type cachedAnswer struct {
	what   string
	status int
	header http.Header
	portal bool // a portal page
}

type operationDoc struct {
	Responses map[string]struct {
		Headers map[string]any
		Content map[string]struct{ Schema schemaDoc }
	}
}

type schemaDoc struct {
	Ref      string `json:"$ref"`
	Required []string
}

var (
	csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	appLink   = regexp.MustCompile(`/apps/(app_[A-Za-z0-9]+)`)
	hookLink  = regexp.MustCompile(`/webhooks/(wh_[A-Za-z0-9]+)`)
	regLink   = regexp.MustCompile(`/spi/(spi_[A-Za-z0-9]+)`)
)

// portalSecretPages signs a developer up in the portal, and answers the
// pages that show a secret once: a new app, a rotated client secret, a new
// webhook and its rotated secret, a new SPI registration and its rotated
// secret.
func portalSecretPages(t *testing.T, n *platformtest.Node) []cachedAnswer {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if status, _ := formPost(t, c, n.URL+"/signup", url.Values{
		"email": {"portal-cache@secrets.example"}, "password": {"a password for the portal"}, "organization": {"Cache"}}); status != http.StatusSeeOther {
		t.Fatalf("portal sign-up: %d", status)
	}
	res, err := c.Get(n.URL + "/apps")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfInput.FindSubmatch(b)
	if m == nil {
		t.Fatal("no form token on /apps")
	}
	csrf := string(m[1])
	var pages []cachedAnswer
	post := func(what, path string, form url.Values, status int, link *regexp.Regexp) string {
		t.Helper()
		form.Set("csrf", csrf)
		res, err := c.PostForm(n.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != status || !strings.Contains(string(b), "whsec_") && !strings.Contains(string(b), "cwsec_") {
			t.Fatalf("portal %s: %d, want %d with the secret:\n%.2000s", what, res.StatusCode, status, b)
		}
		pages = append(pages, cachedAnswer{what: "portal " + what, status: res.StatusCode, header: res.Header, portal: true})
		if link == nil {
			return ""
		}
		m := link.FindSubmatch(b)
		if m == nil {
			t.Fatalf("portal %s: no %s in the page", what, link)
		}
		return string(m[1])
	}
	app := post("app creation", "/apps", url.Values{"name": {"Cache"}, "scope": {"events:read", "webhooks:write", "spi:write"}}, 201, appLink)
	post("client secret rotation", "/apps/"+app+"/rotate-secret", url.Values{}, 200, nil)
	hooks := httptest.NewServer(&rawReceiver{})
	t.Cleanup(hooks.Close)
	wh := post("webhook creation", "/apps/"+app+"/webhooks", url.Values{"url": {hooks.URL}, "type": {"payment.completed"}}, 201, hookLink)
	post("webhook secret rotation", "/apps/"+app+"/webhooks/"+wh+"/rotate-secret", url.Values{}, 200, nil)
	spi := spitest.New(t, map[string]any{"insights": []any{}})
	reg := post("SPI registration", "/apps/"+app+"/spi", url.Values{"extension_point": {"accounts.lookup"}, "url": {spi.URL},
		"scope": {"app"}, "on_failure": {"stand_in"}}, 201, regLink)
	post("SPI secret rotation", "/apps/"+app+"/spi/"+reg+"/rotate-secret", url.Values{}, 200, nil)
	return pages
}
