package spi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/page"
)

// Register adds the SPI routes: the catalog and an app's registrations
// under /v1, and the bank's view, activation, point definitions and the
// southbound invoke under /bank/v1. Every /v1 route declares the OAuth2
// scope it needs; the gateway authenticates the app and puts it in the
// context before a handler runs.
//
// It is long because it is the package's route table: one declaration per
// route, read as one list.
func (s *Service) Register(srv *httpapi.Server) {
	h := &handlers{s: s}
	tags := []string{"SPIs"}
	// The catalog is readable with any valid app token.
	huma.Register(srv.API, httpapi.Route{ID: "list-extension-points", Method: http.MethodGet, Path: "/v1/extension-points", Tags: tags,
		Summary: "List extension points",
		Description: "Every extension point with the JSON Schema of the request an endpoint receives and of the answer the bank " +
			"accepts, its default and maximum deadlines, the stand-in answer used when nobody answers, and how several " +
			"answers combine. Any valid access token reads it."}.App(), h.listPoints)
	huma.Register(srv.API, httpapi.Route{ID: "get-extension-point", Method: http.MethodGet, Path: "/v1/extension-points/{name}", Tags: tags,
		Summary: "Get an extension point",
		Description: "One extension point by name (payments.fraud-check, loans.credit-decision, kyc.verify, accounts.lookup, or one " +
			"the bank defined): its schemas, deadlines, stand-in answer and combination rule."}.App(), h.getPoint)
	huma.Register(srv.API, httpapi.NoStore(httpapi.Route{ID: "create-spi-registration", Method: http.MethodPost, Path: "/v1/spi-registrations", Tags: tags, Status: http.StatusCreated,
		Summary: "Register an endpoint at an extension point",
		Description: "Registers an endpoint of the app at an extension point. The bank calls it with a signed POST (Standard Webhooks " +
			"headers, with the secret in this answer, shown once) and waits for a valid answer until the deadline. " +
			"Scope app: active at once, for this app's own traffic, and its answer can only tighten the bank's " +
			"controls. Scope bank: asked for every app's traffic once the bank activates it. A private address is 422 " +
			"url_not_allowed unless the bank allows its range; a node in production mode takes https URLs only (422 " +
			"https_required)."}.App(auth.ScopeSPIWrite)), h.create)
	huma.Register(srv.API, httpapi.Route{ID: "list-spi-registrations", Method: http.MethodGet, Path: "/v1/spi-registrations", Tags: tags,
		Summary: "List the app's SPI registrations",
		Description: "This app's registrations, oldest first, with their status (active, pending_activation, inactive), deadline " +
			"and failure policy; extension_point narrows to one point. Deleted ones are not listed."}.App(auth.ScopeSPIWrite), h.list)
	huma.Register(srv.API, httpapi.Route{ID: "get-spi-registration", Method: http.MethodGet, Path: "/v1/spi-registrations/{id}", Tags: tags,
		Summary:     "Get an SPI registration",
		Description: "One of this app's registrations. Another app's is 404 registration_not_found."}.App(auth.ScopeSPIWrite), h.get)
	huma.Register(srv.API, httpapi.Route{ID: "delete-spi-registration", Method: http.MethodDelete, Path: "/v1/spi-registrations/{id}", Tags: tags, Status: http.StatusNoContent,
		Summary:     "Delete an SPI registration",
		Description: "Stops calling the endpoint for good; the bank keeps its audit. Deleting it again is 404 registration_not_found."}.App(auth.ScopeSPIWrite), h.delete)
	huma.Register(srv.API, httpapi.NoStore(httpapi.Route{ID: "rotate-spi-secret", Method: http.MethodPost, Path: "/v1/spi-registrations/{id}/rotate-secret", Tags: tags,
		Summary: "New signing secret; the old one also signs for 24 h",
		Description: "Gives the registration a new signing secret, shown in this answer only. For 24 hours the bank's calls carry a " +
			"signature with each secret, so the endpoint keeps verifying with the old one until it switches. Of two " +
			"rotations at once one wins; the other is 409 secret_changed."}.App(auth.ScopeSPIWrite)), h.rotate)
	huma.Register(srv.API, httpapi.Route{ID: "list-spi-invocations", Method: http.MethodGet, Path: "/v1/spi-registrations/{id}/invocations", Tags: tags,
		Summary: "Audit of the calls made to a registration, newest first",
		Description: "Every call the bank made to the registration, newest first: when, the latency, the outcome (answered, " +
			"failed, stand_in, skipped_breaker_open) and why a stand-in answer was used."}.App(auth.ScopeSPIWrite), h.invocations)

	b := srv.Bank
	huma.Register(b, httpapi.Route{ID: "bank-list-extension-points", Method: http.MethodGet, Path: "/extension-points", Tags: tags,
		Summary: "List extension points",
		Description: "Every extension point, built-in and defined by the bank, with its schemas, deadlines, stand-in answer and " +
			"combination rule."}.Bank(), h.listPoints)
	huma.Register(b, httpapi.Route{ID: "bank-define-extension-point", Method: http.MethodPost, Path: "/extension-points", Tags: tags, Status: http.StatusCreated,
		Summary: "Define a new extension point",
		Description: "Defines a point where bank processes can ask apps' endpoints: the JSON Schemas of request and answer (compiled " +
			"and self-contained), the default and maximum deadlines, the stand-in answer (valid under the answer schema), " +
			"and how answers combine: first (the default), strictest over a field, or merge of an array field. A point " +
			"cannot be redefined: a taken name is 409 point_exists."}.Bank(), h.definePoint)
	huma.Register(b, httpapi.Route{ID: "bank-invoke-extension-point", Method: http.MethodPost, Path: "/extension-points/{name}/invoke", Tags: tags,
		Summary: "Call an extension point from a bank process",
		Description: "Asks the point's active registrations (the bank-scope ones by priority and, with app_id, that app's own) " +
			"and answers with the combined answer, or answered false (use the bank's own rules), or failed true (a " +
			"policy said fail closed), with every registration's reply. The payload must match the point's request schema."}.Bank(), h.invoke)
	huma.Register(b, httpapi.Route{ID: "bank-list-spi-registrations", Method: http.MethodGet, Path: "/spi-registrations", Tags: tags,
		Summary: "List every SPI registration",
		Description: "Every app's registrations, oldest first; status=pending_activation lists what waits for the bank, and " +
			"extension_point and app_id narrow the list."}.Bank(), h.bankList)
	huma.Register(b, httpapi.Route{ID: "bank-get-spi-registration", Method: http.MethodGet, Path: "/spi-registrations/{id}", Tags: tags,
		Summary:     "Get an SPI registration",
		Description: "One registration of any app, deleted ones included, with its status, deadline, failure policy and priority."}.Bank(), h.bankGet)
	huma.Register(b, httpapi.Route{ID: "bank-activate-spi-registration", Method: http.MethodPost, Path: "/spi-registrations/{id}/activate", Tags: tags,
		Summary: "Activate an SPI registration with a deadline, failure policy and priority",
		Description: "Moves a registration pending activation, or an inactive one, to active. " +
			"An active registration is 409 registration_already_active (change its settings with PATCH); a deleted one 409 registration_deleted."}.Bank(), h.activate)
	huma.Register(b, httpapi.Route{ID: "bank-configure-spi-registration", Method: http.MethodPatch, Path: "/spi-registrations/{id}", Tags: tags,
		Summary: "Change an SPI registration's deadline, failure policy or priority",
		Description: "Changes the given settings and keeps the others and the status; for example, makes an app-scope fraud check fail closed. " +
			"A deleted registration is 409 registration_deleted."}.Bank(), h.configure)
	huma.Register(b, httpapi.Route{ID: "bank-deactivate-spi-registration", Method: http.MethodPost, Path: "/spi-registrations/{id}/deactivate", Tags: tags,
		Summary: "Stop calling an SPI registration",
		Description: "Moves an active registration to inactive. " +
			"One that is not active is 409 registration_not_active; a deleted one 409 registration_deleted."}.Bank(), h.deactivate)
	huma.Register(b, httpapi.Route{ID: "bank-list-spi-invocations", Method: http.MethodGet, Path: "/spi-registrations/{id}/invocations", Tags: tags,
		Summary: "Audit of the calls made to a registration, newest first",
		Description: "Every call made to the registration, newest first, with the app whose process asked, the latency, the " +
			"outcome and why a stand-in answer was used."}.Bank(), h.bankInvocations)
}

