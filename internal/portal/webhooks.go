package portal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/events"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/webhooks"
)

// typeGroup is the catalog's types under one prefix ("payment"), for the
// type picker.
type typeGroup struct {
	Prefix string
	Types  []events.EventType
}

func groupTypes(types []events.EventType) []typeGroup {
	var out []typeGroup
	for _, t := range types {
		prefix, _, _ := strings.Cut(t.Type, ".")
		if len(out) == 0 || out[len(out)-1].Prefix != prefix {
			out = append(out, typeGroup{Prefix: prefix})
		}
		g := &out[len(out)-1]
		g.Types = append(g.Types, t)
	}
	return out
}

type webhookForm struct {
	URL, Filter, Patterns string
	Types                 []string
	Ordered               bool
}

type webhooksData struct {
	App    *identity.App
	Deny   string
	Subs   []*webhooks.Subscription
	Groups []typeGroup
	Form   webhookForm
}

func (p *Portal) webhooksPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	return p.renderWebhooks(w, r, s, outcome{http.StatusOK, nil}, webhookForm{})
}

func (p *Portal) renderWebhooks(w http.ResponseWriter, r *http.Request, s *devSession, o outcome, f webhookForm) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app, err := p.d.Identity.App(ctx, s.Dev, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := webhooksData{App: app, Deny: denied(app, auth.ScopeWebhooksWrite), Form: f}
	if d.Subs, _, err = p.d.Webhooks.List(ctx, auth.AppCaller(app.ID), "", 200, ""); err != nil {
		return err
	}
	types, err := p.d.Events.Catalog(ctx)
	if err != nil {
		return err
	}
	d.Groups = groupTypes(types)
	v := s.view("Webhooks: "+app.Name, "apps")
	v.Error, v.Notice, v.D = o.failed, notice(r), d
	p.render(w, r, o.status, "webhooks", v)
	return nil
}

func (p *Portal) createWebhook(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	r.ParseForm()
	f := webhookForm{
		URL: strings.TrimSpace(r.PostFormValue("url")), Filter: r.PostFormValue("filter"),
		Patterns: r.PostFormValue("patterns"), Types: r.PostForm["type"], Ordered: r.PostFormValue("ordered") != "",
	}
	app, err := p.appFor(ctx, s, r.PathValue("id"), auth.ScopeWebhooksWrite)
	if err != nil {
		if causeway.ErrorKind(err) == causeway.EFORBIDDEN {
			return p.renderWebhooks(w, r, s, outcome{http.StatusForbidden, formError(err)}, f)
		}
		return err
	}
	patterns := strings.FieldsFunc(f.Patterns, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' })
	types := append(slices.Clone(f.Types), patterns...)
	sub, err := p.d.Webhooks.Create(ctx, auth.AppCaller(app.ID), webhooks.NewSubscription{URL: f.URL, EventTypes: types, Filter: f.Filter, Ordered: f.Ordered})
	if err != nil {
		if !isFormError(err) {
			return err
		}
		return p.renderWebhooks(w, r, s, outcome{http.StatusUnprocessableEntity, formError(err)}, f)
	}
	return p.renderWebhook(w, r, s, app, sub, outcome{http.StatusCreated, nil})
}

type webhookData struct {
	App *identity.App
	// Deny says why the app cannot change the subscription or re-send its
	// events (no webhooks:write, say); the page then only shows it.
	Deny       string
	Sub        *webhooks.Subscription
	Secret     string
	Deliveries []*webhooks.Delivery
	Next       string
	Newest     string
	Since      string
	Outcome    string
	// Live is set when new attempts should stream into the table: the
	// first page, unfiltered, of an active subscription.
	Live bool
}

func (p *Portal) webhookPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app, err := p.d.Identity.App(ctx, s.Dev, r.PathValue("id"))
	if err != nil {
		return err
	}
	sub, err := p.d.Webhooks.Get(ctx, auth.AppCaller(app.ID), r.PathValue("wid"))
	if err != nil {
		return err
	}
	return p.renderWebhook(w, r, s, app, sub, outcome{http.StatusOK, nil})
}

