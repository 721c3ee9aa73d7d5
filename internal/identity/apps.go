package identity

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
)

// App is an organization's application and its client credentials, as the
// API shows it. The client secret is not part of it: it is shown once, at
// creation and rotation, and only its hash is kept.
type App struct {
	ID             string    `json:"id" example:"app_01jd3k7m9q6x4t2w8y5z0abcde"`
	Name           string    `json:"name"`
	OrganizationID string    `json:"organization_id"`
	DeveloperID    string    `json:"developer_id" doc:"The developer who created the app"`
	ClientID       string    `json:"client_id" doc:"OAuth2 client id for the client-credentials grant"`
	Scopes         []string  `json:"scopes"`
	Status         string    `json:"status" enum:"active,pending_approval,suspended"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func errAppNotFound(id string) error {
	return causeway.Errorf(causeway.ENOTFOUND, "app_not_found", "no app %s", id)
}

// checkScopes validates requested scopes and returns them without
// duplicates, in the order of auth.AllScopes.
func checkScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_scope", "an app needs at least one scope, from: %s", strings.Join(auth.AllScopes, ", "))
	}
	for _, sc := range scopes {
		if !auth.ValidScope(sc) {
			return nil, causeway.Errorf(causeway.EINVALID, "invalid_scope", "unknown scope %q; scopes are: %s", truncate(sc, 64), strings.Join(auth.AllScopes, ", "))
		}
	}
	out := make([]string, 0, len(scopes))
	for _, sc := range auth.AllScopes {
		if slices.Contains(scopes, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

const appColumns = `id, name, organization_id, developer_id, client_id, scopes, status, created_at, updated_at`

func scanApp(row store.Scanner) (*App, error) {
	var a App
	var scopes string
	var created, updated int64
	if err := row.Scan(&a.ID, &a.Name, &a.OrganizationID, &a.DeveloperID, &a.ClientID, &scopes, &a.Status, &created, &updated); err != nil {
		return nil, err
	}
	a.Scopes = strings.Fields(scopes)
	a.CreatedAt, a.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return &a, nil
}

// CreateApp creates an app in the developer's organization and returns it
// with its client secret, which is never shown again. In sandbox mode the
// app is active at once (and OnAppActivated runs); in production mode it
// waits for the bank's approval. Errors: EINVALID invalid_name,
// invalid_scope (no scope, or one not in auth.AllScopes); ECONFLICT
// too_many_apps when the developer has Limits.MaxAppsPerDeveloper apps.
func (s *Service) CreateApp(ctx context.Context, dev *auth.Developer, name string, scopes []string) (*App, string, error) {
	if dev == nil {
		return nil, "", errUnauthenticated()
	}
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return nil, "", causeway.Errorf(causeway.EINVALID, "invalid_name", "name must be 1 to 100 characters")
	}
	scopes, err := checkScopes(scopes)
	if err != nil {
		return nil, "", err
	}
	now := s.now().UTC()
	app := &App{
		ID: ids.New("app"), Name: name, OrganizationID: dev.OrganizationID, DeveloperID: dev.ID,
		ClientID: newClientID(), Scopes: scopes, Status: auth.AppPendingApproval,
		CreatedAt: store.FromMicros(store.Micros(now)), UpdatedAt: store.FromMicros(store.Micros(now)),
	}
	if s.opts.Mode == ModeSandbox {
		app.Status = auth.AppActive
	}
	secret := newClientSecret()
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkAppCap(ctx, tx, dev.ID, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO identity_apps (`+appColumns+`, secret_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			app.ID, app.Name, app.OrganizationID, app.DeveloperID, app.ClientID, strings.Join(app.Scopes, " "), app.Status,
			store.Micros(now), store.Micros(now), secretHash(secret))
		return err
	})
	if err != nil {
		return nil, "", dbErr(err)
	}
	s.log.InfoContext(ctx, "app created", "app_id", app.ID, "client_id", app.ClientID, "organization_id", app.OrganizationID,
		"developer_id", dev.ID, "status", app.Status, "scopes", strings.Join(app.Scopes, " "))
	if app.Status == auth.AppActive {
		// The hook (seeding sandbox data) must finish even if the client
		// goes away meanwhile, or the app would be removed under it.
		ctx := context.WithoutCancel(ctx)
		if err := s.activated(ctx, app.ID); err != nil {
			// Leave no half-activated app behind: the developer never saw
			// its secret, so remove it and let them try again.
			if derr := s.tx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `UPDATE identity_apps SET deleted_at = $1 WHERE id = $2`, store.Micros(s.now()), app.ID)
				return err
			}); derr != nil {
				s.log.ErrorContext(ctx, "could not remove app after failed activation", "app_id", app.ID, "error", derr.Error())
			}
			return nil, "", err
		}
	}
	return app, secret, nil
}

// activated runs the OnAppActivated hook.
func (s *Service) activated(ctx context.Context, appID string) error {
	if s.opts.OnAppActivated == nil {
		return nil
	}
	if err := s.opts.OnAppActivated(ctx, appID); err != nil {
		s.log.ErrorContext(ctx, "app activation hook failed", "app_id", appID, "error", err.Error())
		var ce *causeway.Error
		if errors.As(err, &ce) {
			return err
		}
		return errors.Join(err, causeway.Errorf(causeway.EUNAVAILABLE, "activation_failed", "the app could not be activated; try again"))
	}
	return nil
}

// Apps lists the apps of the developer's organization, oldest first.
// Deleted apps are not listed.
func (s *Service) Apps(ctx context.Context, dev *auth.Developer, limit int, cursor string) (*page.Page[*App], error) {
	if dev == nil {
		return nil, errUnauthenticated()
	}
	return s.listApps(ctx, "organization_id = $3", dev.OrganizationID, limit, cursor)
}

// App returns one app of the developer's organization. Errors: ENOTFOUND
// app_not_found, also for another organization's app.
func (s *Service) App(ctx context.Context, dev *auth.Developer, id string) (*App, error) {
	if dev == nil {
		return nil, errUnauthenticated()
	}
	app, err := s.app(ctx, id)
	if err != nil {
		return nil, err
	}
	if app.OrganizationID != dev.OrganizationID {
		return nil, errAppNotFound(id)
	}
	return app, nil
}

// app reads a live (not deleted) app.
func (s *Service) app(ctx context.Context, id string) (*App, error) {
	app, err := scanApp(s.db.QueryRowContext(ctx, `SELECT `+appColumns+` FROM identity_apps WHERE id = $1 AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errAppNotFound(id)
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	return app, nil
}

