package portal

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/identity"
)

// The operator's own account page (second factor, password, personal
// tokens) and the admins' operators page.

// accountData is what the account page shows. Enrollment, RecoveryCodes
// and NewToken are set once, on the answer that made them.
type accountData struct {
	Operator      *auth.Operator
	Named         bool
	Enrolled      bool
	Enrollment    *identity.TOTPEnrollment
	RecoveryCodes []string
	NewToken      *identity.OperatorToken
	Tokens        []identity.OperatorToken
	Roles         []auth.Role
}

func (p *Portal) renderAccount(w http.ResponseWriter, r *http.Request, s *consoleSession, o outcome, d accountData) error {
	d.Operator, d.Named, d.Enrolled, d.Roles = s.Operator, s.Named(), s.Enrolled, auth.AllRoles
	if d.Named {
		tokens, err := p.d.Identity.OperatorTokens(r.Context(), s.Operator.ID)
		if err != nil {
			return err
		}
		d.Tokens = tokens
	}
	v := s.view("Your account", "console-account")
	v.Notice, v.Error, v.D = notice(r), o.failed, d
	p.renderNoStore(w, r, o.status, "console_account", v)
	return nil
}

// renderNoStore renders a page that may show a secret once: no cache
// keeps it.
func (p *Portal) renderNoStore(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	w.Header().Set("Cache-Control", "no-store")
	p.render(w, r, status, page, v)
}

func (p *Portal) consoleAccount(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	return p.renderAccount(w, r, s, outcome{http.StatusOK, nil}, accountData{})
}

// named refuses the admin token's holder what only a person has.
func named(s *consoleSession) error {
	if !s.Named() {
		return causeway.Errorf(causeway.EFORBIDDEN, "operator_only", "the admin token has no account of its own; log in as an operator")
	}
	return nil
}

func (p *Portal) consoleBeginTOTP(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	if err := named(s); err != nil {
		return err
	}
	enrollment, err := p.d.Identity.BeginTOTP(r.Context(), s.Operator.ID)
	if isFormError(err) {
		return p.renderAccount(w, r, s, outcome{http.StatusConflict, formError(err)}, accountData{})
	}
	if err != nil {
		return err
	}
	return p.renderAccount(w, r, s, outcome{http.StatusOK, nil}, accountData{Enrollment: &enrollment})
}

// consoleConfirmTOTP enables the second factor and shows the recovery
// codes once. Enabling it ends the operator's sessions everywhere, this
// one too, so it starts a new one in the new generation.
func (p *Portal) consoleConfirmTOTP(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	if err := named(s); err != nil {
		return err
	}
	codes, err := p.d.Identity.ConfirmTOTP(r.Context(), s.Operator.ID, strings.TrimSpace(r.PostFormValue("code")))
	if isFormError(err) {
		return p.renderAccount(w, r, s, outcome{http.StatusUnprocessableEntity, formMessage(
			"That code does not match. Type the current code from the app; check that the phone's clock is right.", "code")}, accountData{})
	}
	if err != nil {
		return err
	}
	op, err := p.d.Identity.Operator(r.Context(), s.Caller(), s.Operator.ID)
	if err != nil {
		return err
	}
	if err := p.sessions.end(r.Context(), s.id); err != nil {
		return err
	}
	if err := p.startConsole(w, r, owner{operatorID: op.ID, generation: op.Generation}); err != nil {
		return err
	}
	s.Enrolled = true
	p.log.InfoContext(r.Context(), "portal: operator enrolled a second factor", "operator_id", op.ID)
	return p.renderAccount(w, r, s, outcome{http.StatusOK, nil}, accountData{RecoveryCodes: codes})
}

// consoleChangePassword sets a new password; every session of the
// operator ends, and they log in again with it.
func (p *Portal) consoleChangePassword(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	if err := named(s); err != nil {
		return err
	}
	err := p.d.Identity.ChangeOperatorPassword(r.Context(), s.Operator.ID, r.PostFormValue("current_password"), r.PostFormValue("password"))
	switch {
	case causeway.ErrorCode(err) == "invalid_credentials":
		return p.renderAccount(w, r, s, outcome{http.StatusUnprocessableEntity, formMessage("The current password is wrong.", "current_password")}, accountData{})
	case isFormError(err):
		return p.renderAccount(w, r, s, outcome{http.StatusUnprocessableEntity, formError(err)}, accountData{})
	case err != nil:
		return err
	}
	endConsoleCookie(w, r, p)
	redirect(w, r, "/console/login?done=password-changed")
	return nil
}

