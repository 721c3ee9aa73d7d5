package events

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
)

// Register adds the events routes:
//
//   - GET /v1/event-types, GET /v1/events, GET /v1/events/stream, POST
//     /v1/events/stream-tickets: for apps with the events:read scope; the
//     gateway authenticates them and puts the app in the context (for the
//     stream, also from a stream ticket);
//   - GET and POST /bank/v1/event-types, POST /bank/v1/events: for the bank
//     (admin token).
func (s *Service) Register(srv *httpapi.Server) {
	h := &handlers{s: s}
	tags := []string{"Events"}

	huma.Register(srv.API, httpapi.Route{ID: "list-event-types", Method: http.MethodGet, Path: "/v1/event-types", Tags: tags,
		Summary:     "The event catalog",
		Description: "Every event type with its description, the JSON Schema of its data and a whole example CloudEvent."}.App(auth.ScopeEventsRead), h.listTypes)
	huma.Register(srv.API, httpapi.Route{ID: "list-events", Method: http.MethodGet, Path: "/v1/events", Tags: tags,
		Summary: "Pull events, oldest first",
		Description: "The events this app may see, oldest first, as CloudEvents. Start without after (the oldest event), " +
			"or with an event id; then pass next_cursor as after to continue. next_cursor is set whenever the page " +
			"read anything, so polling with it never misses or repeats an event. A page may be shorter than limit " +
			"even when more events follow."}.App(auth.ScopeEventsRead), h.listEvents)
	ticket := httpapi.Route{ID: "create-stream-ticket", Method: http.MethodPost, Path: "/v1/events/stream-tickets", Tags: tags, Status: http.StatusCreated,
		Summary: "Get a ticket to open the event stream from a browser",
		Description: "A browser's EventSource cannot send an Authorization header, and an access token does not belong " +
			"in a URL (proxy logs, browser history). Your back end calls this with the app's access token and hands " +
			"the ticket to the web page, which opens `new EventSource(\"/v1/events/stream?ticket=\" + ticket)`. " +
			"The ticket is bound to this app, carries the events:read scope only, expires a minute after it is issued " +
			"and works once: any later use, on any node, is 401 invalid_ticket. EventSource reconnects to the same " +
			"URL, so when a ticket stream ends the page gets a new ticket and opens a new EventSource with " +
			"after=<the last event id it received>. Only a hash of the ticket is stored."}.App(auth.ScopeEventsRead)
	ticket.Errors = []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests}
	huma.Register(srv.API, httpapi.NoStore(ticket), h.createTicket)
	// The stream also takes a stream ticket, for browsers; its operation
	// is written by hand (an event stream is not a huma handler).
	stream := []map[string][]string{{httpapi.SchemeAppOAuth2: {auth.ScopeEventsRead}}, {httpapi.SchemeStreamTicket: {}}}
	srv.HandleSecured("GET /v1/events/stream", stream, http.HandlerFunc(s.serveStream))
	srv.API.OpenAPI().AddOperation(streamOperation(stream, tags))

	bank := srv.Bank
	huma.Register(bank, httpapi.Route{ID: "bank-list-event-types", Method: http.MethodGet, Path: "/event-types", Tags: tags,
		Summary:     "The event catalog",
		Description: "Every event type, built-in and the bank's own, with its description, the JSON Schema of its data and an example."}.Bank(), h.listTypes)
	huma.Register(bank, httpapi.Route{ID: "bank-register-event-type", Method: http.MethodPost, Path: "/event-types", Tags: tags, Status: http.StatusCreated,
		Summary: "Register (or replace) a bank event type",
		Description: "Adds an event type to the catalog, so bank systems can publish it. Registering a type the bank " +
			"registered before replaces it (200); built-in types cannot be replaced (409)."}.Bank(), h.registerType)
	huma.Register(bank, httpapi.Route{ID: "bank-publish-event", Method: http.MethodPost, Path: "/events", Tags: tags, Status: http.StatusAccepted,
		Summary: "Publish a CloudEvent from a bank system",
		Description: "Takes a CloudEvents 1.0 event, structured (Content-Type application/cloudevents+json, or " +
			"application/json without ce-* headers) or binary (ce-* headers, the data as a JSON body). The type must " +
			"be in the catalog and the data must match its schema. The extension attribute causewaycustomerid (or " +
			"data.customer_id) sends it to the apps that may see that customer, causewayappid to that one app only (even " +
			"with a customer); an event " +
			"of a public type with neither reaches every app. Delivered like every other event: webhooks, pull, stream."}.Bank(), h.publish)
	documentPublishBody(srv.API)
}

type handlers struct{ s *Service }

