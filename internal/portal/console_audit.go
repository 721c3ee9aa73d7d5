package portal

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"

	"github.com/causewayhq/causeway/internal/audit"
)

// The console's audit page: the trail with the API's filters, the chain's
// check, and the JSON Lines export of what the filters select.

// auditFilter reads the page's filter form, the same parameters as GET
// /bank/v1/audit.
func auditFilter(r *http.Request) (audit.Filter, error) {
	q := r.URL.Query()
	return audit.ParseFilter(q.Get("operator"), q.Get("target_type"), q.Get("target_id"), q.Get("action"), q.Get("from"), q.Get("to"))
}

func (p *Portal) consoleAudit(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	v := s.view("Audit trail", "console-audit")
	q := r.URL.Query()
	d := map[string]any{"Q": map[string]string{"operator": q.Get("operator"), "target_type": q.Get("target_type"),
		"target_id": q.Get("target_id"), "action": q.Get("action"), "from": q.Get("from"), "to": q.Get("to")},
		// Built from url.Values.Encode, so safe as URLs as they are.
		"ExportURL": template.URL("/console/audit/export?" + filterQuery(q))}
	status := http.StatusOK
	f, err := auditFilter(r)
	if err == nil {
		var pg *audit.EntryPage
		if pg, err = p.d.Audit.List(ctx, s.Caller(), f, 50, q.Get("cursor")); err == nil {
			d["Entries"] = pg.Data
			if pg.NextCursor != "" {
				d["OlderURL"] = template.URL("/console/audit?" + filterQuery(q) + "&cursor=" + url.QueryEscape(pg.NextCursor))
			}
		}
	}
	if err != nil {
		if !isFormError(err) {
			return err
		}
		v.Error, status = formError(err), httpStatus(err)
	}
	if q.Get("verify") != "" {
		verdict, err := p.d.Audit.Verify(ctx, s.Caller())
		if err != nil {
			return err
		}
		d["Verdict"] = verdict
	}
	v.D = d
	p.render(w, r, status, "console_audit", v)
	return nil
}

// consoleAuditExport answers the entries the filters select as JSON
// Lines, oldest first, like GET /bank/v1/audit/export.
func (p *Portal) consoleAuditExport(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/jsonl")
	w.Header().Set("Content-Disposition", `attachment; filename="audit.jsonl"`)
	enc := json.NewEncoder(w)
	return p.d.Audit.Export(r.Context(), s.Caller(), f, 0, audit.DefaultExport, func(e *audit.Entry) error { return enc.Encode(e) })
}

// filterQuery is the page's query without its cursor and check, for the
// links that keep the filters.
func filterQuery(q url.Values) string {
	keep := url.Values{}
	for _, name := range []string{"operator", "target_type", "target_id", "action", "from", "to"} {
		if v := q.Get(name); v != "" {
			keep.Set(name, v)
		}
	}
	return keep.Encode()
}
