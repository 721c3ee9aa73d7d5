package portal

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/spi"
)

// decidedBy names the console in the audit trail of the bank's decisions.
const decidedBy = "bank console"

func (p *Portal) consoleHome(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	apps, err := p.d.Identity.ListApps(ctx, auth.AppPendingApproval, identity.MaxPageSize, "")
	if err != nil {
		return err
	}
	reqs, err := p.d.Datashare.AccessRequests(ctx, s.Caller(), datashare.RequestFilter{Status: datashare.StatusAwaitingApproval, Limit: datashare.MaxPageSize})
	if err != nil {
		return err
	}
	regs, err := p.d.SPI.Registrations(ctx, s.Caller(), spi.RegistrationFilter{Status: spi.StatusPendingActivation, Limit: spi.MaxPageSize})
	if err != nil {
		return err
	}
	all, err := p.d.Identity.ListApps(ctx, "", identity.MaxPageSize, "")
	if err != nil {
		return err
	}
	v := s.view("Overview", "console")
	v.Notice = notice(r)
	v.D = map[string]any{
		"PendingApps": apps.Data, "PendingRequests": reqs.Data, "PendingSPI": regs.Data,
		"Apps": len(all.Data), "MoreApps": all.NextCursor != "", "Mode": p.d.Identity.Mode(),
	}
	p.render(w, r, http.StatusOK, "console_home", v)
	return nil
}

var appStatuses = []string{auth.AppPendingApproval, auth.AppActive, auth.AppSuspended}

func (p *Portal) consoleApps(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	q := r.URL.Query()
	page, err := p.d.Identity.ListApps(ctx, q.Get("status"), identity.MaxPageSize, q.Get("cursor"))
	if err != nil {
		return err
	}
	v := s.view("Apps", "console-apps")
	v.Notice = notice(r)
	v.D = map[string]any{"Apps": page.Data, "Next": page.NextCursor, "Status": q.Get("status"), "Statuses": appStatuses}
	p.render(w, r, http.StatusOK, "console_apps", v)
	return nil
}

type limitsForm struct {
	RPS, Burst, Quota string
}

func (p *Portal) consoleApp(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	return p.renderConsoleApp(w, r, s, outcome{http.StatusOK, nil}, nil)
}

func (p *Portal) renderConsoleApp(w http.ResponseWriter, r *http.Request, s *consoleSession, o outcome, f *limitsForm) error {
	ctx, cancel := bounded(r)
	defer cancel()
	id := r.PathValue("id")
	limits, custom, err := p.d.Gateway.AppLimits(ctx, id)
	if err != nil {
		return err
	}
	app, err := p.findApp(r, id)
	if err != nil {
		return err
	}
	if f == nil {
		f = &limitsForm{
			RPS:   strconv.FormatFloat(limits.RequestsPerSecond, 'f', -1, 64),
			Burst: strconv.Itoa(limits.Burst), Quota: strconv.FormatInt(limits.DailyQuota, 10),
		}
	}
	a, err := p.analytics(ctx, id, r.URL.Query().Get("range"))
	if err != nil {
		return err
	}
	a.App = app
	a.Base = "/console/apps/" + id
	v := s.view(app.Name, "console-apps")
	v.Error, v.Notice = o.failed, notice(r)
	v.D = map[string]any{"App": app, "Limits": limits, "Custom": custom, "Form": f, "Analytics": a}
	p.render(w, r, o.status, "console_app", v)
	return nil
}

// findApp finds one app in the bank's list of every app.
func (p *Portal) findApp(r *http.Request, id string) (*identity.App, error) {
	cursor := ""
	for {
		page, err := p.d.Identity.ListApps(r.Context(), "", identity.MaxPageSize, cursor)
		if err != nil {
			return nil, err
		}
		for _, a := range page.Data {
			if a.ID == id {
				return a, nil
			}
		}
		if page.NextCursor == "" {
			return nil, errNotFound()
		}
		cursor = page.NextCursor
	}
}

// back returns to the page the console form was on.
func back(w http.ResponseWriter, r *http.Request, fallback, done string) {
	next := r.PostFormValue("next")
	if !strings.HasPrefix(next, "/console") {
		next = fallback
	}
	next = safeNext(next)
	sep := "?"
	if strings.Contains(next, "?") {
		sep = "&"
	}
	redirect(w, r, next+sep+"done="+done)
}

// consoleApprove approves an app. When another operator decided first
// (the app is already active), the app's page says so with a 409.
func (p *Portal) consoleApprove(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	if _, err := p.d.Identity.Approve(r.Context(), r.PathValue("id")); err != nil {
		if !isFormError(err) {
			return err
		}
		return p.renderConsoleApp(w, r, s, outcome{httpStatus(err), formError(err)}, nil)
	}
	back(w, r, "/console/apps", "approved")
	return nil
}