// renderWebhook shows subscription sub of app with its deliveries.
func (p *Portal) renderWebhook(w http.ResponseWriter, r *http.Request, s *devSession, app *identity.App, sub *webhooks.Subscription, o outcome) error {
	ctx, cancel := bounded(r)
	defer cancel()
	q := r.URL.Query()
	d := webhookData{App: app, Deny: denied(app, auth.ScopeWebhooksWrite), Sub: sub, Secret: sub.Secret, Outcome: q.Get("outcome"),
		Since: time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")}
	var err error
	d.Deliveries, d.Next, err = p.d.Webhooks.Deliveries(ctx, auth.AppCaller(app.ID), sub.ID, webhooks.DeliveryFilter{
		Outcome: d.Outcome, Limit: 50, Cursor: q.Get("cursor")})
	if err != nil && isFormError(err) {
		d.Deliveries, d.Next, err = p.d.Webhooks.Deliveries(ctx, auth.AppCaller(app.ID), sub.ID, webhooks.DeliveryFilter{Limit: 50})
	}
	if err != nil {
		return err
	}
	if len(d.Deliveries) > 0 {
		d.Newest = d.Deliveries[0].ID
	}
	d.Live = d.Outcome == "" && q.Get("cursor") == "" && sub.Status == webhooks.StatusActive
	v := s.view("Webhook "+sub.ID, "apps")
	v.Error, v.Notice, v.D = o.failed, notice(r), d
	p.render(w, r, o.status, "webhook", v)
	return nil
}

// webhookAction runs one change on a subscription and goes back to its
// page; a refusal the developer can act on (not active, say) is shown
// there.
func (p *Portal) webhookAction(w http.ResponseWriter, r *http.Request, s *devSession, done string,
	act func(appID, id string) error) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app, err := p.appFor(ctx, s, r.PathValue("id"), auth.ScopeWebhooksWrite)
	if err == nil {
		err = act(app.ID, r.PathValue("wid"))
	}
	if err != nil {
		if !isFormError(err) {
			return err
		}
		a, aerr := p.d.Identity.App(ctx, s.Dev, r.PathValue("id"))
		if aerr != nil {
			return aerr
		}
		sub, gerr := p.d.Webhooks.Get(ctx, auth.AppCaller(a.ID), r.PathValue("wid"))
		if gerr != nil {
			return gerr
		}
		return p.renderWebhook(w, r, s, a, sub, outcome{httpStatus(err), formError(err)})
	}
	if done == "webhook-deleted" {
		redirect(w, r, "/apps/"+app.ID+"/webhooks?done="+done)
		return nil
	}
	redirect(w, r, "/apps/"+app.ID+"/webhooks/"+r.PathValue("wid")+"?done="+done)
	return nil
}

func (p *Portal) recoverWebhook(w http.ResponseWriter, r *http.Request, s *devSession) error {
	return p.webhookAction(w, r, s, "recovering", func(appID, id string) error {
		since, err := time.Parse("2006-01-02T15:04", r.PostFormValue("since"))
		if err != nil {
			return causeway.Errorf(causeway.EINVALID, "invalid_since", "give the time to recover from as YYYY-MM-DD HH:MM (UTC)")
		}
		return p.d.Webhooks.Recover(r.Context(), auth.AppCaller(appID), id, since)
	})
}

func (p *Portal) retryDelivery(w http.ResponseWriter, r *http.Request, s *devSession) error {
	return p.webhookAction(w, r, s, "retrying", func(appID, id string) error {
		return p.d.Webhooks.Retry(r.Context(), auth.AppCaller(appID), id, r.PathValue("did"))
	})
}

func (p *Portal) pauseWebhook(w http.ResponseWriter, r *http.Request, s *devSession) error {
	return p.webhookAction(w, r, s, "paused", func(appID, id string) error {
		_, err := p.d.Webhooks.Pause(r.Context(), auth.AppCaller(appID), id)
		return err
	})
}