// RotateSecret gives an app a new client secret, returned once; the old
// one stops working at once. Access tokens already issued stay valid until
// they expire. Errors: ENOTFOUND app_not_found.
func (s *Service) RotateSecret(ctx context.Context, dev *auth.Developer, id string) (*App, string, error) {
	app, err := s.App(ctx, dev, id)
	if err != nil {
		return nil, "", err
	}
	secret := newClientSecret()
	now := s.now()
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE identity_apps SET secret_hash = $1, updated_at = $2
			WHERE id = $3 AND organization_id = $4 AND deleted_at IS NULL`, secretHash(secret), store.Micros(now), id, dev.OrganizationID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errAppNotFound(id)
		}
		return nil
	})
	if err != nil {
		return nil, "", dbErr(err)
	}
	app.UpdatedAt = store.FromMicros(store.Micros(now))
	s.log.InfoContext(ctx, "app secret rotated", "app_id", id, "client_id", app.ClientID, "developer_id", dev.ID)
	return app, secret, nil
}

// DeleteApp deletes an app of the developer's organization. Its client
// credentials and its access tokens stop working at once. Errors:
// ENOTFOUND app_not_found.
func (s *Service) DeleteApp(ctx context.Context, dev *auth.Developer, id string) error {
	if dev == nil {
		return errUnauthenticated()
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := store.Micros(s.now())
		res, err := tx.ExecContext(ctx, `UPDATE identity_apps SET deleted_at = $1, updated_at = $1
			WHERE id = $2 AND organization_id = $3 AND deleted_at IS NULL`, now, id, dev.OrganizationID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errAppNotFound(id)
		}
		return nil
	})
	s.cache.forgetApps()
	if err != nil {
		return dbErr(err)
	}
	s.log.InfoContext(ctx, "app deleted", "app_id", id, "developer_id", dev.ID)
	return nil
}

// AppOrganization returns the organization an app belongs to. Errors:
// ENOTFOUND app_not_found for an unknown or deleted app.
func (s *Service) AppOrganization(ctx context.Context, appID string) (string, error) {
	var org string
	err := s.db.QueryRowContext(ctx, `SELECT organization_id FROM identity_apps WHERE id = $1 AND deleted_at IS NULL`, appID).Scan(&org)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errAppNotFound(appID)
	}
	if err != nil {
		return "", store.Classify(err)
	}
	return org, nil
}

// ListApps lists every live app for the bank, oldest first, optionally
// only those with one status. Errors: EINVALID invalid_status.
func (s *Service) ListApps(ctx context.Context, status string, limit int, cursor string) (*page.Page[*App], error) {
	switch status {
	case "":
		return s.listApps(ctx, "", "", limit, cursor)
	case auth.AppActive, auth.AppPendingApproval, auth.AppSuspended:
		return s.listApps(ctx, "status = $3", status, limit, cursor)
	}
	return nil, causeway.Errorf(causeway.EINVALID, "invalid_status", "status must be %s, %s or %s",
		auth.AppActive, auth.AppPendingApproval, auth.AppSuspended)
}

// listApps pages through live apps; where, if set, is one more condition
// on $3 = arg.
func (s *Service) listApps(ctx context.Context, where, arg string, limit int, cursor string) (*page.Page[*App], error) {
	limit, after, err := page.Args(limit, cursor)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + appColumns + ` FROM identity_apps WHERE deleted_at IS NULL AND id > $1`
	args := []any{after, limit + 1}
	if where != "" {
		q += " AND " + where
		args = append(args, arg)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id LIMIT $2`, args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	return page.Collect(rows, limit, scanApp, func(a *App) string { return a.ID })
}

