package httpapi

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// The response headers the document describes once, in components/headers,
// and references from the responses that carry them.
const (
	HeaderRequestID          = "X-Request-Id"
	HeaderRetryAfter         = "Retry-After"
	HeaderRateLimitLimit     = "RateLimit-Limit"
	HeaderRateLimitRemaining = "RateLimit-Remaining"
	HeaderRateLimitReset     = "RateLimit-Reset"
	HeaderIdempotentReplayed = "Idempotent-Replayed"
	HeaderWWWAuthenticate    = "WWW-Authenticate"

	// The headers of an answer that carries a secret (see NoStore).
	headerCacheControl = "Cache-Control"
	headerPragma       = "Pragma"
)

var (
	integerHeader = &huma.Schema{Type: huma.TypeInteger, Minimum: new(float64)}
	stringHeader  = &huma.Schema{Type: huma.TypeString}
)

// headerDocs are the components/headers entries, by name.
var headerDocs = map[string]*huma.Header{
	HeaderRequestID: {
		Description: "The request's id: the X-Request-Id the client sent, if it is 1 to 128 of A-Z a-z 0-9 . _ : -, " +
			"else one the platform made. Problems carry it as request_id; quote it when you report a problem.",
		Schema: stringHeader,
	},
	HeaderRetryAfter: {
		Description: "Seconds to wait before trying again.",
		Schema:      integerHeader,
	},
	HeaderRateLimitLimit: {
		Description: "The caller's current limit: its burst, or its daily quota when less of the quota is left than of the burst " +
			"(IETF draft RateLimit header fields). Sent on every call of an app or a developer.",
		Schema: integerHeader,
	},
	HeaderRateLimitRemaining: {
		Description: "Requests left under RateLimit-Limit.",
		Schema:      integerHeader,
	},
	HeaderRateLimitReset: {
		Description: "Seconds until RateLimit-Remaining is back at RateLimit-Limit (for the daily quota: until midnight UTC).",
		Schema:      integerHeader,
	},
	HeaderIdempotentReplayed: {
		Description: "true when this is the stored answer to an earlier request with the same Idempotency-Key, replayed " +
			"instead of running the request again.",
		Schema: &huma.Schema{Type: huma.TypeString, Enum: []any{"true"}},
	},
	headerCacheControl: {
		Description: "no-store: the answer carries a secret or a token; do not keep a copy.",
		Schema:      &huma.Schema{Type: huma.TypeString, Enum: []any{"no-store"}},
	},
	headerPragma: {
		Description: "no-cache, for HTTP/1.0 caches.",
		Schema:      &huma.Schema{Type: huma.TypeString, Enum: []any{"no-cache"}},
	},
	HeaderWWWAuthenticate: {
		Description: "The Bearer challenge (RFC 6750): error=\"invalid_token\" for a token that is not valid, " +
			"error=\"insufficient_scope\" with the scope the route needs.",
		Schema: stringHeader,
	},
}

// problemDoc documents one problem answer in components/responses.
type problemDoc struct {
	name        string
	description string
	headers     []string
}

// problemDocs are the problem answers the route policy derives (see
// routeTraits), by status; "default" is every other error.
var problemDocs = map[string]problemDoc{
	"400": {"BadRequest", "The request is malformed: a body that is not JSON or is missing, a cursor that is not a " +
		"next_cursor, a time or money value that does not parse, or an Idempotency-Key that is not 1 to 255 printable " +
		"characters. The code says which (bad_request, invalid_cursor, invalid_time, invalid_money, invalid_idempotency_key, ...).", nil},
	"401": {"Unauthorized", "No credential, or one this route does not accept: no Bearer token (unauthorized), or a token " +
		"that is unknown, expired or revoked (invalid_token, token_expired, token_revoked, app_inactive). " +
		"Get a new token and try again.", []string{HeaderWWWAuthenticate}},
	"403": {"Forbidden", "The access token is valid but lacks a scope this route needs (insufficient_scope; WWW-Authenticate " +
		"names it), or the caller may not do this (the code says why). A new token does not help unless the app has the scope.",
		[]string{HeaderWWWAuthenticate}},
	"404": {"NotFound", "No such resource for this caller. An id that belongs to another organization or app is a 404 too, " +
		"never its data.", nil},
	"409": {"Conflict", "The resource is not in a state that allows this request: each state change names the state it " +
		"leaves, so of two callers racing, one wins and the other gets a 409 whose code says what happened first. Also " +
		"idempotency_in_progress, with Retry-After, while a request with the same Idempotency-Key is still running.",
		[]string{HeaderRetryAfter}},
	"422": {"UnprocessableEntity", "The request is well-formed but not acceptable: a field fails its schema " +
		"(validation_failed; errors[] names each location), text with control characters or over its maxLength " +
		"(invalid_text), an Idempotency-Key reused for another request (idempotency_key_reused), or a rule of the bank " +
		"(the code names it).", nil},
	"429": {"TooManyRequests", "Too many requests: the caller's rate limit (rate_limited) or daily quota (quota_exceeded), " +
		"or a throttle of the route itself (the code names it). Wait Retry-After seconds.",
		[]string{HeaderRetryAfter, HeaderRateLimitLimit, HeaderRateLimitRemaining, HeaderRateLimitReset}},
	"default": {"Problem", "Any other error, as an RFC 9457 problem with a stable code: 413 body_too_large, " +
		"415 unsupported_media_type, 503 unavailable (with Retry-After when the platform knows), 500 internal (quote request_id).",
		[]string{HeaderRetryAfter}},
}

