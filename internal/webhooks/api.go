package webhooks

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/page"
)

// Register adds the webhook routes: /v1/webhooks for apps (each app sees
// only its own subscriptions, another app's id is 404 webhook_not_found)
// and GET /bank/v1/webhooks for the bank's console.
//
// Reading a subscription and its deliveries needs events:read or
// webhooks:write; anything that changes a subscription or sends events
// (create, update, delete, pause, resume, rotate-secret, recover, retry)
// needs webhooks:write. The gateway enforces both from the operations'
// security requirements.
func (s *Service) Register(srv *httpapi.Server) {
	h := &handlers{s: s}
	tags := []string{"Webhooks"}
	huma.Register(srv.API, httpapi.NoStore(httpapi.Route{ID: "create-webhook", Method: http.MethodPost, Path: "/v1/webhooks", Tags: tags, Status: http.StatusCreated,
		Summary: "Subscribe a URL to events",
		Description: "Subscribes an endpoint of the app to the event types it names (exact, or wildcards such as " +
			"payment.* and *), optionally narrowed by a CEL filter over the event. Each event is POSTed as a CloudEvent with " +
			"Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature), signed with the secret in this " +
			"answer, shown once. Answer 2xx quickly: anything else is retried with the same webhook-id, ten attempts over " +
			"about three days, and 410 Gone unsubscribes. A node in production mode takes https URLs only (422 " +
			"https_required); private and loopback addresses are refused unless the bank allows them."}.App(auth.ScopeWebhooksWrite)), h.create)
	huma.Register(srv.API, httpapi.Route{ID: "list-webhooks", Method: http.MethodGet, Path: "/v1/webhooks", Tags: tags,
		Summary: "List the app's webhook subscriptions",
		Description: "This app's subscriptions with their URL, event types, filter and status (active, paused or " +
			"disabled), never their secret."}.AppAnyOf(auth.ScopeEventsRead, auth.ScopeWebhooksWrite), h.list)
	huma.Register(srv.API, httpapi.Route{ID: "get-webhook", Method: http.MethodGet, Path: "/v1/webhooks/{id}", Tags: tags,
		Summary:     "Get a webhook subscription",
		Description: "One of this app's subscriptions. Another app's is 404 webhook_not_found."}.AppAnyOf(auth.ScopeEventsRead, auth.ScopeWebhooksWrite), h.get)
	huma.Register(srv.API, httpapi.Route{ID: "update-webhook", Method: http.MethodPatch, Path: "/v1/webhooks/{id}", Tags: tags,
		Summary: "Change a webhook subscription",
		Description: "Changes the fields given and keeps the others; an empty filter removes it. New event types " +
			"and ordering apply to the events not yet delivered. The same URL rules apply as on creation."}.App(auth.ScopeWebhooksWrite), h.update)
	huma.Register(srv.API, httpapi.Route{ID: "delete-webhook", Method: http.MethodDelete, Path: "/v1/webhooks/{id}", Tags: tags, Status: http.StatusNoContent,
		Summary: "Delete a webhook subscription",
		Description: "Stops deliveries at once and removes the subscription with its delivery records. Deleting it " +
			"again is 404 webhook_not_found."}.App(auth.ScopeWebhooksWrite), h.delete)
	huma.Register(srv.API, httpapi.Route{ID: "pause-webhook", Method: http.MethodPost, Path: "/v1/webhooks/{id}/pause", Tags: tags,
		Summary:     "Pause deliveries; events wait until resume",
		Description: "Moves an active subscription to paused. A paused one is 409 webhook_already_paused, a disabled one 409 webhook_disabled."}.App(auth.ScopeWebhooksWrite), h.pause)
	huma.Register(srv.API, httpapi.Route{ID: "resume-webhook", Method: http.MethodPost, Path: "/v1/webhooks/{id}/resume", Tags: tags,
		Summary:     "Resume a paused or disabled subscription",
		Description: "Moves a paused or disabled subscription to active. An active one is 409 webhook_already_active."}.App(auth.ScopeWebhooksWrite), h.resume)
	huma.Register(srv.API, httpapi.NoStore(httpapi.Route{ID: "rotate-webhook-secret", Method: http.MethodPost, Path: "/v1/webhooks/{id}/rotate-secret", Tags: tags,
		Summary: "New signing secret; the old one also signs for 24 h",
		Description: "Gives the subscription a new signing secret, shown in this answer only. For 24 hours every " +
			"delivery carries a signature with each secret (webhook-signature: v1,... v1,...), so the endpoint keeps " +
			"verifying with the old one until it switches."}.App(auth.ScopeWebhooksWrite)), h.rotate)
	huma.Register(srv.API, httpapi.Route{ID: "list-webhook-deliveries", Method: http.MethodGet, Path: "/v1/webhooks/{id}/deliveries", Tags: tags,
		Summary: "Delivery attempts, newest first",
		Description: "Every attempt to deliver an event to the subscription, newest first: when, the status code " +
			"the endpoint answered, the latency and the error. outcome=dead lists the events given up on; event_type and " +
			"event_id narrow the list."}.AppAnyOf(auth.ScopeEventsRead, auth.ScopeWebhooksWrite), h.deliveries)
	huma.Register(srv.API, httpapi.Route{ID: "recover-webhook", Method: http.MethodPost, Path: "/v1/webhooks/{id}/recover", Tags: tags, Status: http.StatusAccepted,
		Summary: "Re-send every event since a time",
		Description: "Starts re-sending in the background. One recover per subscription runs at a time, across all nodes: " +
			"while one runs, another is 409 recover_in_progress; a subscription that is not active is 409 webhook_not_active."}.App(auth.ScopeWebhooksWrite), h.recover)
	huma.Register(srv.API, httpapi.Route{ID: "retry-webhook-delivery", Method: http.MethodPost, Path: "/v1/webhooks/{id}/deliveries/{delivery_id}/retry", Tags: tags, Status: http.StatusAccepted,
		Summary: "Re-send one delivery's event now",
		Description: "Sends the event of one recorded delivery (a dead letter, say) again now, in the background, " +
			"with the same webhook-id. The subscription must be active (409 webhook_not_active); an event the platform no " +
			"longer keeps is 404 event_expired."}.App(auth.ScopeWebhooksWrite), h.retry)

	huma.Register(srv.Bank, httpapi.Route{ID: "bank-list-webhooks", Method: http.MethodGet, Path: "/webhooks", Tags: tags,
		Summary: "Every webhook subscription, with its health and backlog",
		Description: "Every app's subscriptions with their status, the events not yet sent (backlog) and those in flight " +
			"or waiting for a retry; status narrows to active, paused or disabled. A subscription whose endpoint keeps " +
			"failing is disabled."}.Bank(), h.bankList)
}

