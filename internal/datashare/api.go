package datashare

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/page"
)

// ContentType is the media type of downloads: an age-encrypted file.
const ContentType = "application/age"

// Register adds the data partnering routes: the catalog, an app's access
// requests and their encrypted content under /v1 (scope data:read); the
// bank's catalog, decisions and audit under /bank/v1 (admin token); and the
// data agent's job routes under /bank/v1/agent (admin token or
// Options.AgentToken).
//
// It is long because it is the package's route table: one declaration per
// route, read as one list.
func (s *Service) Register(srv *httpapi.Server) {
	h := &handlers{s: s, srv: srv}
	tags := []string{"Data partnering"}
	huma.Register(srv.API, httpapi.Route{ID: "list-datasets", Method: http.MethodGet, Path: "/v1/datasets", Tags: tags,
		Summary: "Browse the dataset catalog: schema and sample rows",
		Description: "The bank's published datasets, oldest first, each with its description, columns, formats, licence, row count " +
			"and a few sample rows (illustrative, never real customer data). Browsing needs no access request."}.App(auth.ScopeDataRead), h.listDatasets)
	huma.Register(srv.API, httpapi.Route{ID: "get-dataset", Method: http.MethodGet, Path: "/v1/datasets/{id}", Tags: tags,
		Summary:     "Get a dataset's description, schema and sample",
		Description: "One dataset of the catalog: what it holds, its columns and their types, the formats it comes in and sample rows."}.App(auth.ScopeDataRead), h.getDataset)
	huma.Register(srv.API, httpapi.Route{ID: "create-dataset-access-request", Method: http.MethodPost, Path: "/v1/dataset-access-requests", Tags: tags, Status: http.StatusCreated,
		Summary: "Ask the bank for access to a dataset",
		Description: "Asks the bank for a dataset, for a purpose and a number of days, in one of its formats. recipient is the age " +
			"public key (age1...) the content will be encrypted to: keep its identity file to yourself, the platform " +
			"never sees it. The request waits (awaiting_approval) until the bank approves or rejects it; the app hears " +
			"of the decision as a dataset.access.* event. An unknown dataset is 422 unknown_dataset."}.App(auth.ScopeDataRead), h.requestAccess)
	huma.Register(srv.API, httpapi.Route{ID: "list-dataset-access-requests", Method: http.MethodGet, Path: "/v1/dataset-access-requests", Tags: tags,
		Summary: "List the app's dataset access requests",
		Description: "This app's access requests, oldest first, with their status (awaiting_approval, approved, rejected, revoked, " +
			"expired) and the content's progress; status narrows to one."}.App(auth.ScopeDataRead), h.listRequests)
	huma.Register(srv.API, httpapi.Route{ID: "get-dataset-access-request", Method: http.MethodGet, Path: "/v1/dataset-access-requests/{id}", Tags: tags,
		Summary: "Get one of the app's dataset access requests",
		Description: "One of this app's access requests: its status, expiry and whether its content is ready to download. Another " +
			"app's request is 404."}.App(auth.ScopeDataRead), h.getRequest)
	content := httpapi.Route{ID: "download-dataset-content", Method: http.MethodGet, Path: "/v1/dataset-access-requests/{id}/content", Tags: tags,
		Summary: "Download the dataset, age-encrypted to the request's recipient",
		Description: "The dataset (CSV with a header line, or JSON Lines) as an age-encrypted stream to the request's recipient; " +
			"decrypt with `causeway data pull` or `age -d -i key.txt`. Range requests resume an interrupted download; the ETag is the " +
			"SHA-256 of the ciphertext. 403 access_not_granted unless the request is the caller's, approved and unexpired; " +
			"409 content_not_ready with Retry-After while the bank's data agent prepares it."}.App(auth.ScopeDataRead)
	binary := map[string]*huma.MediaType{ContentType: {Schema: &huma.Schema{Type: "string", Format: "binary"}}}
	content.Responses = map[string]*huma.Response{
		"200": {Description: "The whole encrypted file", Content: binary},
		"206": {Description: "The requested range of the encrypted file", Content: binary},
		"409": httpapi.ProblemResponse("content_not_ready: the bank's data agent is still preparing the content; try "+
			"again after Retry-After seconds. content_failed: the agent gave up; the bank can queue it again.", httpapi.HeaderRetryAfter),
	}
	huma.Register(srv.API, content, h.content)

	b := srv.Bank
	huma.Register(b, httpapi.Route{ID: "bank-publish-dataset", Method: http.MethodPost, Path: "/datasets", Tags: tags, Status: http.StatusCreated,
		Summary: "Publish a dataset in the catalog",
		Description: "Adds a dataset to the catalog that apps browse: its description, licence, columns, formats and sample rows, " +
			"and its source on the data agent's side (a built-in generator, or a CSV or JSON Lines file under one of the " +
			"agent's allowed directories). The hub stores only the description, never the data. A name already in the " +
			"catalog is 409 dataset_exists."}.Bank(), h.publish)
	huma.Register(b, httpapi.Route{ID: "bank-list-datasets", Method: http.MethodGet, Path: "/datasets", Tags: tags,
		Summary:     "List the catalog with sources",
		Description: "The catalog as apps see it, oldest first, with each dataset's source on the data agent's side."}.Bank(), h.bankListDatasets)
	huma.Register(b, httpapi.Route{ID: "bank-get-dataset", Method: http.MethodGet, Path: "/datasets/{id}", Tags: tags,
		Summary:     "Get a dataset with its source",
		Description: "One dataset of the catalog with its source on the data agent's side."}.Bank(), h.bankGetDataset)
	huma.Register(b, httpapi.Route{ID: "bank-list-dataset-access-requests", Method: http.MethodGet, Path: "/dataset-access-requests", Tags: tags,
		Summary:     "List access requests, oldest first",
		Description: "Every app's access requests, oldest first; status=awaiting_approval lists what waits for a decision."}.Bank(), h.bankListRequests)
	huma.Register(b, httpapi.Route{ID: "bank-get-dataset-access-request", Method: http.MethodGet, Path: "/dataset-access-requests/{id}", Tags: tags,
		Summary:     "Get an access request",
		Description: "One access request of any app: the dataset, purpose, duration, recipient, decision and the content's progress."}.Bank(), h.bankGetRequest)
	onlyFrom := func(state string) string {
		return "Only a request that is " + state + " can be decided so; any other state, including a decision " +
			"another officer took a moment earlier, is 409 invalid_transition."
	}
	huma.Register(b, httpapi.Route{ID: "bank-approve-dataset-access-request", Method: http.MethodPost, Path: "/dataset-access-requests/{id}/approve", Tags: tags,
		Summary:     "Approve a request awaiting approval",
		Description: onlyFrom("awaiting approval")}.Bank(), h.approve)
	huma.Register(b, httpapi.Route{ID: "bank-reject-dataset-access-request", Method: http.MethodPost, Path: "/dataset-access-requests/{id}/reject", Tags: tags,
		Summary:     "Reject a request awaiting approval",
		Description: onlyFrom("awaiting approval")}.Bank(), h.reject)
	huma.Register(b, httpapi.Route{ID: "bank-revoke-dataset-access-request", Method: http.MethodPost, Path: "/dataset-access-requests/{id}/revoke", Tags: tags,
		Summary:     "Revoke an approved request: downloads stop at once",
		Description: onlyFrom("approved")}.Bank(), h.revoke)
	huma.Register(b, httpapi.Route{ID: "bank-retry-dataset-content", Method: http.MethodPost, Path: "/dataset-access-requests/{id}/retry-content", Tags: tags,
		Summary: "Queue failed content for the data agent again",
		Description: "Puts content the data agent gave up on (content_failed) back in the agents' queue, with its attempts reset. " +
			"Only an approved request's content can be retried; any other is 409 invalid_transition."}.Bank(), h.retry)
	huma.Register(b, httpapi.Route{ID: "bank-dataset-access-audit", Method: http.MethodGet, Path: "/dataset-access-requests/{id}/audit", Tags: tags,
		Summary: "The request's audit trail: request, decisions, content, downloads",
		Description: "Everything that happened to the request, oldest first: the request, each decision and who took it, the " +
			"content prepared or failed, and every download or refused download with its range and size."}.Bank(), h.audit)

	h.registerAgent(srv)
}