type handlers struct{ s *Service }

type nameInput struct {
	Name string `path:"name" maxLength:"200"`
}

func (h *handlers) listPoints(ctx context.Context, _ *struct{}) (*httpapi.Out[page.Page[*Point]], error) {
	points, err := h.s.Points(ctx)
	return httpapi.Reply(page.Page[*Point]{Data: points}, err)
}

func (h *handlers) getPoint(ctx context.Context, in *nameInput) (*httpapi.Out[*Point], error) {
	return httpapi.Reply(h.s.Point(ctx, in.Name))
}

// RegistrationBody is the body of POST /v1/spi-registrations.
type RegistrationBody struct {
	ExtensionPoint string `json:"extension_point" minLength:"1" maxLength:"200" example:"payments.fraud-check"`
	URL            string `json:"url" minLength:"1" maxLength:"2048" example:"https://fraud.example.com/causeway"`
	Scope          string `json:"scope,omitempty" enum:"app,bank" default:"app" doc:"app: called at once, for your own app's traffic, and can only tighten the bank's controls; bank: called for every app's traffic once the bank activates it"`
	TimeoutMS      int    `json:"timeout_ms,omitempty" minimum:"0" maximum:"60000" doc:"Deadline of one call; default the point's default, at most its maximum. For scope bank, the bank decides at activation"`
	OnFailure      string `json:"on_failure,omitempty" enum:"reject,stand_in,next" doc:"What the bank does when you do not answer validly in time; default stand_in. For scope bank, the bank decides at activation"`
}

