package portal

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/causewayhq/causeway/internal/leader"
	"github.com/causewayhq/causeway/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate applies the portal's migrations: its sessions table.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "portal", migrationFiles, "migrations")
}

// Session kinds: the developer portal's and the bank console's. A cookie
// of one kind never opens a session of the other.
const (
	kindDeveloper = "developer"
	kindConsole   = "console"
)

// SessionPolicy is how long a session lasts: it ends after Idle without
// a request, and Lifetime after the login however active it is.
type SessionPolicy struct {
	Idle     time.Duration
	Lifetime time.Duration
}

// Default session policies. The console acts for the bank, so its
// sessions are short: an operator who walks away is logged out within
// half an hour, and logs in again after a working day. A developer acts
// only on their own apps; a day's break logs them out, a week at most.
var (
	ConsoleSessions   = SessionPolicy{Idle: 30 * time.Minute, Lifetime: 8 * time.Hour}
	DeveloperSessions = SessionPolicy{Idle: 8 * time.Hour, Lifetime: 7 * 24 * time.Hour}
)

// touchEvery is how stale a session's last use may be before a request
// writes it again: a busy session costs one write a minute, not one per
// request, and its idle timeout is accurate to a minute.
const touchEvery = time.Minute

// owner is whom a session is for: a developer, or in the console an
// admin token (by its fingerprint) or a named operator in one generation.
type owner struct {
	developerID string
	// adminToken is the fingerprint of the admin token the console
	// session logged in with.
	adminToken string
	operatorID string
	// generation is the operator's generation at login.
	generation int64
	// sso marks an operator's session begun at the bank's identity
	// provider, which asked for the second factor.
	sso bool
}

// session is a live session of the sessions table.
type session struct {
	owner
	kind    string
	expires time.Time
}

// sessions is the sessions table. Every node shares it, so what one node
// ends (a logout, an expiry) no node accepts any more.
type sessions struct {
	db       *store.DB
	now      func() time.Time
	policies map[string]SessionPolicy
}

// sessionHash is how a session id is stored: it is 256 random bits, so a
// slow hash would add nothing.
func sessionHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// adminFingerprint names an admin token in the sessions table without
// storing it. The token may be one an operator chose, so the fingerprint
// is argon2id, not a fast hash: a copy of the table must not help guess
// it. Each node computes it once per accepted token, at start.
func adminFingerprint(token string) string {
	key := argon2.IDKey([]byte(token), []byte("causeway console session admin token"), 1, 19*1024, 1, 32)
	return hex.EncodeToString(key)
}

// start creates a session and returns its id, for the cookie, and when it
// ends at the latest.
func (s *sessions) start(ctx context.Context, kind string, o owner) (id string, expires time.Time, err error) {
	id = randomToken()
	now := s.now()
	expires = now.Add(s.policies[kind].Lifetime)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO portal_sessions
			(id_hash, kind, developer_id, admin_token, operator_id, operator_generation, via_sso, created_at, last_seen_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)`,
			sessionHash(id), kind, o.developerID, o.adminToken, o.operatorID, o.generation, o.sso, store.Micros(now), store.Micros(expires))
		return err
	})
	return id, expires, err
}

// find returns the live session of kind with id, or nil when there is
// none: unknown, ended, idle too long, or past its lifetime. Using a
// session slides its idle expiry (see touchEvery); an expired one is
// deleted on the spot.
func (s *sessions) find(ctx context.Context, kind, id string) (*session, error) {
	// randomToken makes 43 characters; anything else was never issued.
	if len(id) != 43 {
		return nil, nil
	}
	hash := sessionHash(id)
	var ss session
	var seen, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT kind, developer_id, admin_token, operator_id, operator_generation, via_sso, last_seen_at, expires_at
		FROM portal_sessions WHERE id_hash = $1`, hash).Scan(&ss.kind, &ss.developerID, &ss.adminToken, &ss.operatorID, &ss.generation, &ss.sso, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	if ss.kind != kind {
		return nil, nil
	}
	now := s.now()
	ss.expires = store.FromMicros(expires)
	lastSeen := store.FromMicros(seen)
	if !now.Before(ss.expires) || !now.Before(lastSeen.Add(s.policies[kind].Idle)) {
		return nil, s.end(ctx, id)
	}
	if now.Sub(lastSeen) >= touchEvery {
		// Never backwards: a node with a slower clock must not shorten
		// the session another node just extended.
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE portal_sessions SET last_seen_at = $1 WHERE id_hash = $2 AND last_seen_at < $1`,
				store.Micros(now), hash)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return &ss, nil
}

// end ends a session at once, on every node. Ending one that is not
// there is not an error.
func (s *sessions) end(ctx context.Context, id string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM portal_sessions WHERE id_hash = $1`, sessionHash(id))
		return err
	})
}

// prune deletes the sessions that ended by time at now: past their
// lifetime, or idle longer than their kind allows.
func (s *sessions) prune(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		n = 0
		res, err := tx.ExecContext(ctx, `DELETE FROM portal_sessions WHERE expires_at <= $1`, store.Micros(now))
		if err != nil {
			return err
		}
		k, _ := res.RowsAffected()
		n += k
		for kind, pol := range s.policies {
			res, err := tx.ExecContext(ctx, `DELETE FROM portal_sessions WHERE kind = $1 AND last_seen_at <= $2`,
				kind, store.Micros(now.Add(-pol.Idle)))
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	return n, err
}

// Jobs are the portal's periodic jobs for the cluster's leader: pruning
// ended sessions, hourly, so the table holds only live ones.
func (p *Portal) Jobs() []leader.Job {
	return []leader.Job{{Name: "prune ended portal sessions", Every: time.Hour, Do: func(ctx context.Context) (int64, error) {
		return p.sessions.prune(ctx, p.d.Now())
	}}}
}

// PruneSessions deletes from db the sessions that ended by time at now.
func PruneSessions(ctx context.Context, db *store.DB, now time.Time) (int64, error) {
	return newSessions(db, time.Now).prune(ctx, now)
}

// newSessions is the sessions table of db, with the default policies.
func newSessions(db *store.DB, now func() time.Time) *sessions {
	return &sessions{db: db, now: now, policies: map[string]SessionPolicy{
		kindConsole: ConsoleSessions, kindDeveloper: DeveloperSessions,
	}}
}