const problemMediaType = "application/problem+json"

// documentTags are the document's top-level tags, in the order a reader
// meets them. Every operation's tags must be among them.
var documentTags = []*huma.Tag{
	{Name: "Developers", Description: "Sign up, log in and out. A developer token manages an organization's apps; " +
		"it is not an app credential and does not reach the banking API."},
	{Name: "Apps", Description: "Your organization's apps: client credentials and the scopes they may ask for. " +
		"Under /bank/v1, the bank's approvals and suspensions, and the keys that sign access tokens."},
	{Name: "OAuth2", Description: "The authorization server: the client-credentials grant (RFC 6749 section 4.4) turns " +
		"an app's client id and secret into a short-lived access token for the /v1 API."},
	{Name: "Banking", Description: "The bank's API for apps: customers, accounts, balances, transactions, payments, " +
		"KYC checks, loans and offers. An app sees only the customers it created, was seeded with or was granted; " +
		"any other id is a 404. Money is a decimal string with an ISO 4217 currency, never a float."},
	{Name: "Events", Description: "CloudEvents 1.0 about what happens in the bank, each with the same id however it " +
		"arrives: the catalog of event types, the pull feed and the Server-Sent Events stream. The bank registers " +
		"types of its own and publishes events from its systems."},
	{Name: "Webhooks", Description: "Subscriptions that push events to an app's endpoint as signed Standard Webhooks " +
		"deliveries, retried for about three days, with delivery logs, pause, resume, re-sends and secret rotation."},
	{Name: "SPIs", Description: "Extension points where a bank process calls an app's endpoint and waits for its " +
		"answer under a deadline: fraud checks, credit decisions, KYC, customer insights. The bank activates " +
		"providers for every app's traffic and defines new points."},
	{Name: "Data partnering", Description: "The bank's dataset catalog, access requests that the bank decides, and " +
		"downloads encrypted end to end to the requester's own age key, so the platform never sees the data."},
	{Name: "Gateway", Description: "What the gateway measures and enforces on every app's calls: analytics, rate " +
		"limits and daily quotas, and the bank's internal APIs it publishes to apps under /v1/ext."},
	{Name: "Sandbox bank", Description: "The bank's own view of the sandbox bank: every customer and account, " +
		"deposits, payments the bank makes and the review of held ones, grants that let an app see a customer, and " +
		"the ledger check."},
	{Name: "Audit", Description: "The bank's audit trail: an entry for every change made on the bank's side, " +
		"with who made it, what changed and the request it came with; append-only and hash-chained, with an " +
		"export as JSON Lines and a check that finds an entry edited or deleted in the database."},
	{Name: "Data agent", Description: "The protocol of the data agent, which prepares dataset content on the bank's " +
		"side: it claims a job, uploads the ciphertext in parts and completes or fails the job."},
	{Name: "Operators", Description: "The bank's named staff: operators with roles (viewer, app-manager, risk-officer, " +
		"data-steward, admin), a second factor, and personal API tokens for scripts."},
	{Name: "Bank", Description: "Every route under /bank/v1, for the bank's operators and systems: each takes an " +
		"operator's token holding the role it names, or the bank's admin token, which holds every role (the data " +
		"agent's routes also take the agent's own token)."},
}