// CreatedRegistration is a new registration with its signing secret,
// shown only here.
type CreatedRegistration struct {
	Registration
	Secret string `json:"secret" doc:"Standard Webhooks signing secret; shown once" example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
}

type createInput struct{ Body RegistrationBody }

func (h *handlers) create(ctx context.Context, in *createInput) (*httpapi.Out[*CreatedRegistration], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	r, secret, err := h.s.CreateRegistration(ctx, app, NewRegistration(in.Body))
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(&CreatedRegistration{Registration: *r, Secret: secret}, nil)
}

func (h *handlers) rotate(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*CreatedRegistration], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	r, secret, err := h.s.RotateSecret(ctx, app, in.ID)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(&CreatedRegistration{Registration: *r, Secret: secret}, nil)
}

type listInput struct {
	httpapi.PageQuery
	ExtensionPoint string `query:"extension_point" maxLength:"200"`
}

func (h *handlers) list(ctx context.Context, in *listInput) (*httpapi.Out[*page.Page[*Registration]], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.s.Registrations(ctx, app, RegistrationFilter{ExtensionPoint: in.ExtensionPoint, Limit: in.Limit, Cursor: in.Cursor}))
}

func (h *handlers) get(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*Registration], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.s.Registration(ctx, app, in.ID))
}

func (h *handlers) delete(ctx context.Context, in *httpapi.IDPath) (*struct{}, error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return nil, h.s.DeleteRegistration(ctx, app, in.ID)
}

type invocationsInput struct {
	ID string `path:"id" maxLength:"64"`
	httpapi.PageQuery
}

func (h *handlers) invocations(ctx context.Context, in *invocationsInput) (*httpapi.Out[*page.Page[*Invocation]], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.s.Invocations(ctx, app, in.ID, in.Limit, in.Cursor))
}

type bankListInput struct {
	httpapi.PageQuery
	ExtensionPoint string `query:"extension_point" maxLength:"200"`
	Status         string `query:"status" enum:"active,pending_activation,inactive,deleted"`
	AppID          string `query:"app_id" maxLength:"64"`
}

func (h *handlers) bankList(ctx context.Context, in *bankListInput) (*httpapi.Out[*page.Page[*Registration]], error) {
	return httpapi.Reply(h.s.Registrations(ctx, auth.CallerFrom(ctx), RegistrationFilter{AppID: in.AppID, ExtensionPoint: in.ExtensionPoint,
		Status: in.Status, IncludeDeleted: true, Limit: in.Limit, Cursor: in.Cursor}))
}

func (h *handlers) bankGet(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*Registration], error) {
	return httpapi.Reply(h.s.Registration(ctx, auth.CallerFrom(ctx), in.ID))
}

func (h *handlers) bankInvocations(ctx context.Context, in *invocationsInput) (*httpapi.Out[*page.Page[*Invocation]], error) {
	return httpapi.Reply(h.s.Invocations(ctx, auth.CallerFrom(ctx), in.ID, in.Limit, in.Cursor))
}

type activateInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body *struct {
		TimeoutMS int    `json:"timeout_ms,omitempty" minimum:"0" maximum:"60000" doc:"Deadline of one call, at most the point's maximum; default: keep"`
		OnFailure string `json:"on_failure,omitempty" enum:"reject,stand_in,next" doc:"Failure policy; default: keep"`
		Priority  *int   `json:"priority,omitempty" minimum:"0" maximum:"1000" doc:"Bank-scope registrations are asked in ascending priority; default: keep"`
	}
}

func (h *handlers) activate(ctx context.Context, in *activateInput) (*httpapi.Out[*Registration], error) {
	var a Activation
	if in.Body != nil {
		a = Activation{TimeoutMS: in.Body.TimeoutMS, OnFailure: in.Body.OnFailure, Priority: in.Body.Priority}
	}
	return httpapi.Reply(h.s.Activate(ctx, auth.CallerFrom(ctx), in.ID, a))
}

func (h *handlers) configure(ctx context.Context, in *activateInput) (*httpapi.Out[*Registration], error) {
	var a Activation
	if in.Body != nil {
		a = Activation{TimeoutMS: in.Body.TimeoutMS, OnFailure: in.Body.OnFailure, Priority: in.Body.Priority}
	}
	return httpapi.Reply(h.s.Configure(ctx, auth.CallerFrom(ctx), in.ID, a))
}

func (h *handlers) deactivate(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*Registration], error) {
	return httpapi.Reply(h.s.Deactivate(ctx, auth.CallerFrom(ctx), in.ID))
}

// PointBody is the body of POST /bank/v1/extension-points.
type PointBody struct {
	Name             string          `json:"name" minLength:"3" maxLength:"200" example:"cards.limit-check"`
	Description      string          `json:"description,omitempty" maxLength:"1000" text:"multiline"`
	RequestSchema    json.RawMessage `json:"request_schema" doc:"JSON Schema (2020-12, self-contained) of the payload"`
	ResponseSchema   json.RawMessage `json:"response_schema" doc:"JSON Schema (2020-12, self-contained) of a valid answer"`
	DefaultTimeoutMS int             `json:"default_timeout_ms" minimum:"1" maximum:"60000"`
	MaxTimeoutMS     int             `json:"max_timeout_ms" minimum:"1" maximum:"60000"`
	StandIn          json.RawMessage `json:"stand_in" doc:"The answer used when nobody answers validly in time; must satisfy response_schema"`
	Example          json.RawMessage `json:"example,omitempty"`
	Combine          *Combination    `json:"combine,omitempty" doc:"How the replies of several registrations make one answer: rule first (the default), strictest or merge"`
}

type definePointInput struct{ Body PointBody }

func (h *handlers) definePoint(ctx context.Context, in *definePointInput) (*httpapi.Out[*Point], error) {
	b := in.Body
	n := NewPoint{
		Name: b.Name, Description: b.Description, RequestSchema: b.RequestSchema, ResponseSchema: b.ResponseSchema,
		DefaultTimeoutMS: b.DefaultTimeoutMS, MaxTimeoutMS: b.MaxTimeoutMS, StandIn: b.StandIn, Example: b.Example}
	if b.Combine != nil {
		n.Combine = *b.Combine
	}
	return httpapi.Reply(h.s.DefinePoint(ctx, n))
}

type invokeInput struct {
	Name string `path:"name" maxLength:"200"`
	Body struct {
		AppID   string          `json:"app_id,omitempty" maxLength:"64" doc:"The app whose process this is, so its app-scope registrations are asked too; omit for the bank's own"`
		Payload json.RawMessage `json:"payload" doc:"Must satisfy the point's request_schema"`
	}
}

// InvokeResult is what an extension point answered a bank process: the
// answer the replies combine to under the point's rule, and the replies.
type InvokeResult struct {
	Answered bool            `json:"answered" doc:"False when no registration is active (at a tighten_only point: no bank-scope one): use your built-in rules"`
	Failed   bool            `json:"failed" doc:"True when the deciding registration failed and its policy is reject: fail closed"`
	Provider string          `json:"provider,omitempty" doc:"The registration whose reply decided the answer (merge: every one that contributed, comma-separated)"`
	StandIn  bool            `json:"stand_in" doc:"True when body is the point's stand-in result"`
	Reason   string          `json:"reason,omitempty" doc:"Why the call failed or the stand-in was used"`
	Body     json.RawMessage `json:"body,omitempty" doc:"The answer, valid per the point's response_schema"`
	Replies  []Reply         `json:"replies" doc:"Every registration's reply, in the order asked. At a tighten_only point the answer is the bank-scope registrations' and the app's own replies are only here: apply them only where they tighten it"`
}

// Reply is one registration's reply in an InvokeResult.
type Reply struct {
	Provider string          `json:"provider" doc:"The registration"`
	Scope    string          `json:"scope" enum:"app,bank"`
	Failed   bool            `json:"failed" doc:"True when it failed and its policy is reject"`
	StandIn  bool            `json:"stand_in" doc:"True when it failed and its policy gave the stand-in"`
	Reason   string          `json:"reason,omitempty"`
	Body     json.RawMessage `json:"body,omitempty"`
}

func (h *handlers) invoke(ctx context.Context, in *invokeInput) (*httpapi.Out[InvokeResult], error) {
	a, err := h.s.Invoke(ctx, in.Name, in.Body.AppID, in.Body.Payload)
	if err != nil {
		return nil, err
	}
	res := InvokeResult{Answered: a.Answered, Failed: a.Failed, Provider: a.Provider, StandIn: a.StandIn, Reason: a.Reason, Body: a.Body,
		Replies: []Reply{}}
	for _, r := range a.Replies {
		res.Replies = append(res.Replies, Reply{Provider: r.Provider, Scope: r.Scope, Failed: r.Failed, StandIn: r.StandIn, Reason: r.Reason, Body: r.Body})
	}
	return httpapi.Reply(res, nil)
}