type handlers struct {
	s   *Service
	srv *httpapi.Server
}

func (h *handlers) listDatasets(ctx context.Context, in *httpapi.PageQuery) (*httpapi.Out[*page.Page[*Dataset]], error) {
	return httpapi.Reply(h.s.Datasets(ctx, auth.CallerFrom(ctx), in.Limit, in.Cursor))
}

func (h *handlers) getDataset(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*Dataset], error) {
	return httpapi.Reply(h.s.Dataset(ctx, auth.CallerFrom(ctx), in.ID))
}

type requestAccessInput struct{ Body NewAccessRequest }

func (h *handlers) requestAccess(ctx context.Context, in *requestAccessInput) (*httpapi.Out[*AccessRequest], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.s.RequestAccess(ctx, app, in.Body))
}

type listRequestsInput struct {
	httpapi.PageQuery
	Status string `query:"status" enum:"awaiting_approval,approved,rejected,revoked,expired"`
}

func (h *handlers) listRequests(ctx context.Context, in *listRequestsInput) (*httpapi.Out[*page.Page[*AccessRequest]], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.s.AccessRequests(ctx, app, RequestFilter{Status: in.Status, Limit: in.Limit, Cursor: in.Cursor}))
}

func (h *handlers) getRequest(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*AccessRequest], error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	return httpapi.Reply(h.s.AccessRequest(ctx, app, in.ID))
}

