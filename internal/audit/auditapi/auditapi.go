// Package auditapi serves the bank's audit trail under /bank/v1/audit: the
// list with its filters, the JSON Lines export and the check of the hash
// chain. There is no route that changes an entry.
package auditapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi"
)

// ContentType is the export's media type: JSON Lines, one entry a line.
const ContentType = "application/jsonl"

// Register adds the audit routes to the bank API; log hears of exports cut
// short.
func Register(srv *httpapi.Server, t *audit.Trail, log *slog.Logger) {
	h := &handlers{t: t, log: log}
	tags := []string{"Audit"}
	huma.Register(srv.Bank, httpapi.Route{ID: "bank-list-audit", Method: http.MethodGet, Path: "/audit", Tags: tags,
		Summary: "The audit trail, newest first",
		Description: "Every bank-side change, newest first: who made it (actor), what (action) to which target, a summary of " +
			"before and after, the four-eyes proposal it opened or confirmed, and the request id and client address " +
			"it came with. The filters narrow it: operator, target_type, target_id, action (exact, or a prefix such " +
			"as dataset_access.*), from and to (RFC 3339; from inclusive, to exclusive)."}.Bank(), h.list)

	export := httpapi.Route{ID: "bank-export-audit", Method: http.MethodGet, Path: "/audit/export", Tags: tags,
		Summary: "Export the audit trail as JSON Lines",
		Description: "The entries matching the same filters as the list, oldest first (the chain's order), one JSON object a " +
			"line, streamed: at most limit entries (default 10000, at most 100000) with seq greater than after. A " +
			"file with limit lines may have more after it: ask again with after set to its last seq. Each line " +
			"carries every field the entry's hash covers, so the chain can be checked again from the file."}.Bank()
	export.Responses = map[string]*huma.Response{
		"200": {Description: "One entry (as in the list) per line", Content: map[string]*huma.MediaType{
			ContentType: {Schema: &huma.Schema{Type: "string", Description: "JSON Lines: one audit entry per line"}}}},
	}
	huma.Register(srv.Bank, export, h.export)

	huma.Register(srv.Bank, httpapi.Route{ID: "bank-verify-audit", Method: http.MethodGet, Path: "/audit/verify", Tags: tags,
		Summary: "Check the audit trail's hash chain",
		Description: "Walks the chain from its first entry to its head and answers ok, or the seq of the first entry that does " +
			"not verify (broken_at) and why: an entry edited, deleted or re-ordered in the database since it was " +
			"written. head is the last entry's hash; kept outside the platform, it lets a later check prove that " +
			"the trail up to it was not rewritten as a whole. It reads the whole trail: run it from time to time, " +
			"not on every page view."}.Bank(), h.verify)
}

type handlers struct {
	t   *audit.Trail
	log *slog.Logger
}

// FilterQuery is the query of the list and the export (exported: huma
// skips embedded structs of unexported types).
type FilterQuery struct {
	Operator   string `query:"operator" maxLength:"200" doc:"An operator's id (admin-token for the admin token's holder): the entries whose actor is operator:<id>"`
	TargetType string `query:"target_type" maxLength:"64" doc:"A target type, such as app, payment or spi_registration"`
	TargetID   string `query:"target_id" maxLength:"200" doc:"A target's id"`
	Action     string `query:"action" maxLength:"100" doc:"An action (app.approve), or a prefix of actions ending in .* (dataset_access.*)"`
	From       string `query:"from" maxLength:"64" doc:"Earliest time, inclusive (RFC 3339)"`
	To         string `query:"to" maxLength:"64" doc:"Latest time, exclusive (RFC 3339)"`
}

func (in *FilterQuery) filter() (audit.Filter, error) {
	return audit.ParseFilter(in.Operator, in.TargetType, in.TargetID, in.Action, in.From, in.To)
}

type listInput struct {
	FilterQuery
	httpapi.PageQuery
}

func (h *handlers) list(ctx context.Context, in *listInput) (*httpapi.Out[*audit.EntryPage], error) {
	f, err := in.filter()
	if err != nil {
		return nil, err
	}
	pg, err := h.t.List(ctx, auth.CallerFrom(ctx), f, in.Limit, in.Cursor)
	if err != nil {
		return nil, err
	}
	return &httpapi.Out[*audit.EntryPage]{Body: pg}, nil
}

type exportInput struct {
	FilterQuery
	After int64 `query:"after" minimum:"0" doc:"Only entries with a greater seq: the last seq of the previous export"`
	Limit int   `query:"limit" minimum:"0" maximum:"100000" doc:"At most this many entries, default 10000"`
}

func (h *handlers) export(ctx context.Context, in *exportInput) (*huma.StreamResponse, error) {
	f, err := in.filter()
	if err != nil {
		return nil, err
	}
	caller := auth.CallerFrom(ctx)
	// Refusals are problems; once the stream has begun, a failure can only
	// cut it short.
	if err := h.t.CheckExport(caller, in.After, in.Limit); err != nil {
		return nil, err
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		r, w := humago.Unwrap(hctx)
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w) // one line per entry: Encode ends each with \n
		err := h.t.Export(r.Context(), caller, f, in.After, in.Limit, func(e *audit.Entry) error { return enc.Encode(e) })
		if err != nil {
			h.log.WarnContext(ctx, "audit export ended early", "error", err.Error())
		}
	}}, nil
}

func (h *handlers) verify(ctx context.Context, _ *struct{}) (*httpapi.Out[*audit.Verdict], error) {
	v, err := h.t.Verify(ctx, auth.CallerFrom(ctx))
	if err != nil {
		return nil, err
	}
	return &httpapi.Out[*audit.Verdict]{Body: v}, nil
}