func (p *Portal) consoleCreateToken(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	if err := named(s); err != nil {
		return err
	}
	days, _ := strconv.Atoi(r.PostFormValue("ttl_days"))
	token, err := p.d.Identity.IssueOperatorToken(r.Context(), s.Operator, r.PostFormValue("name"), formRoles(r), time.Duration(days)*24*time.Hour)
	if isFormError(err) {
		return p.renderAccount(w, r, s, outcome{http.StatusUnprocessableEntity, formError(err)}, accountData{})
	}
	if err != nil {
		return err
	}
	return p.renderAccount(w, r, s, outcome{http.StatusCreated, nil}, accountData{NewToken: &token})
}

func (p *Portal) consoleRevokeToken(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	if err := named(s); err != nil {
		return err
	}
	err := p.d.Identity.RevokeOperatorToken(r.Context(), s.Operator.ID, r.PathValue("id"))
	if err != nil && causeway.ErrorCode(err) != "token_revoked" {
		return err
	}
	redirect(w, r, "/console/account?done=token-revoked")
	return nil
}

// operatorsData is what the operators page shows.
type operatorsData struct {
	Operators []identity.Operator
	Roles     []auth.Role
	Self      string
	Form      operatorForm
}

type operatorForm struct {
	Email, Name string
	Roles       []auth.Role
}

func (p *Portal) renderOperators(w http.ResponseWriter, r *http.Request, s *consoleSession, o outcome, f operatorForm) error {
	ops, err := p.d.Identity.Operators(r.Context(), s.Caller())
	if err != nil {
		return err
	}
	v := s.view("Operators", "console-operators")
	v.Notice, v.Error = notice(r), o.failed
	v.D = operatorsData{Operators: ops, Roles: auth.AllRoles, Self: s.Operator.ID, Form: f}
	p.render(w, r, o.status, "console_operators", v)
	return nil
}

func (p *Portal) consoleOperators(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	return p.renderOperators(w, r, s, outcome{http.StatusOK, nil}, operatorForm{})
}

// formRoles reads the checked roles of a form.
func formRoles(r *http.Request) []auth.Role {
	_ = r.ParseForm()
	var roles []auth.Role
	for _, name := range r.PostForm["roles"] {
		roles = append(roles, auth.Role(name))
	}
	return roles
}

func (p *Portal) consoleCreateOperator(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	f := operatorForm{Email: r.PostFormValue("email"), Name: r.PostFormValue("name"), Roles: formRoles(r)}
	_, err := p.d.Identity.CreateOperator(r.Context(), s.Caller(), identity.NewOperator{
		Email: f.Email, Name: f.Name, Password: r.PostFormValue("password"), Roles: f.Roles,
	})
	if isFormError(err) {
		return p.renderOperators(w, r, s, outcome{http.StatusUnprocessableEntity, formError(err)}, f)
	}
	if err != nil {
		return err
	}
	redirect(w, r, "/console/operators?done=operator-created")
	return nil
}

// consoleChangeOperator sets another operator's roles and status from
// the form's checkboxes and its status field.
func (p *Portal) consoleChangeOperator(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	roles := auth.NewRoles(formRoles(r)...)
	status := r.PostFormValue("status")
	_, err := p.d.Identity.ChangeOperator(r.Context(), s.Caller(), r.PathValue("id"), identity.OperatorChange{Roles: &roles, Status: &status})
	if isFormError(err) {
		return p.renderOperators(w, r, s, outcome{http.StatusConflict, formError(err)}, operatorForm{})
	}
	if err != nil {
		return err
	}
	redirect(w, r, "/console/operators?done=operator-changed")
	return nil
}

func (p *Portal) consoleResetTOTP(w http.ResponseWriter, r *http.Request, s *consoleSession) error {
	err := p.d.Identity.ResetTOTP(r.Context(), s.Caller(), r.PathValue("id"))
	if isFormError(err) {
		return p.renderOperators(w, r, s, outcome{http.StatusConflict, formError(err)}, operatorForm{})
	}
	if err != nil {
		return err
	}
	redirect(w, r, "/console/operators?done=totp-reset")
	return nil
}
