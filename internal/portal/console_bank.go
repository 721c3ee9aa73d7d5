package portal

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/webhooks"
)

// grantForm is the console's grant form as it was filled in.
type grantForm struct{ AppID, CustomerID string }

func (p *Portal) consoleGrants(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	return p.renderGrants(w, r, s, outcome{http.StatusOK, nil}, &grantForm{AppID: r.URL.Query().Get("app_id")})
}

func (p *Portal) renderGrants(w http.ResponseWriter, r *http.Request, s *consoleSession, o outcome, f *grantForm) error {
	ctx, cancel := bounded(r)
	defer cancel()
	q := r.URL.Query()
	grants, err := p.d.Bank.Grants(ctx, s.Caller(), q.Get("app_id"), 100, q.Get("cursor"))
	if err != nil {
		return err
	}
	apps, err := p.d.Identity.ListApps(ctx, auth.AppActive, identity.MaxPageSize, "")
	if err != nil {
		return err
	}
	// The first customers, to pick from; any other id can be typed.
	customers, err := p.d.Bank.Customers(ctx, s.Caller(), 200, "")
	if err != nil {
		return err
	}
	v := s.view("Customer grants", "console-grants")
	v.Error, v.Notice = o.failed, notice(r)
	v.D = map[string]any{"Grants": grants.Data, "Next": grants.NextCursor, "AppID": q.Get("app_id"),
		"Apps": apps.Data, "Customers": customers.Data, "Form": f, "Self": r.URL.RequestURI()}
	p.render(w, r, o.status, "console_grants", v)
	return nil
}

// consoleGrant lets an app see a customer it did not create.
func (p *Portal) consoleGrant(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	f := &grantForm{AppID: strings.TrimSpace(r.PostFormValue("app_id")), CustomerID: strings.TrimSpace(r.PostFormValue("customer_id"))}
	if held, err := p.proposed(w, r, s, "bank-create-grant", http.MethodPost, "/bank/v1/grants", "",
		map[string]any{"app_id": f.AppID, "customer_id": f.CustomerID}); held || err != nil {
		return err
	}
	err := p.d.Bank.GrantCustomer(r.Context(), s.Caller(), f.AppID, f.CustomerID)
	if causeway.ErrorKind(err) == causeway.ENOTFOUND {
		// The form's own field, not the page, was not found.
		err = causeway.Errorf(causeway.EINVALID, "customer_not_found", "there is no customer %s", f.CustomerID)
	}
	if err != nil {
		if !isFormError(err) {
			return err
		}
		return p.renderGrants(w, r, s, outcome{httpStatus(err), formError(err)}, f)
	}
	back(w, r, "/console/grants", "granted")
	return nil
}

func (p *Portal) consoleRevokeGrant(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	if err := p.d.Bank.RevokeCustomer(r.Context(), s.Caller(), r.PathValue("app"), r.PathValue("customer")); err != nil {
		return err
	}
	back(w, r, "/console/grants", "grant-revoked")
	return nil
}

// datasetForm is the console's publishing form as it was filled in.
type datasetForm struct {
	Name, Description, Kind, Generator, Path, Columns, Sample, Licence, Version, RowCount string
	Formats                                                                               []string
}

func (p *Portal) consoleDatasets(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	return p.renderDatasets(w, r, s, outcome{http.StatusOK, nil}, &datasetForm{Kind: datashare.SourceGenerator, Formats: []string{"csv", "jsonl"}})
}