// routeTraits is what an operation's declaration (its security, path,
// parameters, body and method) tells of the answers it can give. The route
// policy that the gateway applies is derived from the same security
// declaration (see gateway.Middleware), so the document and the gateway
// agree.
type routeTraits struct {
	authenticated bool // some credential is needed
	scoped        bool // an app alternative needs a scope
	metered       bool // the gateway meters the caller: an app or a developer
	admin         bool // the bank's admin token is an alternative
	idempotent    bool // the gateway honours Idempotency-Key
	changes       bool // not a read
	body          bool
	query         bool // takes query parameters
	params        bool // takes parameters of any kind
	pathID        bool // addresses a resource in its path
}

func traitsOf(op *huma.Operation) routeTraits {
	var t routeTraits
	for _, req := range op.Security {
		if len(req) > 0 {
			t.authenticated = true
		}
		if _, ok := req[SchemeBankAdmin]; ok {
			t.admin = true
		}
		if _, ok := req[SchemeDeveloper]; ok {
			t.metered = true
		}
		if scopes, ok := req[SchemeAppOAuth2]; ok {
			t.metered = true
			t.scoped = t.scoped || len(scopes) > 0
		}
	}
	t.changes = op.Method != http.MethodGet && op.Method != http.MethodHead
	// The gateway stores the answer of a metered POST under its key.
	t.idempotent = t.metered && op.Method == http.MethodPost
	t.body = op.RequestBody != nil
	t.pathID = strings.Contains(op.Path, "{")
	t.params = len(op.Parameters) > 0
	for _, p := range op.Parameters {
		if p != nil && p.In == "query" {
			t.query = true
		}
	}
	return t
}

// problems returns the statuses of the problem answers an operation with
// these traits can give.
func (t routeTraits) problems() []string {
	var out []string
	add := func(status string, when bool) {
		if when {
			out = append(out, status)
		}
	}
	add("400", t.body || t.query || t.idempotent)
	add("401", t.authenticated)
	add("403", t.scoped)
	add("404", t.pathID)
	add("409", t.changes && (t.metered || t.admin))
	add("422", t.body || t.params || t.idempotent)
	add("429", t.metered)
	return out
}

// The bounds of an Idempotency-Key, as the gateway checks them.
var idempotencyKeyMin, idempotencyKeyMax = 1, 255

// idempotencyKeyParam documents the Idempotency-Key of a metered POST.
func idempotencyKeyParam() *huma.Param {
	return &huma.Param{
		Name: "Idempotency-Key", In: "header",
		Description: "Makes the request safe to retry: a retry with the same key, method, path and body within 24 hours " +
			"gets the first answer again (Idempotent-Replayed: true) instead of running twice; the key with another " +
			"request is 422 idempotency_key_reused, and while the first still runs 409 idempotency_in_progress. " +
			"Send a new random key (a UUID) for each new request.",
		Schema: &huma.Schema{Type: huma.TypeString, MinLength: &idempotencyKeyMin, MaxLength: &idempotencyKeyMax},
	}
}

// describe is an OnAddOperation hook that completes every operation's
// documentation from its declaration: security (public operations say so
// with an empty list), the problem answers its route policy derives
// (routeTraits), the response headers the platform sends, and the
// Idempotency-Key header the gateway honours. Answers an operation
// documents itself are kept.
func describe(oapi *huma.OpenAPI, op *huma.Operation) {
	if op.Security == nil {
		// Public: no credential. Without it a linter cannot tell a public
		// operation from one that forgot its security.
		op.Security = []map[string][]string{}
	}
	if op.Responses == nil {
		op.Responses = map[string]*huma.Response{}
	}
	t := traitsOf(op)
	for _, status := range append(t.problems(), "default") {
		if res := op.Responses[status]; res == nil || isGenericProblem(status, res) {
			op.Responses[status] = problemRef(oapi, status)
		}
	}
	// Problems huma made for an operation's Errors get the shared
	// description too.
	for status, res := range op.Responses {
		if _, ok := problemDocs[status]; ok && isGenericProblem(status, res) {
			op.Responses[status] = problemRef(oapi, status)
		}
	}
	for status, res := range op.Responses {
		if res.Ref != "" {
			continue
		}
		names := []string{HeaderRequestID}
		if strings.HasPrefix(status, "2") {
			if t.metered {
				names = append(names, HeaderRateLimitLimit, HeaderRateLimitRemaining, HeaderRateLimitReset)
			}
			if t.idempotent {
				names = append(names, HeaderIdempotentReplayed)
			}
		}
		for _, name := range names {
			if _, ok := res.Headers[name]; !ok {
				if res.Headers == nil {
					res.Headers = map[string]*huma.Param{}
				}
				res.Headers[name] = headerRef(name)
			}
		}
		for name, h := range res.Headers {
			if h != nil && h.Ref == headerRef(name).Ref {
				useHeader(oapi, name)
			}
		}
	}
	if t.idempotent && !slices.ContainsFunc(op.Parameters, func(p *huma.Param) bool {
		return p != nil && p.In == "header" && strings.EqualFold(p.Name, "Idempotency-Key")
	}) {
		op.Parameters = append(op.Parameters, idempotencyKeyParam())
	}
}