// Approve makes an app active: one pending approval, or one the bank
// suspended. It names the status it leaves, so of two operators approving
// one app at once exactly one succeeds; the other, like anyone approving
// an app that is already active, gets ECONFLICT app_already_active.
// OnAppActivated runs once, for the approval that won; if it fails, the
// app goes back to its previous status (unless the bank changed it
// meanwhile) and the hook's error is returned.
//
// Reinstating a suspended app takes reinstateWait (about a second): every
// node caches an app's status for up to appStatusTTL, and one that read
// the status just before the suspension would otherwise accept, after
// the reinstatement, a token from before the suspension until its cache
// expired. Waiting after seeing the suspension, and reinstating only if
// no other suspension came in between, makes the refusal exact on every
// node. Errors: ENOTFOUND app_not_found; ECONFLICT app_already_active,
// app_status_changed.
func (s *Service) Approve(ctx context.Context, id string) (*App, error) {
	var status string
	var generation int64
	err := s.db.QueryRowContext(ctx, `SELECT status, token_generation FROM identity_apps WHERE id = $1 AND deleted_at IS NULL`, id).
		Scan(&status, &generation)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errAppNotFound(id)
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	var app *App
	var prev string
	if status == auth.AppSuspended {
		t := time.NewTimer(reinstateWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		app, prev, err = s.moveStatusIn(ctx, "app.approve", id, auth.AppSuspended, generation, auth.AppActive)
	} else {
		app, prev, err = s.setStatus(ctx, "app.approve", id, auth.AppActive)
	}
	if err != nil {
		return nil, err
	}
	if err := s.activated(ctx, id); err != nil {
		// Undo only this approval: if the bank suspended the app meanwhile,
		// that decision stands. The undoing is a change of its own in the
		// audit trail, after the approval's.
		if _, _, rerr := s.moveStatus(ctx, "app.approve.revert", id, auth.AppActive, prev); rerr != nil && causeway.ErrorKind(rerr) != causeway.ECONFLICT {
			s.log.ErrorContext(ctx, "could not undo approval after failed activation", "app_id", id, "error", rerr.Error())
		}
		return nil, err
	}
	s.log.InfoContext(ctx, "app approved", "app_id", id, "previous_status", prev)
	return app, nil
}

// Suspend suspends an app, active or pending approval: its access tokens
// stop working at once, for good (a new token generation begins, and the
// tokens of the old one stay refused after a reinstatement), and it gets
// no new ones until the bank approves it again. Of two operators suspending one app at once exactly one succeeds;
// the other, like anyone suspending a suspended app, gets ECONFLICT
// app_already_suspended. Errors: ENOTFOUND app_not_found; ECONFLICT
// app_already_suspended.
func (s *Service) Suspend(ctx context.Context, id string) (*App, error) {
	app, prev, err := s.setStatus(ctx, "app.suspend", id, auth.AppSuspended)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "app suspended", "app_id", id, "previous_status", prev)
	return app, nil
}