type handlers struct{ s *Service }

// CreateBody is the body of POST /v1/webhooks.
type CreateBody struct {
	URL        string   `json:"url" minLength:"1" maxLength:"2048" example:"https://example.com/hooks/causeway"`
	EventTypes []string `json:"event_types" minItems:"1" maxItems:"50" maxLength:"128" example:"[\"payment.*\"]" doc:"Event types; \"payment.*\" matches every type under payment, \"*\" every type"`
	Filter     string   `json:"filter,omitempty" maxLength:"4096" text:"multiline" example:"data.amount.amount > 1000.0" doc:"CEL expression over the event (variables event, id, type, source, subject, time, data); decimal strings compare with numbers"`
	Ordered    bool     `json:"ordered,omitempty" doc:"Deliver one event at a time, each only after the previous succeeded or was dead-lettered"`
}

type createInput struct{ Body CreateBody }

func (h *handlers) create(ctx context.Context, in *createInput) (*httpapi.Out[*Subscription], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	sub, err := h.s.Create(ctx, app, NewSubscription{URL: in.Body.URL, EventTypes: in.Body.EventTypes, Filter: in.Body.Filter, Ordered: in.Body.Ordered})
	if err != nil {
		return nil, err
	}
	return &httpapi.Out[*Subscription]{Body: sub}, nil
}

func (h *handlers) list(ctx context.Context, in *httpapi.PageQuery) (*httpapi.Out[page.Page[*Subscription]], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	subs, next, err := h.s.List(ctx, app, "", in.Limit, in.Cursor)
	if err != nil {
		return nil, err
	}
	return &httpapi.Out[page.Page[*Subscription]]{Body: page.Page[*Subscription]{Data: subs, NextCursor: next}}, nil
}

func (h *handlers) get(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*Subscription], error) {
	return h.one(ctx, in.ID, h.s.Get)
}

func (h *handlers) pause(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*Subscription], error) {
	return h.one(ctx, in.ID, h.s.Pause)
}

func (h *handlers) resume(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*Subscription], error) {
	return h.one(ctx, in.ID, h.s.Resume)
}

func (h *handlers) rotate(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*Subscription], error) {
	return h.one(ctx, in.ID, h.s.RotateSecret)
}

func (h *handlers) one(ctx context.Context, id string, fn func(ctx context.Context, caller auth.Caller, id string) (*Subscription, error)) (*httpapi.Out[*Subscription], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	sub, err := fn(ctx, app, id)
	if err != nil {
		return nil, err
	}
	return &httpapi.Out[*Subscription]{Body: sub}, nil
}

type updateInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		URL        *string  `json:"url,omitempty" minLength:"1" maxLength:"2048"`
		EventTypes []string `json:"event_types,omitempty" minItems:"1" maxItems:"50" maxLength:"128"`
		Filter     *string  `json:"filter,omitempty" maxLength:"4096" text:"multiline" doc:"An empty string removes the filter"`
		Ordered    *bool    `json:"ordered,omitempty"`
	}
}