// isGenericProblem reports whether res is a problem answer as huma makes
// one (a bare status text or "Error", the problem schema), which the
// shared description replaces.
func isGenericProblem(status string, res *huma.Response) bool {
	if res.Ref != "" || len(res.Headers) > 0 || len(res.Content) != 1 || res.Content[problemMediaType] == nil {
		return false
	}
	code, _ := strconv.Atoi(status)
	return res.Description == "Error" || res.Description == http.StatusText(code)
}

// ProblemResponse documents a problem answer particular to one operation,
// such as 409 content_not_ready: put it in the operation's Responses under
// its status before registering. headers names the headers it carries
// (HeaderRetryAfter, ...) besides X-Request-Id.
func ProblemResponse(description string, headers ...string) *huma.Response {
	res := &huma.Response{
		Description: description,
		Content:     map[string]*huma.MediaType{problemMediaType: {Schema: &huma.Schema{Ref: "#/components/schemas/Problem"}}},
		Headers:     map[string]*huma.Param{},
	}
	for _, name := range append([]string{HeaderRequestID}, headers...) {
		res.Headers[name] = headerRef(name)
	}
	return res
}

func headerRef(name string) *huma.Param { return &huma.Param{Ref: "#/components/headers/" + name} }

// useHeader puts the header's documentation in components/headers.
func useHeader(oapi *huma.OpenAPI, name string) {
	doc, ok := headerDocs[name]
	if !ok {
		panic("httpapi: no documentation for the response header " + name)
	}
	if oapi.Components.Headers == nil {
		oapi.Components.Headers = map[string]*huma.Header{}
	}
	oapi.Components.Headers[name] = doc
}

// problemRef references the shared problem answer for status, putting it
// in components/responses on first use (so the document has no unused
// components).
func problemRef(oapi *huma.OpenAPI, status string) *huma.Response {
	doc := problemDocs[status]
	if oapi.Components.Responses == nil {
		oapi.Components.Responses = map[string]*huma.Response{}
	}
	if oapi.Components.Responses[doc.name] == nil {
		res := ProblemResponse(doc.description, doc.headers...)
		for name := range res.Headers {
			useHeader(oapi, name)
		}
		oapi.Components.Responses[doc.name] = res
	}
	return &huma.Response{Ref: "#/components/responses/" + doc.name}
}

// inline returns res, or for a reference a copy of the response it
// references, so that headers can be added to it alone.
func inline(oapi *huma.OpenAPI, res *huma.Response) *huma.Response {
	name, ok := strings.CutPrefix(res.Ref, "#/components/responses/")
	if !ok {
		return res
	}
	c := *oapi.Components.Responses[name]
	c.Headers = maps.Clone(c.Headers)
	return &c
}

// describeDocument sets what the document says of the platform as a whole:
// the node's URL, whom to contact, the terms, and the tags.
func describeDocument(oapi *huma.OpenAPI, publicURL string) {
	oapi.Tags = documentTags
	if publicURL == "" {
		return
	}
	oapi.Servers = []*huma.Server{{URL: publicURL, Description: "This node"}}
	oapi.Info.Contact = &huma.Contact{Name: "The bank's developer portal", URL: publicURL + "/"}
	oapi.Info.License = &huma.License{Name: "Terms of use of the bank that runs this node", URL: publicURL + "/"}
}
