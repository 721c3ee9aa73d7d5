package spi

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/stdwebhooks"
	"github.com/causewayhq/causeway/internal/store"
)

// Priorities a bank may give a registration.
const (
	MinPriority = 0
	MaxPriority = 1000
)

// CreateRegistration registers an app's endpoint at an extension point and
// returns it with its signing secret ("whsec_…"), which is not shown again.
// An app-scope registration is active at once for the app's own process
// instances; a bank-scope one waits for the bank to activate it. The URL
// must pass the SSRF guard: a private address is EINVALID url_not_allowed
// unless the operator allowed its range, and an http:// URL is EINVALID
// https_required when the guard requires https (production mode).
func (s *Service) CreateRegistration(ctx context.Context, caller auth.Caller, n NewRegistration) (*Registration, string, error) {
	appID, ok := caller.App()
	if !ok {
		return nil, "", causeway.Errorf(causeway.EFORBIDDEN, "forbidden", "SPI endpoints are registered by an app, not %s", caller)
	}
	p, err := s.Point(ctx, n.ExtensionPoint)
	if causeway.ErrorKind(err) == causeway.ENOTFOUND {
		return nil, "", causeway.Errorf(causeway.EINVALID, "unknown_extension_point",
			"no extension point %q; GET /v1/extension-points lists them", n.ExtensionPoint)
	}
	if err != nil {
		return nil, "", err
	}
	scope := n.Scope
	if scope == "" {
		scope = ScopeApp
	}
	if scope != ScopeApp && scope != ScopeBank {
		return nil, "", causeway.Errorf(causeway.EINVALID, "invalid_scope", "scope must be app or bank")
	}
	u, err := validateURL(n.URL)
	if err != nil {
		return nil, "", err
	}
	if err := s.guard.CheckURL(ctx, u); err != nil {
		return nil, "", err
	}
	timeout := n.TimeoutMS
	switch {
	case timeout == 0:
		timeout = p.DefaultTimeoutMS
	case timeout < 1 || timeout > p.MaxTimeoutMS:
		return nil, "", errTimeout(p)
	}
	policy := n.OnFailure
	if policy == "" {
		policy = OnFailureStandIn
	}
	if !validPolicy(policy) {
		return nil, "", errPolicy()
	}
	status := StatusActive
	if scope == ScopeBank {
		status = StatusPendingActivation
	}
	now := s.timestamp()
	secret := stdwebhooks.NewSecret()
	r := &Registration{
		ID: ids.New("spi"), AppID: appID, ExtensionPoint: p.Name, URL: u, Scope: scope, Status: status,
		TimeoutMS: timeout, OnFailure: policy, CreatedAt: now, UpdatedAt: now,
		sealedSecret: s.sealer.Seal(secret),
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO spi_registrations (id, app_id, extension_point, url, scope, status,
			timeout_ms, on_failure, priority, secret, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			r.ID, r.AppID, r.ExtensionPoint, r.URL, r.Scope, r.Status, r.TimeoutMS, r.OnFailure, r.Priority,
			r.sealedSecret, store.Micros(now), store.Micros(now))
		return err
	})
	if err != nil {
		return nil, "", err
	}
	s.cands.forget()
	return r, secret, nil
}

func errTimeout(p *Point) error {
	return causeway.Errorf(causeway.EINVALID, "invalid_timeout",
		"timeout_ms must be between 1 and %d, the maximum of %s", p.MaxTimeoutMS, p.Name)
}

const registrationColumns = `id, app_id, extension_point, url, scope, status, timeout_ms, on_failure, priority,
	secret, previous_secret, previous_expires_at, created_at, updated_at`

func scanRegistration(row store.Scanner) (*Registration, error) {
	var r Registration
	var created, updated int64
	var prevExpires sql.NullInt64
	err := row.Scan(&r.ID, &r.AppID, &r.ExtensionPoint, &r.URL, &r.Scope, &r.Status, &r.TimeoutMS, &r.OnFailure,
		&r.Priority, &r.sealedSecret, &r.sealedPrevious, &prevExpires, &created, &updated)
	if err != nil {
		return nil, store.Classify(err)
	}
	r.CreatedAt, r.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	if prevExpires.Valid {
		t := store.FromMicros(prevExpires.Int64)
		r.PreviousSecretExpiresAt = &t
	}
	return &r, nil
}