// consoleSuspend suspends an app; like consoleApprove, a decision another
// operator made first is shown on the app's page with a 409.
func (p *Portal) consoleSuspend(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	if _, err := p.d.Identity.Suspend(r.Context(), r.PathValue("id")); err != nil {
		if !isFormError(err) {
			return err
		}
		return p.renderConsoleApp(w, r, s, outcome{httpStatus(err), formError(err)}, nil)
	}
	back(w, r, "/console/apps", "suspended")
	return nil
}

func (p *Portal) consoleLimits(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	f := &limitsForm{
		RPS: strings.TrimSpace(r.PostFormValue("requests_per_second")), Burst: strings.TrimSpace(r.PostFormValue("burst")),
		Quota: strings.TrimSpace(r.PostFormValue("daily_quota")),
	}
	var l gateway.Limits
	var err error
	if l.RequestsPerSecond, err = strconv.ParseFloat(f.RPS, 64); err != nil {
		err = causeway.Errorf(causeway.EINVALID, "invalid_limits", "requests per second is a number, such as 50 or 0.5")
	} else if l.Burst, err = strconv.Atoi(f.Burst); err != nil {
		err = causeway.Errorf(causeway.EINVALID, "invalid_limits", "burst is a whole number")
	} else if l.DailyQuota, err = strconv.ParseInt(f.Quota, 10, 64); err != nil {
		err = causeway.Errorf(causeway.EINVALID, "invalid_limits", "the daily quota is a whole number")
	} else {
		id := r.PathValue("id")
		held, herr := p.proposed(w, r, s, "bank-put-app-limits", http.MethodPut, "/bank/v1/apps/"+url.PathEscape(id)+"/limits", id,
			map[string]any{"requests_per_second": l.RequestsPerSecond, "burst": l.Burst, "daily_quota": l.DailyQuota})
		if held || herr != nil {
			return herr
		}
		_, err = p.d.Gateway.SetLimits(r.Context(), id, l)
	}
	if err != nil {
		if !isFormError(err) {
			return err
		}
		return p.renderConsoleApp(w, r, s, outcome{httpStatus(err), formError(err)}, f)
	}
	redirect(w, r, "/console/apps/"+r.PathValue("id")+"?done=limits")
	return nil
}

var requestStatuses = []string{datashare.StatusAwaitingApproval, datashare.StatusApproved, datashare.StatusRejected,
	datashare.StatusRevoked, datashare.StatusExpired}

func (p *Portal) consoleDataRequests(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	return p.renderDataRequests(w, r, s, outcome{http.StatusOK, nil})
}

func (p *Portal) renderDataRequests(w http.ResponseWriter, r *http.Request, s *consoleSession, o outcome) error {
	ctx, cancel := bounded(r)
	defer cancel()
	q := r.URL.Query()
	st := q.Get("status")
	if !q.Has("status") {
		st = datashare.StatusAwaitingApproval
	}
	page, err := p.d.Datashare.AccessRequests(ctx, s.Caller(), datashare.RequestFilter{Status: st, Limit: 100, Cursor: q.Get("cursor")})
	if err != nil {
		return err
	}
	v := s.view("Data-access requests", "console-data")
	v.Error, v.Notice = o.failed, notice(r)
	v.D = map[string]any{"Requests": page.Data, "Next": page.NextCursor, "Status": st, "Statuses": requestStatuses,
		"Self": r.URL.RequestURI()}
	p.render(w, r, o.status, "console_data", v)
	return nil
}

// consoleDecide approves, rejects or revokes a data-access request, with
// the reason the officer typed.
func (p *Portal) consoleDecide(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	d := datashare.Decision{By: decidedBy, Reason: r.PostFormValue("reason")}
	var err error
	id := r.PathValue("id")
	done := ""
	switch r.PathValue("action") {
	case "approve":
		held, herr := p.proposed(w, r, s, "bank-approve-dataset-access-request", http.MethodPost,
			"/bank/v1/dataset-access-requests/"+url.PathEscape(id)+"/approve", id, map[string]any{"reason": d.Reason})
		if held || herr != nil {
			return herr
		}
		_, err = p.d.Datashare.Approve(r.Context(), id, d)
		done = "approved"
	case "reject":
		_, err = p.d.Datashare.Reject(r.Context(), id, d)
		done = "rejected"
	case "revoke":
		_, err = p.d.Datashare.Revoke(r.Context(), id, d)
		done = "revoked"
	default:
		return errNotFound()
	}
	if err != nil {
		if !isFormError(err) {
			return err
		}
		return p.renderDataRequests(w, r, s, outcome{httpStatus(err), formError(err)})
	}
	back(w, r, "/console/data-requests", done)
	return nil
}

