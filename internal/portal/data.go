package portal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/identity"
)

func (p *Portal) datasetsPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	sets, err := p.d.Datashare.Datasets(r.Context(), s.Caller(), datashare.MaxPageSize, "")
	if err != nil {
		return err
	}
	v := s.view("Datasets", "data")
	v.D = sets.Data
	p.render(w, r, http.StatusOK, "datasets", v)
	return nil
}

type accessForm struct {
	App, Purpose, Days, Recipient, Format string
}

type datasetData struct {
	Dataset *datashare.Dataset
	// Apps are the developer's apps that may ask for data.
	Apps     []*identity.App
	Form     accessForm
	Requests []requestRow
	Server   string
}

// requestRow is an access request with the app it was made for.
type requestRow struct {
	App *identity.App
	Req *datashare.AccessRequest
}

func (p *Portal) datasetPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	return p.renderDataset(w, r, s, outcome{http.StatusOK, nil}, accessForm{Days: "30", Format: datashare.FormatCSV})
}

func (p *Portal) renderDataset(w http.ResponseWriter, r *http.Request, s *devSession, o outcome, f accessForm) error {
	ctx, cancel := bounded(r)
	defer cancel()
	ds, err := p.d.Datashare.Dataset(ctx, s.Caller(), r.PathValue("id"))
	if err != nil {
		return err
	}
	d := datasetData{Dataset: ds, Form: f, Server: p.baseURL()}
	rows, err := p.requests(r, s)
	if err != nil {
		return err
	}
	for _, row := range rows {
		if row.Req.DatasetID == ds.ID {
			d.Requests = append(d.Requests, row)
		}
	}
	apps, err := p.d.Identity.Apps(ctx, s.Dev, identity.MaxPageSize, "")
	if err != nil {
		return err
	}
	for _, a := range apps.Data {
		if denied(a, auth.ScopeDataRead) == "" {
			d.Apps = append(d.Apps, a)
		}
	}
	v := s.view(ds.Name, "data")
	v.Error, v.Notice, v.D = o.failed, notice(r), d
	p.render(w, r, o.status, "dataset", v)
	return nil
}

func (p *Portal) requestAccess(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	f := accessForm{
		App: r.PostFormValue("app"), Purpose: r.PostFormValue("purpose"), Days: strings.TrimSpace(r.PostFormValue("duration_days")),
		Recipient: strings.TrimSpace(r.PostFormValue("recipient")), Format: r.PostFormValue("format"),
	}
	app, err := p.appFor(ctx, s, f.App, auth.ScopeDataRead)
	if causeway.ErrorKind(err) == causeway.ENOTFOUND {
		err = causeway.Errorf(causeway.EINVALID, "invalid_app", "pick one of your apps with the data:read scope")
	}
	if err == nil {
		days, aerr := strconv.Atoi(f.Days)
		if aerr != nil {
			days = 0 // the service explains the allowed range
		}
		var req *datashare.AccessRequest
		req, err = p.d.Datashare.RequestAccess(ctx, auth.AppCaller(app.ID), datashare.NewAccessRequest{
			DatasetID: r.PathValue("id"), Purpose: f.Purpose, DurationDays: days, Recipient: f.Recipient, Format: f.Format})
		if err == nil {
			redirect(w, r, "/apps/"+app.ID+"/data-requests/"+req.ID+"?done=requested")
			return nil
		}
	}
	if !isFormError(err) {
		return err
	}
	return p.renderDataset(w, r, s, outcome{httpStatus(err), formError(err)}, f)
}

// requests lists the access requests of all the developer's apps.
func (p *Portal) requests(r *http.Request, s *devSession) ([]requestRow, error) {
	apps, err := p.d.Identity.Apps(r.Context(), s.Dev, identity.MaxPageSize, "")
	if err != nil {
		return nil, err
	}
	var out []requestRow
	for _, a := range apps.Data {
		page, err := p.d.Datashare.AccessRequests(r.Context(), auth.AppCaller(a.ID), datashare.RequestFilter{Limit: datashare.MaxPageSize})
		if err != nil {
			return nil, err
		}
		for _, req := range page.Data {
			out = append(out, requestRow{App: a, Req: req})
		}
	}
	return out, nil
}

func (p *Portal) dataRequestsPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	rows, err := p.requests(r, s)
	if err != nil {
		return err
	}
	v := s.view("Data requests", "data")
	v.D = rows
	p.render(w, r, http.StatusOK, "data_requests", v)
	return nil
}

func (p *Portal) dataRequestPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app, err := p.d.Identity.App(ctx, s.Dev, r.PathValue("id"))
	if err != nil {
		return err
	}
	req, err := p.d.Datashare.AccessRequest(ctx, auth.AppCaller(app.ID), r.PathValue("rid"))
	if err != nil {
		return err
	}
	v := s.view("Data request "+req.ID, "data")
	v.Notice = notice(r)
	v.D = map[string]any{"App": app, "Req": req, "Server": p.baseURL()}
	p.render(w, r, http.StatusOK, "data_request", v)
	return nil
}

// cell shows one sample value.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}

// prettyJSON indents a JSON document for a <pre>.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(raw)
	}
	return string(b)
}