// StreamTicket is a ticket for GET /v1/events/stream?ticket=.
type StreamTicket struct {
	Ticket    string    `json:"ticket" doc:"Pass as the query parameter ticket of GET /v1/events/stream; shown once, works once"`
	ExpiresAt time.Time `json:"expires_at" doc:"Unused after this, the ticket is refused"`
	ExpiresIn int       `json:"expires_in" doc:"Seconds until expires_at"`
}

type ticketOutput struct {
	Status int
	Body   StreamTicket
}

func (h *handlers) createTicket(ctx context.Context, _ *struct{}) (*ticketOutput, error) {
	app, ok := auth.AppFrom(ctx)
	if !ok {
		return nil, errNoApp
	}
	if h.s.tickets == nil {
		return nil, causeway.Errorf(causeway.EUNAVAILABLE, "tickets_unavailable", "this node issues no stream tickets")
	}
	ticket, expires, err := h.s.tickets.IssueStreamTicket(ctx, app)
	if err != nil {
		return nil, err
	}
	return &ticketOutput{Status: http.StatusCreated, Body: StreamTicket{
		Ticket: ticket, ExpiresAt: expires.UTC(), ExpiresIn: max(0, int(time.Until(expires).Round(time.Second).Seconds()))}}, nil
}

// EventTypeList is the catalog.
type EventTypeList struct {
	Data []EventType `json:"data"`
}

type typesOutput struct{ Body EventTypeList }

func (h *handlers) listTypes(ctx context.Context, _ *struct{}) (*typesOutput, error) {
	types, err := h.s.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	return &typesOutput{Body: EventTypeList{Data: types}}, nil
}

type registerEventTypeInput struct {
	Body struct {
		Type        string          `json:"type" maxLength:"128" example:"branch.visit.ended" doc:"Dot-separated lower-case words"`
		Description string          `json:"description" maxLength:"1000" text:"multiline"`
		Version     string          `json:"version,omitempty" maxLength:"32" doc:"Default 1.0"`
		Public      bool            `json:"public,omitempty" doc:"Whether events that concern no app or customer reach every app"`
		Schema      json.RawMessage `json:"schema" doc:"JSON Schema (2020-12 unless $schema says otherwise) of the data"`
		Example     json.RawMessage `json:"example,omitempty" doc:"A whole CloudEvent of this type"`
	}
}

type registerEventTypeOutput struct {
	Status int
	Body   EventType
}