func (p *Portal) resumeWebhook(w http.ResponseWriter, r *http.Request, s *devSession) error {
	return p.webhookAction(w, r, s, "resumed", func(appID, id string) error {
		_, err := p.d.Webhooks.Resume(r.Context(), auth.AppCaller(appID), id)
		return err
	})
}

func (p *Portal) deleteWebhook(w http.ResponseWriter, r *http.Request, s *devSession) error {
	return p.webhookAction(w, r, s, "webhook-deleted", func(appID, id string) error {
		return p.d.Webhooks.Delete(r.Context(), auth.AppCaller(appID), id)
	})
}

// rotateWebhookSecret shows the new signing secret once, on the answer.
func (p *Portal) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app, err := p.appFor(ctx, s, r.PathValue("id"), auth.ScopeWebhooksWrite)
	if err != nil {
		return err
	}
	sub, err := p.d.Webhooks.RotateSecret(ctx, auth.AppCaller(app.ID), r.PathValue("wid"))
	if err != nil {
		return err
	}
	return p.renderWebhook(w, r, s, app, sub, outcome{http.StatusOK, nil})
}

// liveDelivery is one delivery as the live log shows it.
type liveDelivery struct {
	ID        string `json:"id"`
	Time      string `json:"time"`
	EventType string `json:"event_type"`
	EventID   string `json:"event_id"`
	Attempt   int    `json:"attempt"`
	Origin    string `json:"origin"`
	Outcome   string `json:"outcome"`
	Status    int    `json:"status_code"`
	Latency   string `json:"latency"`
	Error     string `json:"error"`
	RetryURL  string `json:"retry_url,omitempty"` // empty when the app may not retry
}

// liveFor is how long one live-log stream lasts; the browser's
// EventSource reconnects after it, with Last-Event-ID, missing nothing.
const liveFor = 5 * time.Minute

// webhookLive streams a subscription's new delivery attempts as server-sent
// events, for the live log on its page. Deliveries are recorded by every
// node in the shared database, so it reads them from there: whichever node
// made the attempt, every node's stream shows it.
func (p *Portal) webhookLive(w http.ResponseWriter, r *http.Request, s *devSession) error {
	app, err := p.d.Identity.App(r.Context(), s.Dev, r.PathValue("id"))
	if err != nil {
		return err
	}
	sub, err := p.d.Webhooks.Get(r.Context(), auth.AppCaller(app.ID), r.PathValue("wid"))
	if err != nil {
		return err
	}
	// Without webhooks:write the log offers no retry.
	deny := denied(app, auth.ScopeWebhooksWrite)
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("after")
	}
	sse := httpapi.OpenEventStream(w, r, 2*time.Second)
	defer sse.Close()

	ctx := r.Context()
	stop := time.After(liveFor)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		ds, _, err := p.d.Webhooks.Deliveries(ctx, auth.AppCaller(app.ID), sub.ID, webhooks.DeliveryFilter{Limit: 50})
		if err != nil {
			// The page still shows the table; the browser reconnects.
			return nil
		}
		var batch []byte
		for i := len(ds) - 1; i >= 0; i-- {
			d := ds[i]
			if d.ID <= last {
				continue
			}
			ld := liveDelivery{
				ID: d.ID, Time: fmtTime(d.CreatedAt), EventType: d.EventType, EventID: d.EventID,
				Attempt: d.Attempt, Origin: d.Origin, Outcome: d.Outcome, Status: d.StatusCode,
				Latency: fmtMS(d.LatencyMS), Error: d.Error,
			}
			if deny == "" {
				ld.RetryURL = "/apps/" + app.ID + "/webhooks/" + sub.ID + "/deliveries/" + d.ID + "/retry"
			}
			b, _ := json.Marshal(ld)
			batch = fmt.Appendf(batch, "id: %s\nevent: delivery\ndata: %s\n\n", d.ID, b)
			last = d.ID
		}
		if len(batch) > 0 && !sse.Send(batch) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-sse.Stopping():
			return nil
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
}

// httpStatus is the status the API gives err, from the one mapping.
func httpStatus(err error) int { return httpapi.ProblemFor(err).Status }