func (h *handlers) update(ctx context.Context, in *updateInput) (*httpapi.Out[*Subscription], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	b := in.Body
	sub, err := h.s.Update(ctx, app, in.ID, SubscriptionChange{URL: b.URL, EventTypes: b.EventTypes, Filter: b.Filter, Ordered: b.Ordered})
	if err != nil {
		return nil, err
	}
	return &httpapi.Out[*Subscription]{Body: sub}, nil
}

func (h *handlers) delete(ctx context.Context, in *httpapi.IDPath) (*struct{}, error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return nil, h.s.Delete(ctx, app, in.ID)
}

type deliveriesInput struct {
	ID        string `path:"id" maxLength:"64"`
	Outcome   string `query:"outcome" enum:"succeeded,failed,dead" doc:"Only attempts with this outcome; dead lists the dead letters"`
	EventType string `query:"event_type" maxLength:"200"`
	EventID   string `query:"event_id" maxLength:"64"`
	httpapi.PageQuery
}

func (h *handlers) deliveries(ctx context.Context, in *deliveriesInput) (*httpapi.Out[page.Page[*Delivery]], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	ds, next, err := h.s.Deliveries(ctx, app, in.ID, DeliveryFilter{
		Outcome: in.Outcome, EventType: in.EventType, EventID: in.EventID, Limit: in.Limit, Cursor: in.Cursor})
	if err != nil {
		return nil, err
	}
	return &httpapi.Out[page.Page[*Delivery]]{Body: page.Page[*Delivery]{Data: ds, NextCursor: next}}, nil
}

// Accepted answers a request whose work continues in the background.
type Accepted struct {
	Status string `json:"status" example:"accepted"`
	Detail string `json:"detail,omitempty"`
}

type recoverInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body struct {
		Since time.Time `json:"since" maxLength:"64" doc:"RFC 3339 time; every event published since then is sent again"`
	}
}

func (h *handlers) recover(ctx context.Context, in *recoverInput) (*httpapi.Out[Accepted], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.s.Recover(ctx, app, in.ID, in.Body.Since); err != nil {
		return nil, err
	}
	return &httpapi.Out[Accepted]{Body: Accepted{Status: "accepted",
		Detail: "events since " + in.Body.Since.UTC().Format(time.RFC3339) + " are being sent again; see the deliveries with origin recover"}}, nil
}

type retryInput struct {
	ID         string `path:"id" maxLength:"64"`
	DeliveryID string `path:"delivery_id" maxLength:"64"`
}

func (h *handlers) retry(ctx context.Context, in *retryInput) (*httpapi.Out[Accepted], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.s.Retry(ctx, app, in.ID, in.DeliveryID); err != nil {
		return nil, err
	}
	return &httpapi.Out[Accepted]{Body: Accepted{Status: "accepted", Detail: "the event is being sent again; see the deliveries with origin retry"}}, nil
}

// BankSubscription is a subscription as the bank's console lists it.
type BankSubscription struct {
	ID             string     `json:"id"`
	AppID          string     `json:"app_id"`
	URL            string     `json:"url"`
	EventTypes     []string   `json:"event_types"`
	Ordered        bool       `json:"ordered"`
	Status         string     `json:"status" enum:"active,paused,disabled"`
	FailingSince   *time.Time `json:"failing_since,omitempty"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	// Backlog is the number of events not yet delivered; nil when the bus
	// could not tell.
	Backlog *uint64 `json:"backlog,omitempty" doc:"Events matching the subscription not yet sent"`
	// Retrying is the number of events sent but not yet settled: in flight
	// or waiting for their next attempt.
	Retrying *int `json:"retrying,omitempty" doc:"Events in flight or waiting for their next attempt"`
}

type bankListInput struct {
	Status string `query:"status" enum:"active,paused,disabled"`
	httpapi.PageQuery
}

func (h *handlers) bankList(ctx context.Context, in *bankListInput) (*httpapi.Out[page.Page[BankSubscription]], error) {
	subs, next, err := h.s.List(ctx, auth.CallerFrom(ctx), in.Status, in.Limit, in.Cursor)
	if err != nil {
		return nil, err
	}
	data := make([]BankSubscription, len(subs))
	queues := h.s.Queues(ctx, subs)
	for i, sub := range subs {
		data[i] = BankSubscription{ID: sub.ID, AppID: sub.AppID, URL: sub.URL, EventTypes: sub.EventTypes, Ordered: sub.Ordered,
			Status: sub.Status, FailingSince: sub.FailingSince, DisabledReason: sub.DisabledReason, CreatedAt: sub.CreatedAt}
		if q := queues[i]; q.Known {
			data[i].Backlog, data[i].Retrying = &q.Backlog, &q.Retrying
		}
	}
	return &httpapi.Out[page.Page[BankSubscription]]{Body: page.Page[BankSubscription]{Data: data, NextCursor: next}}, nil
}