func (h *handlers) registerType(ctx context.Context, in *registerEventTypeInput) (*registerEventTypeOutput, error) {
	b := in.Body
	t := EventType{Type: b.Type, Description: b.Description, Version: b.Version, Public: b.Public, Schema: b.Schema, Example: b.Example}
	created, err := h.s.RegisterType(ctx, t)
	if err != nil {
		return nil, err
	}
	stored, err := h.s.bankType(ctx, h.s.db, t.Type)
	if err != nil {
		return nil, err
	}
	if stored == nil {
		return nil, causeway.Errorf(causeway.ECONFLICT, "event_type_conflict", "event type %s was replaced while it was registered; try again", t.Type)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return &registerEventTypeOutput{Status: status, Body: *stored}, nil
}

// EventJSON is one event as the feeds return it: a CloudEvents 1.0
// structured JSON object.
type EventJSON json.RawMessage

// MarshalJSON writes the event as it is.
func (e EventJSON) MarshalJSON() ([]byte, error) { return e, nil }

// Schema describes EventJSON in the OpenAPI document.
func (EventJSON) Schema(huma.Registry) *huma.Schema {
	return cloudEventSchema("A CloudEvents 1.0 event in structured JSON form.")
}

func cloudEventSchema(doc string) *huma.Schema {
	str := func(doc string) *huma.Schema { return &huma.Schema{Type: huma.TypeString, Description: doc} }
	return &huma.Schema{
		Type:        huma.TypeObject,
		Description: doc,
		Properties: map[string]*huma.Schema{
			"specversion":     {Type: huma.TypeString, Enum: []any{"1.0"}},
			"id":              str("Event id; webhook-id of its deliveries"),
			"type":            str("Event type, from the catalog"),
			"source":          str("Who produced it"),
			"subject":         str("What it is about, e.g. a resource id"),
			"time":            {Type: huma.TypeString, Format: "date-time"},
			"datacontenttype": str("application/json"),
			"data":            {Description: "The event's data, following the type's schema"},
		},
		Required:             []string{"specversion", "id", "type", "source"},
		AdditionalProperties: true,
	}
}

// EventList is a page of the pull feed.
type EventList struct {
	Data       []EventJSON `json:"data" doc:"Events, oldest first"`
	NextCursor string      `json:"next_cursor" doc:"Pass as after to read on; set whenever the page read anything"`
}

type listEventsInput struct {
	After  string `query:"after" maxLength:"512" doc:"An event id, or next_cursor of the previous page; empty for the oldest event"`
	Cursor string `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page (same as after)"`
	Limit  int    `query:"limit" minimum:"0" maximum:"200" doc:"Page size, default 50"`
}

type eventsOutput struct{ Body EventList }

func (h *handlers) listEvents(ctx context.Context, in *listEventsInput) (*eventsOutput, error) {
	app, ok := auth.AppFrom(ctx)
	if !ok {
		return nil, errNoApp
	}
	after := in.After
	if in.Cursor != "" {
		if after != "" && after != in.Cursor {
			return nil, causeway.Errorf(causeway.EINVALID, "invalid_cursor", "pass after or cursor, not both")
		}
		if _, ok := decodeCursor(in.Cursor); !ok {
			return nil, causeway.Errorf(causeway.EBADREQUEST, "invalid_cursor",
				"cursor is malformed; pass next_cursor from the previous page unchanged")
		}
		after = in.Cursor
	}
	page, err := h.s.Pull(ctx, app.ID, after, in.Limit)
	if err != nil {
		return nil, err
	}
	out := EventList{Data: make([]EventJSON, len(page.Events)), NextCursor: page.Cursor}
	for i, e := range page.Events {
		out.Data[i] = EventJSON(e.Body)
	}
	return &eventsOutput{Body: out}, nil
}

// publishInput is a CloudEvent in either HTTP content mode. The ce-*
// headers are the binary mode's attributes.
type publishInput struct {
	ContentType string `header:"Content-Type" maxLength:"255"`
	SpecVersion string `header:"ce-specversion" maxLength:"8" doc:"Binary content mode: the spec version (1.0); the body is then the event's data"`
	ID          string `header:"ce-id" maxLength:"256" doc:"Binary mode: the event id"`
	Type        string `header:"ce-type" maxLength:"128" doc:"Binary mode: the event type"`
	Source      string `header:"ce-source" maxLength:"1024" doc:"Binary mode: the source"`
	Subject     string `header:"ce-subject" maxLength:"1024" doc:"Binary mode: the subject"`
	Time        string `header:"ce-time" maxLength:"64" doc:"Binary mode: the time"`
	CustomerID  string `header:"ce-causewaycustomerid" maxLength:"128" doc:"Binary mode: the customer the event concerns"`
	AppID       string `header:"ce-causewayappid" maxLength:"128" doc:"Binary mode: the one app the event is for"`
	RawBody     []byte `contentType:"application/cloudevents+json"`
}

// PublishedEvent is the answer to a publish.
type PublishedEvent struct {
	ID string `json:"id" doc:"The event id"`
}

type publishOutput struct{ Body PublishedEvent }

func (h *handlers) publish(ctx context.Context, in *publishInput) (*publishOutput, error) {
	ce, err := decodeRequest(in)
	if err != nil {
		return nil, err
	}
	id, err := h.s.Publish(ctx, ce)
	if err != nil {
		return nil, err
	}
	return &publishOutput{Body: PublishedEvent{ID: id}}, nil
}

// decodeRequest reads the CloudEvent of a publish request in whichever
// content mode it came.
func decodeRequest(in *publishInput) (CloudEvent, error) {
	ct := strings.TrimSpace(in.ContentType)
	mt := strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
	switch {
	case mt == "application/cloudevents+json":
		return decodeStructured(in.RawBody)
	case strings.HasPrefix(mt, "application/cloudevents-batch"):
		return CloudEvent{}, httpapi.NewProblem(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"batches are not supported; publish one event per request")
	case in.SpecVersion != "":
		h := http.Header{}
		for k, v := range map[string]string{
			"Content-Type": ct, "Ce-Specversion": in.SpecVersion, "Ce-Id": in.ID, "Ce-Type": in.Type,
			"Ce-Source": in.Source, "Ce-Subject": in.Subject, "Ce-Time": in.Time,
			"Ce-" + AttrCustomerID: in.CustomerID, "Ce-" + AttrAppID: in.AppID,
		} {
			if v != "" {
				h.Set(k, v)
			}
		}
		if ct != "" && !isJSON(ct) {
			return CloudEvent{}, httpapi.NewProblem(http.StatusUnsupportedMediaType, "unsupported_media_type",
				"the event's data must be JSON (Content-Type application/json)")
		}
		return decodeBinary(h, in.RawBody)
	case mt == "" || isJSON(mt):
		return decodeStructured(in.RawBody)
	}
	return CloudEvent{}, httpapi.NewProblem(http.StatusUnsupportedMediaType, "unsupported_media_type",
		"send the event as application/cloudevents+json (structured) or with ce-* headers and a JSON body (binary)")
}

// documentPublishBody replaces the raw body huma documents for POST
// /bank/v1/events with the CloudEvent it is, in both media types.
func documentPublishBody(api huma.API) {
	item := api.OpenAPI().Paths["/bank/v1/events"]
	if item == nil || item.Post == nil || item.Post.RequestBody == nil {
		return
	}
	s := cloudEventSchema("A CloudEvents 1.0 event in structured JSON form.")
	s.Properties[AttrCustomerID] = &huma.Schema{Type: huma.TypeString, Description: "Extension: the customer the event concerns"}
	s.Properties[AttrAppID] = &huma.Schema{Type: huma.TypeString, Description: "Extension: the one app the event is for"}
	s.Required = []string{"specversion", "type", "source"}
	// The limits decodeStructured and check enforce, in the document.
	for name, n := range map[string]int{
		"id": maxIDLength, "type": maxTypeLength, "source": maxSourceLength, "subject": maxSourceLength,
		"time": maxTimeLength, "datacontenttype": maxContentTypeLength, AttrCustomerID: maxRoutingID, AttrAppID: maxRoutingID,
	} {
		s.Properties[name].MaxLength = &n
	}
	item.Post.RequestBody.Content = map[string]*huma.MediaType{
		"application/cloudevents+json": {Schema: s},
		"application/json":             {Schema: &huma.Schema{Description: "Structured (a CloudEvent as above) or, with ce-* headers, the event's data"}},
	}
}

// maxAfter bounds an event id or cursor to resume after, as in
// listEventsInput; the stream finds no event for a longer one.
var maxAfter = 512

// streamOperation documents GET /v1/events/stream, which is served outside
// huma.
func streamOperation(security []map[string][]string, tags []string) *huma.Operation {
	maxTicket := 128
	return &huma.Operation{
		OperationID: "stream-events", Method: http.MethodGet, Path: "/v1/events/stream",
		Summary: "Stream events (Server-Sent Events)",
		Description: "The events this app may see as Server-Sent Events, for EventSource and every other SSE client. " +
			"Each event is a message with an id (the event id) and data (the CloudEvent as JSON, whose type says what it " +
			"is) and no event field, so EventSource's onmessage receives it. A comment line (: ping) is sent every 15 " +
			"seconds.\n\n" +
			"Resumes after the Last-Event-ID header (EventSource sends it when it reconnects) or the after parameter " +
			"(an event id or a pull cursor); without either it starts with new events. When it cannot resume there " +
			"(the event expired, or is not one this app may see) it still answers 200, and starts at the oldest " +
			"retained event after a message named reset, without an id, whose data is " +
			"{\"reason\": \"unknown_event\" or \"events_expired\", \"detail\": \"…\"}: the client may have missed " +
			"events, and will see some again (de-duplicate on the event id).\n\n" +
			"From a browser, authenticate with a ticket from POST /v1/events/stream-tickets in the ticket parameter " +
			"(EventSource cannot send an Authorization header; access tokens in the query are refused). The answer " +
			"carries Access-Control-Allow-Origin: *, so a page on the app's own origin can read it. A node that shuts " +
			"down ends its streams with a last message holding only a retry field (1 to 4 seconds): reconnect then, " +
			"with Last-Event-ID, to reach another node.",
		Tags: tags, Security: security,
		Parameters: []*huma.Param{
			{Name: "after", In: "query", Description: "An event id or a pull cursor to resume after", Schema: &huma.Schema{Type: huma.TypeString, MaxLength: &maxAfter}},
			{Name: "ticket", In: "query", Description: "A stream ticket from POST /v1/events/stream-tickets, instead of an Authorization header", Schema: &huma.Schema{Type: huma.TypeString, MaxLength: &maxTicket}},
			{Name: "Last-Event-ID", In: "header", Description: "The id of the last event received, sent by EventSource on reconnect", Schema: &huma.Schema{Type: huma.TypeString, MaxLength: &maxAfter}},
		},
		Responses: map[string]*huma.Response{
			"200": {
				Description: "A stream of events",
				Content:     map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{Type: huma.TypeString}}},
			},
			"401": httpapi.ProblemResponse("No valid access token or stream ticket (invalid_ticket: unknown or used already; ticket_expired)"),
			"403": httpapi.ProblemResponse("The access token lacks the events:read scope"),
			"429": httpapi.ProblemResponse("Rate limited, or too_many_streams: the app holds the most open streams it may"),
			"503": httpapi.ProblemResponse("The event log cannot be reached; try again"),
		},
	}
}
