package platform_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// Issue 15's findings, on both runtimes: a scope means one thing (events:read
// reads, webhooks:write manages subscriptions), and an access token dies
// with a suspension of its app, also after the bank reinstates it.

// scopedApp signs a developer up on n and creates an app with scopes. It
// returns the developer's client and the app's client credentials.
func scopedApp(t *testing.T, n *platformtest.Node, doc *openapitest.Validator, email string, scopes ...string) (dev *client, appID string, cc clientcredentials.Config) {
	t.Helper()
	dev = &client{t: t, base: n.URL, doc: doc}
	var signedUp struct{ Token string }
	dev.must(201, "POST", "/v1/developers", map[string]any{"email": email, "password": "correct horse battery staple", "organization": "SolarWorld"}, &signedUp)
	dev.token = signedUp.Token
	var app struct {
		ID           string
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	dev.must(201, "POST", "/v1/apps", map[string]any{"name": "Scoped app", "scopes": scopes}, &app)
	return dev, app.ID, clientcredentials.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, TokenURL: n.URL + "/oauth2/token"}
}

// tokenFor gets an access token from base's token endpoint, narrowed to
// scopes when some are given.
func tokenFor(t *testing.T, base string, cc clientcredentials.Config, scopes ...string) string {
	t.Helper()
	cc.TokenURL, cc.Scopes = base+"/oauth2/token", scopes
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatalf("token %v: %v", scopes, err)
	}
	return tok.AccessToken
}

// wantProblem checks a refusal's status and problem code.
func wantProblem(t *testing.T, res response, status int, code, what string) {
	t.Helper()
	var p struct{ Code string }
	if res.status == status {
		res.decode(t, &p)
	}
	if res.status != status || p.Code != code {
		t.Errorf("%s: %d %s, want %d %s", what, res.status, res.body, status, code)
	}
}

// TestEventsReadReadsAndWebhooksWriteManagesSubscriptions: a token with
// only events:read reads events and the app's subscriptions but cannot
// create, change, delete, rotate or re-send one (403 insufficient_scope
// naming webhooks:write); a token with only webhooks:write manages and
// reads subscriptions but does not read events.
func TestEventsReadReadsAndWebhooksWriteManagesSubscriptions(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		doc := openapitest.Fetch(t, n.URL)
		_, _, cc := scopedApp(t, n, doc, "scopes@solarworld.example", "accounts:read", "events:read", "webhooks:write")
		reader := &client{t: t, base: n.URL, doc: doc, token: tokenFor(t, n.URL, cc, "events:read")}
		writer := &client{t: t, base: n.URL, doc: doc, token: tokenFor(t, n.URL, cc, "webhooks:write")}
		hook := httptest.NewServer(&rawReceiver{})
		t.Cleanup(hook.Close)

		var sub struct{ ID string }
		writer.must(201, "POST", "/v1/webhooks", map[string]any{"url": hook.URL, "event_types": []string{"payment.*"}}, &sub)
		id := sub.ID

		// events:read: every write is refused before it reaches the handler.
		writes := []struct {
			method, path, template string
			body                   any
		}{
			{"POST", "/v1/webhooks", "/v1/webhooks", map[string]any{"url": hook.URL, "event_types": []string{"*"}}},
			{"PATCH", "/v1/webhooks/" + id, "/v1/webhooks/{id}", map[string]any{"event_types": []string{"*"}}},
			{"DELETE", "/v1/webhooks/" + id, "/v1/webhooks/{id}", nil},
			{"POST", "/v1/webhooks/" + id + "/pause", "/v1/webhooks/{id}/pause", nil},
			{"POST", "/v1/webhooks/" + id + "/resume", "/v1/webhooks/{id}/resume", nil},
			{"POST", "/v1/webhooks/" + id + "/rotate-secret", "/v1/webhooks/{id}/rotate-secret", nil},
			{"POST", "/v1/webhooks/" + id + "/recover", "/v1/webhooks/{id}/recover", map[string]any{"since": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}},
			{"POST", "/v1/webhooks/" + id + "/deliveries/dlv_none/retry", "/v1/webhooks/{id}/deliveries/{delivery_id}/retry", nil},
		}
		for _, w := range writes {
			res := reader.do(w.method, w.path, w.template, w.body)
			wantProblem(t, res, 403, "insufficient_scope", "events:read "+w.method+" "+w.template)
			if !strings.Contains(res.header.Get("WWW-Authenticate"), `scope="webhooks:write"`) {
				t.Errorf("events:read %s %s: WWW-Authenticate %q does not name webhooks:write", w.method, w.template, res.header.Get("WWW-Authenticate"))
			}
		}
		var got struct {
			EventTypes []string `json:"event_types"`
		}
		reader.must(200, "GET", "/v1/webhooks/"+id, nil, &got)
		if len(got.EventTypes) != 1 || got.EventTypes[0] != "payment.*" {
			t.Errorf("after the refused writes the subscription has event types %v", got.EventTypes)
		}

		// events:read still reads: events, the catalog, and the app's
		// subscriptions with their deliveries.
		for _, r := range [][2]string{
			{"/v1/events", "/v1/events"}, {"/v1/event-types", "/v1/event-types"}, {"/v1/webhooks", "/v1/webhooks"},
			{"/v1/webhooks/" + id, "/v1/webhooks/{id}"}, {"/v1/webhooks/" + id + "/deliveries", "/v1/webhooks/{id}/deliveries"},
		} {
			if res := reader.do("GET", r[0], r[1], nil); res.status != 200 {
				t.Errorf("events:read GET %s: %d %s", r[1], res.status, res.body)
			}
		}

		// webhooks:write manages, and reads what it manages, but reads no
		// events.
		writer.must(200, "PATCH", "/v1/webhooks/"+id, map[string]any{"event_types": []string{"payment.*", "loan.*"}}, nil)
		writer.must(200, "POST", "/v1/webhooks/"+id+"/pause", nil, nil)
		writer.must(200, "POST", "/v1/webhooks/"+id+"/resume", nil, nil)
		writer.must(200, "POST", "/v1/webhooks/"+id+"/rotate-secret", nil, nil)
		writer.must(202, "POST", "/v1/webhooks/"+id+"/recover", map[string]any{"since": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}, nil)
		writer.must(200, "GET", "/v1/webhooks/"+id+"/deliveries", nil, nil)
		wantProblem(t, writer.do("GET", "/v1/events", "/v1/events", nil), 403, "insufficient_scope", "webhooks:write GET /v1/events")
		writer.must(204, "DELETE", "/v1/webhooks/"+id, nil, nil)
	})
}

