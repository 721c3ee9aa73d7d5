package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
)

// Register adds the gateway's routes: app limits, analytics and upstream
// APIs under /bank/v1, a developer's view of an app's analytics under /v1,
// and the upstream proxy at ProxyPattern.
func (g *Gateway) Register(s *httpapi.Server) {
	h := &handlers{g: g}
	tags := []string{"Gateway"}
	const analytics = "Calls, 4xx and 5xx answers and latency percentiles between from and to (at most 31 days; by " +
		"default the last 24 hours), in total, per route pattern (GET /v1/accounts/{id}) and per minute with calls."
	huma.Register(s.Bank, httpapi.Route{ID: "bank-put-app-limits", Method: http.MethodPut, Path: "/apps/{id}/limits", Tags: tags,
		Summary: "Set an app's rate limit and daily quota",
		Description: "Gives the app its own token bucket (requests_per_second, burst) and daily quota (requests per UTC day) instead " +
			"of the platform's defaults; every node applies them within seconds. The app's RateLimit-* headers show them."}.Bank(), h.putLimits)
	huma.Register(s.Bank, httpapi.Route{ID: "bank-get-app-limits", Method: http.MethodGet, Path: "/apps/{id}/limits", Tags: tags,
		Summary:     "Get an app's rate limit and daily quota",
		Description: "The limits that apply to the app: its own, or the platform's defaults (default: true)."}.Bank(), h.getLimits)
	huma.Register(s.Bank, httpapi.Route{ID: "bank-get-app-analytics", Method: http.MethodGet, Path: "/apps/{id}/analytics", Tags: tags,
		Summary:     "An app's API calls, errors and latencies",
		Description: analytics + " Of one app of any organization."}.Bank(), h.bankAnalytics)
	huma.Register(s.Bank, httpapi.Route{ID: "bank-get-analytics", Method: http.MethodGet, Path: "/analytics", Tags: tags,
		Summary:     "Every app's API calls, errors and latencies together",
		Description: analytics + " Of every app's calls together: the platform's traffic."}.Bank(), h.platformAnalytics)

	dev := httpapi.Route{ID: "get-app-analytics", Method: http.MethodGet, Path: "/v1/apps/{id}/analytics", Tags: tags,
		Summary:     "Your app's API calls, errors and latencies",
		Description: analytics + " Of an app of the developer's organization, as the gateway measured them; another organization's app is 404."}.Developer()
	huma.Register(s.API, dev, h.developerAnalytics)

	create := httpapi.Route{ID: "bank-create-upstream", Method: http.MethodPost, Path: "/upstreams", Tags: tags, Status: http.StatusCreated,
		Summary: "Publish an upstream API to apps under /v1/ext/{path_prefix}/",
		Description: "Puts one of the bank's internal APIs behind the gateway: an app's call to /v1/ext/{path_prefix}/x?y goes to " +
			"{base_url}/x?y with the app's credentials removed, after the gateway checked the token, the scope, the " +
			"limits and counted the call. Each forwarded call is signed (RFC 9421 HTTP Message Signatures with the " +
			"signing_secret, shown in this answer only) so the upstream can tell it came through the gateway. A path " +
			"prefix in use is 409 upstream_prefix_taken."}.Bank()
	huma.Register(s.Bank, httpapi.NoStore(create), h.createUpstream)
	huma.Register(s.Bank, httpapi.Route{ID: "bank-list-upstreams", Method: http.MethodGet, Path: "/upstreams", Tags: tags,
		Summary:     "List upstream APIs",
		Description: "The published upstream APIs with their path prefix, base URL and scope (never their signing secret), oldest first."}.Bank(), h.listUpstreams)
	del := httpapi.Route{ID: "bank-delete-upstream", Method: http.MethodDelete, Path: "/upstreams/{id}", Tags: tags, Status: http.StatusNoContent,
		Summary: "Unpublish an upstream API",
		Description: "Stops forwarding /v1/ext/{path_prefix}/ to the upstream; every node stops within seconds, and calls there " +
			"then get 404."}.Bank()
	huma.Register(s.Bank, del, h.deleteUpstream)

	s.HandleSecured(ProxyPattern, []map[string][]string{{httpapi.SchemeAppOAuth2: {}}}, http.HandlerFunc(g.proxy))
}

type handlers struct{ g *Gateway }

type appIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

// LimitsBody is the wire form of Limits.
type LimitsBody struct {
	RequestsPerSecond float64 `json:"requests_per_second" minimum:"0.001" maximum:"100000" example:"50" doc:"Token bucket refill rate"`
	Burst             int     `json:"burst" minimum:"1" maximum:"1000000" example:"100" doc:"Requests allowed at once"`
	DailyQuota        int64   `json:"daily_quota" minimum:"1" maximum:"1000000000" example:"100000" doc:"Requests per UTC day"`
}

// AppLimits are the limits that apply to an app.
type AppLimits struct {
	AppID string `json:"app_id"`
	LimitsBody
	Default bool `json:"default" doc:"True when the app has no limits of its own and gets the platform's"`
}

func appLimits(appID string, l Limits, custom bool) *httpapi.Out[AppLimits] {
	return &httpapi.Out[AppLimits]{Body: AppLimits{AppID: appID, Default: !custom, LimitsBody: LimitsBody(l)}}
}

// Inputs spell the id out rather than embed appIDInput: huma skips
// embedded structs of unexported types.
type putLimitsInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body LimitsBody
}