// statusSummary is an app's status before or after a change, for the
// audit trail.
type statusSummary struct {
	Status string `json:"status"`
}

// errAppAlready is the conflict of moving an app to the status it has.
func errAppAlready(id, status string) error {
	switch status {
	case auth.AppActive:
		return causeway.Errorf(causeway.ECONFLICT, "app_already_active", "app %s is already active", id)
	case auth.AppSuspended:
		return causeway.Errorf(causeway.ECONFLICT, "app_already_suspended", "app %s is already suspended", id)
	}
	return causeway.Errorf(causeway.ECONFLICT, "app_status_changed", "app %s is already %s", id, status)
}

// setStatus moves a live app from whatever other status it has to status
// and returns it with the status it left, recording the move in the audit
// trail as action. An app that already has status is ECONFLICT
// (errAppAlready).
func (s *Service) setStatus(ctx context.Context, action, id, status string) (*App, string, error) {
	return s.moveStatus(ctx, action, id, "", status)
}

// moveStatus moves a live app from status from ("": any other than to) to
// status to, and returns it with the status it left. The row is locked
// before it is read, and the UPDATE names the status it leaves, so of
// concurrent moves on one app exactly one finds the status it expects;
// the others get ECONFLICT.
func (s *Service) moveStatus(ctx context.Context, action, id, from, to string) (*App, string, error) {
	return s.moveStatusIn(ctx, action, id, from, -1, to)
}

// moveStatusIn is moveStatus that also requires the app's token generation
// to be generation (-1: any); another one is ECONFLICT
// app_status_changed. A move to suspended starts a new generation.
func (s *Service) moveStatusIn(ctx context.Context, action, id, from string, generation int64, to string) (*App, string, error) {
	var app *App
	var prev string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Lock the row before reading it (PostgreSQL under READ
		// COMMITTED; SQLite serializes writers anyway), so that
		// concurrent decisions on one app queue behind each other and
		// each reads what the one before it wrote.
		res, err := tx.ExecContext(ctx, `UPDATE identity_apps SET updated_at = updated_at WHERE id = $1 AND deleted_at IS NULL`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errAppNotFound(id)
		}
		a, err := scanApp(tx.QueryRowContext(ctx, `SELECT `+appColumns+` FROM identity_apps WHERE id = $1`, id))
		if err != nil {
			return err
		}
		var current int64
		if err := tx.QueryRowContext(ctx, `SELECT token_generation FROM identity_apps WHERE id = $1`, id).Scan(&current); err != nil {
			return err
		}
		prev = a.Status
		switch {
		case prev == to:
			return errAppAlready(id, to)
		case from != "" && prev != from:
			return causeway.Errorf(causeway.ECONFLICT, "app_status_changed", "app %s is %s now, not %s", id, prev, from)
		case generation >= 0 && current != generation:
			return causeway.Errorf(causeway.ECONFLICT, "app_status_changed", "app %s was suspended again meanwhile; read it again", id)
		}
		next := current
		if to == auth.AppSuspended {
			next++
		}
		now := s.now()
		res, err = tx.ExecContext(ctx, `UPDATE identity_apps SET status = $1, updated_at = $2, token_generation = $3
			WHERE id = $4 AND status = $5 AND token_generation = $6 AND deleted_at IS NULL`,
			to, store.Micros(now), next, id, prev, current)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return causeway.Errorf(causeway.ECONFLICT, "app_status_changed", "app %s changed while deciding; read it again", id)
		}
		a.Status, a.UpdatedAt = to, store.FromMicros(store.Micros(now))
		app = a
		return audit.Record(ctx, tx, audit.Change{Action: action, TargetType: "app", TargetID: id,
			Before: statusSummary{prev}, After: statusSummary{to}})
	})
	// Cached statuses are stale now; other nodes' caches expire within
	// appStatusTTL.
	s.cache.forgetApps()
	if err != nil {
		return nil, "", dbErr(err)
	}
	return app, prev, nil
}

// Page sizes of the lists.
const (
	DefaultPageSize = page.DefaultSize
	MaxPageSize     = page.MaxSize
)