func (p *Portal) renderDatasets(w http.ResponseWriter, r *http.Request, s *consoleSession, o outcome, f *datasetForm) error {
	ctx, cancel := bounded(r)
	defer cancel()
	page, err := p.d.Datashare.Datasets(ctx, s.Caller(), datashare.MaxPageSize, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	gens := datashare.GeneratorNames()
	slices.Sort(gens)
	v := s.view("Datasets", "console-datasets")
	v.Error, v.Notice = o.failed, notice(r)
	v.D = map[string]any{"Datasets": page.Data, "Next": page.NextCursor, "Form": f, "Generators": gens,
		"Types": []string{"string", "integer", "number", "boolean", "date", "datetime"}}
	p.render(w, r, o.status, "console_datasets", v)
	return nil
}

// consolePublish adds a dataset to the catalog. Columns are one per line,
// "name type description"; sample rows are JSON Lines.
func (p *Portal) consolePublish(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	r.ParseForm()
	f := &datasetForm{
		Name: strings.TrimSpace(r.PostFormValue("name")), Description: strings.TrimSpace(r.PostFormValue("description")),
		Kind: r.PostFormValue("kind"), Generator: r.PostFormValue("generator"), Path: strings.TrimSpace(r.PostFormValue("path")),
		Columns: r.PostFormValue("columns"), Sample: r.PostFormValue("sample"), Licence: strings.TrimSpace(r.PostFormValue("licence")),
		Version: strings.TrimSpace(r.PostFormValue("version")), RowCount: strings.TrimSpace(r.PostFormValue("row_count")),
		Formats: r.PostForm["formats"],
	}
	n, err := f.dataset()
	if err == nil {
		_, err = p.d.Datashare.PublishDataset(r.Context(), n)
	}
	if err != nil {
		if !isFormError(err) {
			return err
		}
		return p.renderDatasets(w, r, s, outcome{httpStatus(err), formError(err)}, f)
	}
	redirect(w, r, "/console/datasets?done=published")
	return nil
}

// dataset turns the form into what PublishDataset takes; it only parses,
// the rules are PublishDataset's.
func (f *datasetForm) dataset() (datashare.NewDataset, error) {
	n := datashare.NewDataset{Name: f.Name, Description: f.Description, Licence: f.Licence, Version: f.Version, Formats: f.Formats,
		Source: datashare.Source{Kind: f.Kind}}
	switch f.Kind {
	case datashare.SourceGenerator:
		n.Source.Generator = f.Generator
	case datashare.SourceFile:
		n.Source.Path = f.Path
	}
	if f.RowCount != "" {
		rows, err := strconv.ParseInt(f.RowCount, 10, 64)
		if err != nil || rows < 0 {
			return n, causeway.Errorf(causeway.EINVALID, "invalid_row_count", "the row count is a whole number, or empty")
		}
		n.RowCount = rows
	}
	for i, line := range strings.Split(f.Columns, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 2 {
			return n, causeway.Errorf(causeway.EINVALID, "invalid_columns", "column line %d needs a name and a type, such as: amount number Amount in EUR", i+1)
		}
		n.Columns = append(n.Columns, datashare.Column{Name: fields[0], Type: fields[1], Description: strings.Join(fields[2:], " ")})
	}
	for i, line := range strings.Split(f.Sample, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			return n, causeway.Errorf(causeway.EINVALID, "invalid_sample", "sample line %d is not a JSON object", i+1)
		}
		n.Sample = append(n.Sample, row)
	}
	return n, nil
}

// subscriptionHealth is one webhook subscription on the health page.
type subscriptionHealth struct {
	*webhooks.Subscription
	webhooks.Queue
	Dead int64
}

// breakerRow is one active SPI registration and this node's breaker.
type breakerRow struct {
	Reg   *spi.Registration
	State string
}

// streamHealth is the health page's row of event streams (GET
// /v1/events/stream). A stream lasts as long as its client stays, so it is
// apart from the request latency: how many are open, and for how long.
type streamHealth struct {
	Open     int // on every node; -1 when the count could not be read
	OpenHere int // on the node that serves the page
	Longest  time.Duration
	Ended    int64 // in the page's range, on every node
	Mean     time.Duration
}

// eventStreamRoute is the route of the event stream.
const eventStreamRoute = "GET /v1/events/stream"