// SecretOverlap is how long the previous secret keeps signing calls after
// a rotation.
const SecretOverlap = 24 * time.Hour

// RotateSecret gives an app's registration a new signing secret and
// returns it (shown once). For SecretOverlap, calls carry signatures with
// both the new and the previous secret, so the endpoint can switch to the
// new one without refusing a call. Of rotations at once, one wins; the
// others are ECONFLICT secret_changed.
func (s *Service) RotateSecret(ctx context.Context, caller auth.Caller, id string) (*Registration, string, error) {
	secret := stdwebhooks.NewSecret()
	var out *Registration
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		r, err := getRegistration(ctx, tx, caller, id)
		if err != nil {
			return err
		}
		now := s.timestamp()
		until := now.Add(SecretOverlap)
		r.sealedPrevious, r.sealedSecret = r.sealedSecret, s.sealer.Seal(secret)
		r.PreviousSecretExpiresAt, r.UpdatedAt = &until, now
		// Compare-and-set on the secret read: of two rotations at once,
		// the second would otherwise keep the first one's new secret out
		// of the overlap, and the endpoint configured with it would refuse
		// every call.
		res, err := tx.ExecContext(ctx, `UPDATE spi_registrations SET secret = $1, previous_secret = $2, previous_expires_at = $3, updated_at = $4
			WHERE id = $5 AND secret = $6`, r.sealedSecret, r.sealedPrevious, store.Micros(until), store.Micros(now), id, r.sealedPrevious)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return causeway.Errorf(causeway.ECONFLICT, "secret_changed", "the secret of SPI registration %s was rotated meanwhile; rotate again if you need a secret of your own", id)
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	s.cands.forget()
	s.log.InfoContext(ctx, "spi secret rotated", "registration_id", id, "previous_expires_at", *out.PreviousSecretExpiresAt)
	return out, secret, nil
}

func errNoRegistration(id string) error {
	return causeway.Errorf(causeway.ENOTFOUND, "registration_not_found", "no SPI registration %s", id)
}

// Registration returns one registration. An app sees only its own, and
// not the ones it deleted; the bank sees every one; anything else is
// ENOTFOUND registration_not_found.
func (s *Service) Registration(ctx context.Context, caller auth.Caller, id string) (*Registration, error) {
	return getRegistration(ctx, s.db, caller, id)
}

