package portal

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/identity"
	"github.com/causewayhq/causeway/internal/spi"
)

type registrationForm struct {
	Point, URL, Scope, OnFailure, TimeoutMS string
}

type spiData struct {
	App    *identity.App
	Deny   string
	Points []*spi.Point
	Regs   []*spi.Registration
	Form   registrationForm
	Reg    *spi.Registration
	Secret string
}

func (p *Portal) pointsPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	points, err := p.d.SPI.Points(r.Context())
	if err != nil {
		return err
	}
	v := s.view("SPI catalog", "spi")
	v.D = points
	p.render(w, r, http.StatusOK, "points", v)
	return nil
}

func (p *Portal) spiPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	return p.renderSPI(w, r, s, outcome{http.StatusOK, nil}, spiData{Form: registrationForm{Scope: spi.ScopeApp, OnFailure: spi.OnFailureStandIn}})
}

// renderSPI shows the app's SPI registrations with d's form and, right
// after one was created, d's registration and its secret.
func (p *Portal) renderSPI(w http.ResponseWriter, r *http.Request, s *devSession, o outcome, d spiData) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app, err := p.d.Identity.App(ctx, s.Dev, r.PathValue("id"))
	if err != nil {
		return err
	}
	d.App, d.Deny = app, denied(app, auth.ScopeSPIWrite)
	if d.Points, err = p.d.SPI.Points(ctx); err != nil {
		return err
	}
	regs, err := p.d.SPI.Registrations(ctx, auth.AppCaller(app.ID), spi.RegistrationFilter{Limit: spi.MaxPageSize})
	if err != nil {
		return err
	}
	d.Regs = regs.Data
	v := s.view("SPIs: "+app.Name, "apps")
	v.Error, v.Notice, v.D = o.failed, notice(r), d
	if d.Secret != "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	p.render(w, r, o.status, "spi", v)
	return nil
}

func (p *Portal) createRegistration(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	f := registrationForm{
		Point: r.PostFormValue("extension_point"), URL: strings.TrimSpace(r.PostFormValue("url")),
		Scope: r.PostFormValue("scope"), OnFailure: r.PostFormValue("on_failure"), TimeoutMS: strings.TrimSpace(r.PostFormValue("timeout_ms")),
	}
	app, err := p.appFor(ctx, s, r.PathValue("id"), auth.ScopeSPIWrite)
	if err == nil {
		timeout := 0
		if f.TimeoutMS != "" {
			if timeout, err = strconv.Atoi(f.TimeoutMS); err != nil {
				err = causeway.Errorf(causeway.EINVALID, "invalid_timeout", "the timeout is a whole number of milliseconds")
			}
		}
		if err == nil {
			var reg *spi.Registration
			var secret string
			reg, secret, err = p.d.SPI.CreateRegistration(ctx, auth.AppCaller(app.ID), spi.NewRegistration{
				ExtensionPoint: f.Point, URL: f.URL, Scope: f.Scope, TimeoutMS: timeout, OnFailure: f.OnFailure})
			if err == nil {
				return p.renderSPI(w, r, s, outcome{http.StatusCreated, nil},
					spiData{Form: registrationForm{Scope: spi.ScopeApp, OnFailure: spi.OnFailureStandIn}, Reg: reg, Secret: secret})
			}
		}
	}
	if !isFormError(err) {
		return err
	}
	return p.renderSPI(w, r, s, outcome{httpStatus(err), formError(err)}, spiData{Form: f})
}

func (p *Portal) registrationPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app, err := p.d.Identity.App(ctx, s.Dev, r.PathValue("id"))
	if err != nil {
		return err
	}
	reg, err := p.d.SPI.Registration(ctx, auth.AppCaller(app.ID), r.PathValue("rid"))
	if err != nil {
		return err
	}
	return p.renderRegistration(w, r, s, app, reg, "")
}

// renderRegistration shows a registration and its invocation log, with a
// new secret when one was just made (shown this once).
func (p *Portal) renderRegistration(w http.ResponseWriter, r *http.Request, s *devSession, app *identity.App, reg *spi.Registration, secret string) error {
	inv, err := p.d.SPI.Invocations(r.Context(), auth.AppCaller(app.ID), reg.ID, 100, r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	v := s.view("SPI registration "+reg.ID, "apps")
	v.Notice = notice(r)
	v.D = map[string]any{"App": app, "Reg": reg, "Invocations": inv.Data, "Next": inv.NextCursor, "Secret": secret}
	p.render(w, r, http.StatusOK, "registration", v)
	return nil
}

// rotateRegistrationSecret gives the registration a new signing secret; the
// previous one signs too for a day.
func (p *Portal) rotateRegistrationSecret(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app, err := p.appFor(ctx, s, r.PathValue("id"), auth.ScopeSPIWrite)
	if err != nil {
		return err
	}
	reg, secret, err := p.d.SPI.RotateSecret(ctx, auth.AppCaller(app.ID), r.PathValue("rid"))
	if err != nil {
		return err
	}
	return p.renderRegistration(w, r, s, app, reg, secret)
}

func (p *Portal) deleteRegistration(w http.ResponseWriter, r *http.Request, s *devSession) error {
	ctx, cancel := bounded(r)
	defer cancel()
	app, err := p.appFor(ctx, s, r.PathValue("id"), auth.ScopeSPIWrite)
	if err != nil {
		return err
	}
	if err := p.d.SPI.DeleteRegistration(ctx, auth.AppCaller(app.ID), r.PathValue("rid")); err != nil {
		return err
	}
	redirect(w, r, "/apps/"+app.ID+"/spi?done=spi-deleted")
	return nil
}