// streamHealth counts the open event streams and those that ended in
// traffic's range.
func (p *Portal) streamHealth(ctx context.Context, traffic *analyticsData) streamHealth {
	h := streamHealth{Open: -1, Ended: traffic.Totals.Streams}
	if p.d.StreamSlots != nil {
		if n, err := p.d.StreamSlots.Open(ctx); err == nil {
			h.Open = n
		}
	}
	now := time.Now()
	for _, s := range p.srv.OpenStreams() {
		if s.Route == eventStreamRoute {
			h.OpenHere++
			h.Longest = max(h.Longest, now.Sub(s.Since))
		}
	}
	if h.Ended > 0 {
		h.Mean = time.Duration(traffic.Totals.StreamSeconds / float64(h.Ended) * float64(time.Second))
	}
	return h
}

// deadWindow is how far back the health page counts dead letters.
const deadWindow = 24 * time.Hour

// consoleHealth shows the platform's health: request rates, the open event
// streams, the event backlog and dead letters of each webhook
// subscription, and the state of this node's SPI circuit breakers.
func (p *Portal) consoleHealth(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	traffic, err := p.analytics(ctx, "", r.URL.Query().Get("range"))
	if err != nil {
		return err
	}
	traffic.Base = "/console/health"
	subs, more, err := p.d.Webhooks.List(ctx, s.Caller(), "", 200, "")
	if err != nil {
		return err
	}
	dead, err := p.d.Webhooks.DeadLetters(ctx, time.Now().Add(-deadWindow))
	if err != nil {
		return err
	}
	queues := p.d.Webhooks.Queues(ctx, subs)
	rows := make([]subscriptionHealth, len(subs))
	var labels []string
	var backlog, retrying, deadCounts []float64
	unknown := 0
	for i, sub := range subs {
		q := queues[i]
		rows[i] = subscriptionHealth{Subscription: sub, Queue: q, Dead: dead[sub.ID]}
		if !q.Known {
			unknown++
		}
		labels = append(labels, sub.ID)
		backlog = append(backlog, float64(q.Backlog))
		retrying = append(retrying, float64(q.Retrying))
		deadCounts = append(deadCounts, float64(dead[sub.ID]))
	}
	regs, err := p.d.SPI.Registrations(ctx, s.Caller(), spi.RegistrationFilter{Status: spi.StatusActive, Limit: spi.MaxPageSize})
	if err != nil {
		return err
	}
	states := p.d.SPI.BreakerStates()
	breakers := make([]breakerRow, len(regs.Data))
	count := map[string]float64{}
	for i, reg := range regs.Data {
		st := states[reg.ID]
		if st == "" {
			st = spi.BreakerClosed // not called on this node yet
		}
		breakers[i] = breakerRow{Reg: reg, State: st}
		count[st]++
	}
	stateNames := []string{spi.BreakerClosed, spi.BreakerHalfOpen, spi.BreakerOpen}
	stateCounts := []float64{count[spi.BreakerClosed], count[spi.BreakerHalfOpen], count[spi.BreakerOpen]}
	v := s.view("Platform health", "console-health")
	v.D = map[string]any{
		"Traffic": traffic, "Streams": p.streamHealth(ctx, traffic), "Subs": rows, "MoreSubs": more != "", "Unknown": unknown,
		"BacklogChart":  hbarChart("Events waiting per subscription", labels, [][]float64{backlog, retrying}, []string{"backlog", "retrying"}, "events"),
		"DeadChart":     hbarChart("Dead letters per subscription, last 24 hours", labels, [][]float64{deadCounts}, []string{"dead"}, "events"),
		"Breakers":      breakers,
		"BreakerChart":  hbarChart("SPI circuit breakers on this node", stateNames, [][]float64{stateCounts}, []string{"registrations"}, "registrations"),
		"DeadWindowHrs": int(deadWindow.Hours()),
	}
	p.render(w, r, http.StatusOK, "console_health", v)
	return nil
}