type contentInput struct {
	ID     string `path:"id" maxLength:"64"`
	Format string `query:"format" enum:"csv,jsonl" doc:"Default: the format of the request"`
}

// retryProblem carries Retry-After to huma's error response.
type retryProblem struct{ *RetryError }

func (e retryProblem) GetHeaders() http.Header {
	secs := int((e.After + time.Second - 1) / time.Second)
	return http.Header{"Retry-After": {strconv.Itoa(max(secs, 1))}}
}

func (h *handlers) content(ctx context.Context, in *contentInput) (*huma.StreamResponse, error) {
	app, err := auth.AppCallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	c, err := h.s.OpenContent(ctx, app, in.ID, in.Format)
	var re *RetryError
	if errors.As(err, &re) {
		return nil, retryProblem{re}
	}
	if err != nil {
		return nil, err
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		r, w := humago.Unwrap(hctx)
		defer c.Blob.Close()
		hd := w.Header()
		hd.Set("Content-Type", ContentType)
		hd.Set("ETag", c.ETag)
		hd.Set("Cache-Control", "private, no-store")
		hd.Set("Content-Disposition", `attachment; filename="`+c.RequestID+"."+c.Format+`.age"`)
		cw := &countingWriter{ResponseWriter: w}
		start := time.Now()
		// ServeContent answers Range (206, 416), If-Range against the ETag,
		// and sets Content-Length and Accept-Ranges.
		http.ServeContent(cw, r, "", c.Blob.ModTime(), c.Blob)
		err := h.s.RecordDownload(ctx, app, c.RequestID, Download{
			Format: c.Format, Range: r.Header.Get("Range"), Status: cw.statusCode(), Bytes: cw.n,
			Duration: time.Since(start), HTTPID: httpapi.RequestID(ctx),
		})
		if err != nil {
			h.s.log.WarnContext(ctx, "auditing a download failed", "access_request_id", c.RequestID, "error", err.Error())
		}
	}}, nil
}

// countingWriter counts the body bytes and remembers the status.
type countingWriter struct {
	http.ResponseWriter
	n      int64
	status int
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) statusCode() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ---- bank ----

type publishInput struct{ Body NewDataset }

func (h *handlers) publish(ctx context.Context, in *publishInput) (*httpapi.Out[*Dataset], error) {
	return httpapi.Reply(h.s.PublishDataset(ctx, in.Body))
}

func (h *handlers) bankListDatasets(ctx context.Context, in *httpapi.PageQuery) (*httpapi.Out[*page.Page[*Dataset]], error) {
	return httpapi.Reply(h.s.Datasets(ctx, auth.CallerFrom(ctx), in.Limit, in.Cursor))
}

func (h *handlers) bankGetDataset(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*Dataset], error) {
	return httpapi.Reply(h.s.Dataset(ctx, auth.CallerFrom(ctx), in.ID))
}

func (h *handlers) bankListRequests(ctx context.Context, in *listRequestsInput) (*httpapi.Out[*page.Page[*AccessRequest]], error) {
	return httpapi.Reply(h.s.AccessRequests(ctx, auth.CallerFrom(ctx), RequestFilter{Status: in.Status, Limit: in.Limit, Cursor: in.Cursor}))
}

func (h *handlers) bankGetRequest(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*AccessRequest], error) {
	return httpapi.Reply(h.s.AccessRequest(ctx, auth.CallerFrom(ctx), in.ID))
}

type decisionInput struct {
	ID   string    `path:"id" maxLength:"64"`
	Body *Decision // optional: a decision may come without by, reason or expiry
}

func (in *decisionInput) decision() Decision {
	if in.Body == nil {
		return Decision{}
	}
	return *in.Body
}

func (h *handlers) approve(ctx context.Context, in *decisionInput) (*httpapi.Out[*AccessRequest], error) {
	return httpapi.Reply(h.s.Approve(ctx, in.ID, in.decision()))
}

func (h *handlers) reject(ctx context.Context, in *decisionInput) (*httpapi.Out[*AccessRequest], error) {
	return httpapi.Reply(h.s.Reject(ctx, in.ID, in.decision()))
}

func (h *handlers) revoke(ctx context.Context, in *decisionInput) (*httpapi.Out[*AccessRequest], error) {
	return httpapi.Reply(h.s.Revoke(ctx, in.ID, in.decision()))
}

func (h *handlers) retry(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*AccessRequest], error) {
	return httpapi.Reply(h.s.RetryContent(ctx, in.ID))
}

type auditInput struct {
	ID string `path:"id" maxLength:"64"`
	httpapi.PageQuery
}

func (h *handlers) audit(ctx context.Context, in *auditInput) (*httpapi.Out[*page.Page[*AuditEntry]], error) {
	return httpapi.Reply(h.s.Audit(ctx, in.ID, in.Limit, in.Cursor))
}