func (h *handlers) putLimits(ctx context.Context, in *putLimitsInput) (*httpapi.Out[AppLimits], error) {
	l, err := h.g.SetLimits(ctx, in.ID, Limits{
		RequestsPerSecond: in.Body.RequestsPerSecond, Burst: in.Body.Burst, DailyQuota: in.Body.DailyQuota})
	if err != nil {
		return nil, err
	}
	return appLimits(in.ID, l, true), nil
}

func (h *handlers) getLimits(ctx context.Context, in *appIDInput) (*httpapi.Out[AppLimits], error) {
	l, custom, err := h.g.AppLimits(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return appLimits(in.ID, l, custom), nil
}

type analyticsInput struct {
	ID   string `path:"id" maxLength:"64"`
	From string `query:"from" maxLength:"64" doc:"Start (inclusive, rounded down to the minute): RFC 3339 time or YYYY-MM-DD; default 24 h before to"`
	To   string `query:"to" maxLength:"64" doc:"End (exclusive): RFC 3339 time or YYYY-MM-DD; default now"`
}

func (in *analyticsInput) rangeAt(now time.Time) (time.Time, time.Time, error) {
	to, err := parseTime("to", in.To)
	if err != nil {
		return to, to, err
	}
	if to.IsZero() {
		to = now
	}
	from, err := parseTime("from", in.From)
	if from.IsZero() {
		from = to.Add(-24 * time.Hour)
	}
	return from, to, err
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, causeway.Errorf(causeway.EBADREQUEST, "invalid_time", "%s must be an RFC 3339 time or YYYY-MM-DD", name)
}

func (h *handlers) analytics(ctx context.Context, in *analyticsInput) (*httpapi.Out[*Analytics], error) {
	from, to, err := in.rangeAt(h.g.now())
	if err != nil {
		return nil, err
	}
	a, err := h.g.Analytics(ctx, in.ID, from, to)
	if err != nil {
		return nil, err
	}
	return &httpapi.Out[*Analytics]{Body: a}, nil
}

type platformAnalyticsInput struct {
	From string `query:"from" maxLength:"64" doc:"Start (inclusive, rounded down to the minute): RFC 3339 time or YYYY-MM-DD; default 24 h before to"`
	To   string `query:"to" maxLength:"64" doc:"End (exclusive): RFC 3339 time or YYYY-MM-DD; default now"`
}

// platformAnalytics is the platform's traffic: every app's calls together.
func (h *handlers) platformAnalytics(ctx context.Context, in *platformAnalyticsInput) (*httpapi.Out[*Analytics], error) {
	return h.analytics(ctx, &analyticsInput{From: in.From, To: in.To})
}

func (h *handlers) bankAnalytics(ctx context.Context, in *analyticsInput) (*httpapi.Out[*Analytics], error) {
	if _, err := h.g.auth.AppOrganization(ctx, in.ID); err != nil {
		return nil, err
	}
	return h.analytics(ctx, in)
}

// developerAnalytics shows a developer the analytics of an app of their
// organization; any other app is not found, never forbidden, so app ids do
// not leak across organizations.
func (h *handlers) developerAnalytics(ctx context.Context, in *analyticsInput) (*httpapi.Out[*Analytics], error) {
	dev, ok := auth.DeveloperFrom(ctx)
	if !ok {
		return nil, causeway.Errorf(causeway.EUNAUTHORIZED, "unauthorized", "this route needs a developer token")
	}
	org, err := h.g.auth.AppOrganization(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if org != dev.OrganizationID {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "app_not_found", "no app %s", in.ID)
	}
	return h.analytics(ctx, in)
}

type createUpstreamInput struct {
	Body struct {
		Name       string `json:"name" minLength:"1" maxLength:"100" example:"Card controls"`
		BaseURL    string `json:"base_url" format:"uri" maxLength:"2048" example:"https://cards.bank.internal/api" doc:"http or https; calls to /v1/ext/{path_prefix}/x go to {base_url}/x"`
		PathPrefix string `json:"path_prefix" maxLength:"63" pattern:"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$" example:"cards"`
		Scope      string `json:"scope" enum:"accounts:read,customers:write,payments:write,kyc:write,loans:write,events:read,webhooks:write,spi:write,data:read" doc:"The scope an app's token needs to call it"`
	}
}

// CreatedUpstream is an upstream with its signing secret, shown this once.
type CreatedUpstream struct {
	Upstream
	SigningSecret string `json:"signing_secret" doc:"whsec_ followed by the base64 of the hmac-sha256 key that signs the calls forwarded to the upstream (HTTP Message Signatures, RFC 9421, keyid = the upstream's id). Shown once."`
}

func (h *handlers) createUpstream(ctx context.Context, in *createUpstreamInput) (*httpapi.Out[CreatedUpstream], error) {
	up, secret, err := h.g.CreateUpstream(ctx, NewUpstream{
		Name: in.Body.Name, BaseURL: in.Body.BaseURL, PathPrefix: in.Body.PathPrefix, Scope: in.Body.Scope})
	if err != nil {
		return nil, err
	}
	return &httpapi.Out[CreatedUpstream]{Body: CreatedUpstream{Upstream: *up, SigningSecret: secret}}, nil
}

type listUpstreamsInput struct {
	httpapi.PageQuery
}

func (h *handlers) listUpstreams(ctx context.Context, in *listUpstreamsInput) (*httpapi.Out[*UpstreamPage], error) {
	page, err := h.g.Upstreams(ctx, in.Limit, in.Cursor)
	if err != nil {
		return nil, err
	}
	return &httpapi.Out[*UpstreamPage]{Body: page}, nil
}

type upstreamIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

func (h *handlers) deleteUpstream(ctx context.Context, in *upstreamIDInput) (*struct{}, error) {
	return nil, h.g.DeleteUpstream(ctx, in.ID)
}