// TestATokenMintedBeforeASuspensionIsDeadAfterReinstatement: the bank
// suspends an app and reinstates it; the token the app held before is 401
// for good, a token minted after the reinstatement works. On the scale-out
// runtime a second node, which had accepted the old token just before,
// refuses it as soon as the reinstatement has been answered.
func TestATokenMintedBeforeASuspensionIsDeadAfterReinstatement(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		cfg.SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
		// One issuer for every node, as a scaled-out installation has.
		cfg.PublicURL = "http://causeway.nodes.test"
		n := platformtest.Start(t, cfg)
		nodes := []*platformtest.Node{n}
		if rt.Name == platformtest.ScaleOut.Name {
			second := cfg
			second.DataDir = testkit.DataDir(t)
			nodes = append(nodes, platformtest.Start(t, second))
		}
		doc := openapitest.Fetch(t, n.URL)
		_, appID, cc := scopedApp(t, n, doc, "suspended@solarworld.example", "accounts:read")
		old := tokenFor(t, n.URL, cc)
		for _, node := range nodes {
			app := &client{t: t, base: node.URL, doc: doc, token: old}
			app.must(200, "GET", "/v1/accounts", nil, nil)
		}
		bank := &client{t: t, base: n.URL, doc: doc, token: platformtest.AdminToken}
		bank.must(200, "POST", "/bank/v1/apps/"+appID+"/suspend", nil, nil)
		wantProblem(t, (&client{t: t, base: n.URL, doc: doc, token: old}).do("GET", "/v1/accounts", "/v1/accounts", nil), 401, "app_inactive", "old token while suspended")
		bank.must(200, "POST", "/bank/v1/apps/"+appID+"/approve", nil, nil)

		fresh := tokenFor(t, n.URL, cc)
		for _, node := range nodes {
			app := &client{t: t, base: node.URL, doc: doc, token: old}
			wantProblem(t, app.do("GET", "/v1/accounts", "/v1/accounts", nil), 401, "token_revoked", "old token after reinstatement on "+node.URL)
			app.token = fresh
			app.must(200, "GET", "/v1/accounts", nil, nil)
		}
	})
}