// getRegistration is Registration on the pool or in a transaction.
func getRegistration(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, caller auth.Caller, id string) (*Registration, error) {
	appID, isApp := caller.App()
	if !isApp && !caller.IsBank() {
		return nil, errNoRegistration(id)
	}
	r, err := scanRegistration(q.QueryRowContext(ctx,
		`SELECT `+registrationColumns+` FROM spi_registrations WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoRegistration(id)
	}
	if err != nil {
		return nil, err
	}
	if isApp && (r.AppID != appID || r.Status == StatusDeleted) {
		return nil, errNoRegistration(id)
	}
	return r, nil
}

// Registrations lists the registrations the caller may see, oldest first:
// an app its own (whatever f.AppID says, and never the ones it deleted),
// the bank every one matching f, anyone else none.
func (s *Service) Registrations(ctx context.Context, caller auth.Caller, f RegistrationFilter) (*page.Page[*Registration], error) {
	limit, after, err := page.Args(f.Limit, f.Cursor)
	if err != nil {
		return nil, err
	}
	switch appID, isApp := caller.App(); {
	case isApp:
		f.AppID, f.IncludeDeleted = appID, false
	case !caller.IsBank():
		return &page.Page[*Registration]{Data: []*Registration{}}, nil
	}
	where := []string{"id > $1"}
	args := []any{after}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.AppID != "" {
		add("app_id = ?", f.AppID)
	}
	if !f.IncludeDeleted {
		add("status <> ?", StatusDeleted)
	}
	if f.ExtensionPoint != "" {
		add("extension_point = ?", f.ExtensionPoint)
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, `SELECT `+registrationColumns+` FROM spi_registrations WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	return page.Collect(rows, limit, scanRegistration, func(r *Registration) string { return r.ID })
}

// DeleteRegistration stops an app's registration for good. Its audit stays
// readable by the bank. The registration leaves the status it had, so of
// concurrent deletions exactly one succeeds; the others, like a deletion
// of a registration already deleted, find nothing. Errors: ENOTFOUND
// registration_not_found (also for another app's registration).
func (s *Service) DeleteRegistration(ctx context.Context, caller auth.Caller, id string) error {
	if _, err := s.transition(ctx, caller, "", id, StatusDeleted, nil, func(*Registration) error { return nil }); err != nil {
		return err
	}
	s.breakers.forget(id)
	s.log.InfoContext(ctx, "spi registration deleted", "registration_id", id, "by", caller.String())
	return nil
}

// Activate makes a registration that waits for activation, or one the bank
// deactivated, active, with the bank's settings: its deadline (at most the
// point's maximum), failure policy and priority among bank-scope
// registrations. It is how the bank admits a bank-scope registration, and
// how it re-enables any registration it deactivated. It names the status
// it leaves, so of two operators activating one registration at once
// exactly one succeeds. Configure changes the settings of an active one.
// Errors: ENOTFOUND registration_not_found; EINVALID invalid_timeout,
// invalid_on_failure, invalid_priority; ECONFLICT
// registration_already_active, registration_deleted.
func (s *Service) Activate(ctx context.Context, caller auth.Caller, id string, a Activation) (*Registration, error) {
	if err := caller.RequireBank(); err != nil {
		return nil, err
	}
	r, err := s.transition(ctx, caller, "spi.activate", id, StatusActive, &a, func(r *Registration) error {
		switch r.Status {
		case StatusActive:
			return causeway.Errorf(causeway.ECONFLICT, "registration_already_active",
				"registration %s is already active; change its settings with PATCH /bank/v1/spi-registrations/%s", id, id)
		case StatusDeleted:
			return errDeleted(id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "spi registration activated", "registration_id", id, "by", caller.String(), "timeout_ms", r.TimeoutMS,
		"on_failure", r.OnFailure, "priority", r.Priority)
	return r, nil
}

// Configure changes a registration's deadline, failure policy or priority
// (zero fields keep theirs) without changing its status: this is how the
// bank tightens an app-scope registration, active from the start, e.g. to
// fail closed. Errors: ENOTFOUND registration_not_found; EINVALID
// invalid_timeout, invalid_on_failure, invalid_priority; ECONFLICT
// registration_deleted.
func (s *Service) Configure(ctx context.Context, caller auth.Caller, id string, a Activation) (*Registration, error) {
	if err := caller.RequireBank(); err != nil {
		return nil, err
	}
	r, err := s.transition(ctx, caller, "spi.configure", id, "", &a, func(r *Registration) error {
		if r.Status == StatusDeleted {
			return errDeleted(id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "spi registration configured", "registration_id", id, "by", caller.String(), "timeout_ms", r.TimeoutMS,
		"on_failure", r.OnFailure, "priority", r.Priority)
	return r, nil
}

// Deactivate stops the bank from calling an active registration until it
// is activated again. It works on either scope: the bank can always switch
// off an endpoint that misbehaves. It names the status it leaves, so of
// two operators deactivating one registration at once exactly one
// succeeds. Errors: ENOTFOUND registration_not_found; ECONFLICT
// registration_not_active, registration_deleted.
func (s *Service) Deactivate(ctx context.Context, caller auth.Caller, id string) (*Registration, error) {
	if err := caller.RequireBank(); err != nil {
		return nil, err
	}
	r, err := s.transition(ctx, caller, "spi.deactivate", id, StatusInactive, nil, func(r *Registration) error {
		switch r.Status {
		case StatusDeleted:
			return errDeleted(id)
		case StatusActive:
			return nil
		}
		return causeway.Errorf(causeway.ECONFLICT, "registration_not_active", "registration %s is %s, not active", id, r.Status)
	})
	if err != nil {
		return nil, err
	}
	s.breakers.forget(id)
	s.log.InfoContext(ctx, "spi registration deactivated", "registration_id", id, "by", caller.String())
	return r, nil
}

func errDeleted(id string) error {
	return causeway.Errorf(causeway.ECONFLICT, "registration_deleted", "registration %s was deleted by its app", id)
}

// transition moves registration id (if the caller may see it) to status to
// ("": keep it) with the settings of a (nil: keep them), if allowed says
// its current state permits it. The UPDATE names the status it read, so
// of concurrent transitions on one registration exactly one applies; the
// others read the registration again and get allowed's verdict on what
// the winner left (a change that keeps the status only needs the
// registration not to be deleted). It returns the registration as
// written. A bank's transition (action set) appends an entry to the
// audit trail, with the settings before and after; an app's own deletion
// is not the bank's and has none.
func (s *Service) transition(ctx context.Context, caller auth.Caller, action, id, to string, a *Activation, allowed func(*Registration) error) (*Registration, error) {
	r, err := getRegistration(ctx, s.db, caller, id)
	if err != nil {
		return nil, err
	}
	// Settings are written only where given (NULL keeps the column), so a
	// concurrent change of another setting is not lost.
	var timeout, policy, priority any
	if a != nil {
		if timeout, policy, priority, err = s.settings(ctx, r.ExtensionPoint, *a); err != nil {
			return nil, err
		}
	}
	if err := allowed(r); err != nil {
		return nil, err
	}
	var status any
	if to != "" {
		status = to
	}
	var out *Registration
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		for range 5 {
			if action != "" {
				// Lock the row and read it again, so that the audit entry's
				// before is what this change replaced, even when another
				// one committed since the read above.
				if _, err := tx.ExecContext(ctx, `UPDATE spi_registrations SET updated_at = updated_at WHERE id = $1`, id); err != nil {
					return err
				}
				var err error
				if r, err = getRegistration(ctx, tx, caller, id); err != nil {
					return err
				}
				if err := allowed(r); err != nil {
					return err
				}
			}
			// A transition names the status it leaves; a change of
			// settings only needs the registration not to be deleted.
			cond, from := `status = $7`, r.Status
			if to == "" {
				cond, from = `status <> $7`, StatusDeleted
			}
			res, err := tx.ExecContext(ctx, `UPDATE spi_registrations SET status = COALESCE($1, status),
				timeout_ms = COALESCE($2, timeout_ms), on_failure = COALESCE($3, on_failure), priority = COALESCE($4, priority),
				updated_at = $5 WHERE id = $6 AND `+cond, status, timeout, policy, priority, store.Micros(s.timestamp()), id, from)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				if out, err = getRegistration(ctx, tx, auth.BankProcess(), id); err != nil || action == "" {
					return err
				}
				return audit.Record(ctx, tx, audit.Change{Action: action, TargetType: "spi_registration", TargetID: id,
					Before: r.summary(), After: out.summary(), By: caller})
			}
			// Another transition came first: judge what it left.
			if r, err = getRegistration(ctx, tx, caller, id); err != nil {
				return err
			}
			if err := allowed(r); err != nil {
				return err
			}
		}
		return causeway.Errorf(causeway.ECONFLICT, "registration_changed", "registration %s keeps changing; read it again", id)
	})
	if err != nil {
		return nil, err
	}
	s.cands.forget()
	return out, nil
}

// summary is what the bank decides of a registration, for the audit
// trail: its status and settings.
func (r *Registration) summary() map[string]any {
	return map[string]any{"status": r.Status, "timeout_ms": r.TimeoutMS, "on_failure": r.OnFailure, "priority": r.Priority,
		"scope": r.Scope, "extension_point": r.ExtensionPoint, "app_id": r.AppID}
}

// settings validates a's settings for a registration at point and returns
// the values to write, nil where a keeps the current one.
func (s *Service) settings(ctx context.Context, point string, a Activation) (timeout, policy, priority any, err error) {
	p, err := s.Point(ctx, point)
	if err != nil {
		return nil, nil, nil, err
	}
	if a.TimeoutMS != 0 {
		if a.TimeoutMS < 1 || a.TimeoutMS > p.MaxTimeoutMS {
			return nil, nil, nil, errTimeout(p)
		}
		timeout = a.TimeoutMS
	}
	if a.OnFailure != "" {
		if !validPolicy(a.OnFailure) {
			return nil, nil, nil, errPolicy()
		}
		policy = a.OnFailure
	}
	if a.Priority != nil {
		if *a.Priority < MinPriority || *a.Priority > MaxPriority {
			return nil, nil, nil, causeway.Errorf(causeway.EINVALID, "invalid_priority", "priority must be between %d and %d", MinPriority, MaxPriority)
		}
		priority = *a.Priority
	}
	return timeout, policy, priority, nil
}

// candidates are the active registrations asked at point for a process
// of appID, in order: the app's own app-scope ones (oldest first), then the
// bank-scope ones by priority (ties: oldest first).
func (s *Service) candidates(ctx context.Context, point, appID string) ([]*Registration, error) {
	key := point + "\x00" + appID
	regs, gen, ok := s.cands.get(key, time.Now())
	if ok {
		return regs, nil
	}
	regs, err := s.readCandidates(ctx, point, appID)
	if err == nil {
		s.cands.put(key, regs, gen, time.Now())
	}
	return regs, err
}

func (s *Service) readCandidates(ctx context.Context, point, appID string) ([]*Registration, error) {
	// The app's own first: ORDER BY puts scope "app" before "bank".
	st, err := s.prepared(ctx, &s.candidatesStmt, `SELECT `+registrationColumns+` FROM spi_registrations
		WHERE extension_point = $1 AND status = $2 AND (scope = $3 OR (scope = $4 AND app_id = $5 AND app_id <> ''))
		ORDER BY scope, priority, id`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, point, StatusActive, ScopeBank, ScopeApp, appID)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	var out []*Registration
	for rows.Next() {
		r, err := scanRegistration(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, store.Classify(rows.Err())
}

// candidatesTTL bounds how long a node calls the registrations it read
// for a point and app: a change made through this node applies at once
// (the cache is emptied), one made through another node within this time.
const candidatesTTL = time.Second

// candidateCache keeps the registrations each call at a point asks, so a
// call reads the database only once a second per point and app.
type candidateCache struct {
	mu      sync.Mutex
	gen     uint64 // moved by every change of a registration on this node
	entries map[string]cachedCandidates
}

type cachedCandidates struct {
	regs []*Registration
	gen  uint64
	at   time.Time
}

// get returns key's registrations if they are fresh; otherwise the
// generation to store the ones read now under.
func (c *candidateCache) get(key string, now time.Time) ([]*Registration, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if ok && e.gen == c.gen && now.Sub(e.at) < candidatesTTL && !now.Before(e.at) {
		return e.regs, c.gen, true
	}
	return nil, c.gen, false
}

// put keeps regs, read at generation gen; a change since makes them stale
// at once.
func (c *candidateCache) put(key string, regs []*Registration, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.entries == nil || len(c.entries) >= maxCachedCandidates {
		c.entries = map[string]cachedCandidates{}
	}
	c.entries[key] = cachedCandidates{regs: regs, gen: gen, at: now}
}

// maxCachedCandidates bounds the cache: one entry per point and calling
// app.
const maxCachedCandidates = 10000

// forget makes every cached entry stale, after a registration changed.
func (c *candidateCache) forget() {
	c.mu.Lock()
	c.gen++
	c.entries = nil
	c.mu.Unlock()
}
