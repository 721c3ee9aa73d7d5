package demo

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/causewayhq/causeway/client"
)

// party is a developer with one app: its credentials, a standard OAuth2
// token source and a Go SDK client acting as the app.
type party struct {
	org    string
	dev    *client.Developer
	app    *client.App
	tokens oauth2.TokenSource
	api    *client.Client
}

// signUp makes a developer in a new organization and an app with the given
// scopes, and fetches the app's first access token with a standard OAuth2
// client (client_credentials), narrating each call.
func (r *run) signUp(org, emailUser, domain, appName string, scopes []string) (*party, error) {
	email := fmt.Sprintf("%s+%s@%s", emailUser, r.suffix, domain)
	var dev *client.Developer
	if err := r.via("POST", "/v1/developers", "SDK SignUp", func() (err error) {
		dev, err = client.SignUp(r.ctx, r.target.URL, email, "a demo passphrase, long enough", org, client.WithHTTPClient(r.hc))
		return err
	}); err != nil {
		return nil, err
	}
	r.log.say("developer %s <%s>, organization %q", dev.ID, email, org)
	var app *client.App
	if err := r.via("POST", "/v1/apps", "SDK CreateApp", func() (err error) {
		app, err = dev.CreateApp(r.ctx, appName, scopes)
		return err
	}); err != nil {
		return nil, err
	}
	r.log.say("app %s %q: status %s, client_id %s, scopes %s", app.ID, app.Name, app.Status, app.ClientID, strings.Join(app.Scopes, " "))
	// In sandbox mode (checked in the set-up) a new app is active at once.
	if err := r.check(app.Status == "active" && app.ClientSecret != "", "an active app with its client secret", "status %q", app.Status); err != nil {
		return nil, err
	}
	cc := clientcredentials.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, TokenURL: r.target.URL + "/oauth2/token"}
	tokens := cc.TokenSource(context.WithValue(context.WithoutCancel(r.ctx), oauth2.HTTPClient, r.hc))
	tok, err := tokens.Token()
	if err != nil {
		r.log.line("  ✗ POST /oauth2/token (golang.org/x/oauth2 client_credentials)")
		return nil, r.fail("an access token from the standard OAuth2 client", "%v", err)
	}
	r.log.line("  → POST /oauth2/token (golang.org/x/oauth2 client_credentials) ✓")
	if err := r.check(tok.AccessToken != "" && strings.EqualFold(tok.TokenType, "Bearer"), "a Bearer access token", "%q token", tok.TokenType); err != nil {
		return nil, err
	}
	r.log.say("%s access token (JWT, %d bytes), expires in %s, scope %q", tok.TokenType, len(tok.AccessToken),
		time.Until(tok.Expiry).Round(time.Second), tok.Extra("scope"))
	return &party{
		org: org, dev: dev, app: app, tokens: oauth2.ReuseTokenSource(tok, tokens),
		api: client.New(r.target.URL, app.ClientID, app.ClientSecret, client.WithHTTPClient(r.hc)),
	}, nil
}

// token is a valid access token of p's app.
func (r *run) token(p *party) (string, error) {
	tok, err := p.tokens.Token()
	if err != nil {
		return "", r.fail("an access token for "+p.app.Name, "%v", err)
	}
	return tok.AccessToken, nil
}

// checkPlatform is every story's set-up: the admin token works and the
// node runs in sandbox mode (the stories need its seeded customers and
// datasets).
func (r *run) checkPlatform() error {
	var st struct {
		Version  string `json:"version"`
		Mode     string `json:"mode"`
		Database struct {
			Engine string `json:"engine"`
		} `json:"database"`
		Bus struct {
			Kind string `json:"kind"`
		} `json:"bus"`
	}
	if err := r.call("GET", "/bank/v1/status", r.admin(), nil, http.StatusOK, &st); err != nil {
		f := err.(*Failure)
		f.Got += " (is the admin token right? give --admin-token or CAUSEWAY_ADMIN_TOKEN)"
		return f
	}
	r.log.say("Causeway %s at %s: mode %s, database %s, bus %s", st.Version, r.target.URL, st.Mode, st.Database.Engine, st.Bus.Kind)
	return r.check(st.Mode == "sandbox", "a node in sandbox mode (the story uses the sandbox bank)", "mode %q", st.Mode)
}

// subscribe subscribes h to eventTypes as p's app, hands h the signing
// secret, and deletes the subscription when the story ends.
func (r *run) subscribe(p *party, h *receiver, url string, eventTypes []string, filter string) error {
	tok, err := r.token(p)
	if err != nil {
		return err
	}
	body := map[string]any{"url": url, "event_types": eventTypes}
	if filter != "" {
		body["filter"] = filter
	}
	var wh struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := r.call("POST", "/v1/webhooks", tok, body, http.StatusCreated, &wh); err != nil {
		return err
	}
	if err := r.check(strings.HasPrefix(wh.Secret, "whsec_"), "a whsec_ signing secret", "%q", wh.Secret); err != nil {
		return err
	}
	if err := h.setSecret(wh.Secret); err != nil {
		return r.fail("a Standard Webhooks secret", "%v", err)
	}
	r.cleanup(func(ctx context.Context) {
		if tok, err := p.tokens.Token(); err == nil {
			req, _ := http.NewRequestWithContext(ctx, "DELETE", r.target.URL+"/v1/webhooks/"+wh.ID, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			if res, err := r.hc.Do(req); err == nil {
				res.Body.Close()
			}
		}
	})
	what := strings.Join(eventTypes, ", ")
	if filter != "" {
		what += " where " + filter
	}
	r.log.say("webhook %s: %s → %s (%s)", wh.ID, what, h.name, url)
	return nil
}

// publish publishes a CloudEvent as a bank system (POST /bank/v1/events,
// structured content mode) and returns its id.
func (r *run) publish(ce map[string]any) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	_, err := r.callHeaders("POST", "/bank/v1/events", r.admin(), ce, http.StatusAccepted, &out,
		map[string]string{"Content-Type": "application/cloudevents+json"})
	return out.ID, err
}

// grant lets an app see a customer it did not create (the bank's decision).
func (r *run) grant(p *party, customerID string) error {
	return r.call("POST", "/bank/v1/grants", r.admin(), map[string]string{"app_id": p.app.ID, "customer_id": customerID}, http.StatusCreated, nil)
}

// offer is an offer as GET /v1/offers and the marketing.offer.created event
// show it.
type offer struct {
	ID      string `json:"id"`
	Product string `json:"product"`
	Title   string `json:"title"`
	Reason  string `json:"reason"`
	Score   int    `json:"score"`
}

// offerEvent is the data of marketing.offer.created.
type offerEvent struct {
	CustomerID string    `json:"customer_id"`
	CampaignID string    `json:"campaign_id"`
	Offer      offer     `json:"offer"`
	Channels   []string  `json:"channels"`
	ValidUntil time.Time `json:"valid_until"`
}

// publishOffer is the bank's marketing publishing an offer for a customer:
// causewaycustomerid routes it to the apps that may see the customer.
func (r *run) publishOffer(customerID, campaign string, o offer, channels []string) (string, error) {
	return r.publish(map[string]any{
		"specversion":        "1.0",
		"type":               "marketing.offer.created",
		"source":             "/bank/marketing/campaigns/" + campaign,
		"subject":            customerID,
		"causewaycustomerid": customerID,
		"data": offerEvent{
			CustomerID: customerID, CampaignID: campaign, Offer: o, Channels: channels,
			ValidUntil: time.Now().UTC().AddDate(0, 0, 30).Truncate(time.Second),
		},
	})
}