var spiStatuses = []string{spi.StatusPendingActivation, spi.StatusActive, spi.StatusInactive}

func (p *Portal) consoleSPI(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	return p.renderConsoleSPI(w, r, s, outcome{http.StatusOK, nil})
}

func (p *Portal) renderConsoleSPI(w http.ResponseWriter, r *http.Request, s *consoleSession, o outcome) error {
	ctx, cancel := bounded(r)
	defer cancel()
	q := r.URL.Query()
	page, err := p.d.SPI.Registrations(ctx, s.Caller(), spi.RegistrationFilter{Status: q.Get("status"), Limit: 100, Cursor: q.Get("cursor")})
	if err != nil {
		return err
	}
	points, err := p.d.SPI.Points(ctx)
	if err != nil {
		return err
	}
	maxTimeout := map[string]int{}
	for _, pt := range points {
		maxTimeout[pt.Name] = pt.MaxTimeoutMS
	}
	v := s.view("SPI registrations", "console-spi")
	v.Error, v.Notice = o.failed, notice(r)
	v.D = map[string]any{"Regs": page.Data, "Next": page.NextCursor, "Status": q.Get("status"), "Statuses": spiStatuses,
		"MaxTimeout": maxTimeout, "MinPriority": spi.MinPriority, "MaxPriority": spi.MaxPriority,
		"Policies": []string{spi.OnFailureReject, spi.OnFailureStandIn, spi.OnFailureNext}, "Self": r.URL.RequestURI()}
	p.render(w, r, o.status, "console_spi", v)
	return nil
}

// consoleActivate activates a registration with the settings of the form.
func (p *Portal) consoleActivate(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	return p.consoleSPIChange(w, r, s, "activated", p.d.SPI.Activate)
}

// consoleConfigure changes an active registration's settings.
func (p *Portal) consoleConfigure(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	return p.consoleSPIChange(w, r, s, "spi-updated", p.d.SPI.Configure)
}

// consoleSPIChange reads the settings form and applies them with change;
// a bad value or a conflict (another operator came first) is shown on the
// list.
func (p *Portal) consoleSPIChange(w http.ResponseWriter, r *http.Request, s *consoleSession, done string,
	change func(ctx context.Context, caller auth.Caller, id string, a spi.Activation) (*spi.Registration, error)) error {
	var a spi.Activation
	var err error
	if t := strings.TrimSpace(r.PostFormValue("timeout_ms")); t != "" {
		if a.TimeoutMS, err = strconv.Atoi(t); err != nil || a.TimeoutMS == 0 {
			err = causeway.Errorf(causeway.EINVALID, "invalid_timeout", "the timeout is a positive whole number of milliseconds")
		}
	}
	if err == nil {
		if pr := strings.TrimSpace(r.PostFormValue("priority")); pr != "" {
			n, perr := strconv.Atoi(pr)
			if perr != nil {
				err = causeway.Errorf(causeway.EINVALID, "invalid_priority", "the priority is a whole number")
			}
			a.Priority = &n
		}
	}
	a.OnFailure = r.PostFormValue("on_failure")
	if err == nil && done == "activated" {
		id := r.PathValue("id")
		body := map[string]any{}
		if a.TimeoutMS != 0 {
			body["timeout_ms"] = a.TimeoutMS
		}
		if a.OnFailure != "" {
			body["on_failure"] = a.OnFailure
		}
		if a.Priority != nil {
			body["priority"] = *a.Priority
		}
		held, herr := p.proposed(w, r, s, "bank-activate-spi-registration", http.MethodPost, "/bank/v1/spi-registrations/"+url.PathEscape(id)+"/activate",
			id, body)
		if held || herr != nil {
			return herr
		}
	}
	if err == nil {
		_, err = change(r.Context(), s.Caller(), r.PathValue("id"), a)
	}
	if err != nil {
		if !isFormError(err) {
			return err
		}
		return p.renderConsoleSPI(w, r, s, outcome{httpStatus(err), formError(err)})
	}
	back(w, r, "/console/spi", done)
	return nil
}

func (p *Portal) consoleDeactivate(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	if _, err := p.d.SPI.Deactivate(r.Context(), s.Caller(), r.PathValue("id")); err != nil {
		if !isFormError(err) {
			return err
		}
		return p.renderConsoleSPI(w, r, s, outcome{httpStatus(err), formError(err)})
	}
	back(w, r, "/console/spi", "deactivated")
	return nil
}
