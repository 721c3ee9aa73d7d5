package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/causewayhq/causeway/internal/store"
)

// leaseName is the row in outbox_lease the relays compete for: one
// publisher per database.
const leaseName = "outbox-relay"

// lease is what a relay knows about its own lease, in local monotonic time.
// Expiry in the table is in the database's clock (see dbNow), so nodes with
// skewed clocks still agree on it; locally the relay counts from the moment
// before it asked, which can only err on the early side.
type lease struct {
	held    bool
	renewAt time.Time // renew from here on, while two thirds of the TTL are left
	holder  string    // the other holder last seen, for logging changes only
}

// holdLease reports whether this relay may publish now, acquiring or renewing
// the lease as needed. A standby relay only reads until the lease looks free,
// so idle standbys do not write to the database every interval.
//
// The lease keeps publishing to one node in the normal case; it does not
// have to be perfect. If two relays ever overlap (a holder paused past its
// TTL), both publish the same rows with the same Nats-Msg-Id and JetStream
// keeps one copy.
func (r *Relay) holdLease(ctx context.Context) (bool, error) {
	start := time.Now()
	if r.lease.held && start.Before(r.lease.renewAt) {
		return true, nil
	}
	if !r.lease.held {
		holder, err := r.leaseHolder(ctx)
		if err != nil {
			return false, err
		}
		if holder != "" {
			if holder != r.lease.holder {
				r.log.InfoContext(ctx, "outbox relay standing by: another node holds the lease", "holder", holder)
				r.lease.holder = holder
			}
			return false, nil
		}
	}
	ok, err := r.acquire(ctx)
	switch {
	case err != nil:
		// The outcome is unknown; the next round asks again.
		r.setHeld(false)
		return false, err
	case ok:
		if !r.lease.held {
			r.log.InfoContext(ctx, "outbox relay holds the lease; publishing")
		}
		r.setHeld(true)
		r.lease.holder = ""
		r.lease.renewAt = start.Add(r.opts.LeaseTTL / 3)
		return true, nil
	default:
		if r.lease.held {
			r.log.WarnContext(ctx, "outbox relay lost the lease to another node")
		}
		r.setHeld(false)
		return false, nil
	}
}

func (r *Relay) setHeld(held bool) {
	r.lease.held = held
	r.holds.Store(held)
}

// leaseHolder returns the node holding an unexpired lease other than this
// relay, or "" when the lease is free or this relay's.
func (r *Relay) leaseHolder(ctx context.Context) (string, error) {
	var holder string
	var expires int64
	err := r.db.QueryRowContext(ctx, "SELECT holder, expires_at FROM outbox_lease WHERE name = $1", leaseName).Scan(&holder, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("outbox: read lease: %w", store.Classify(err))
	}
	if holder == r.opts.NodeID {
		return "", nil
	}
	now, err := dbNow(ctx, r.db.DB, r.db.Dialect)
	if err != nil {
		return "", err
	}
	if expires <= now {
		return "", nil
	}
	return holder, nil
}

// acquire takes the lease if it is free, expired or already this relay's,
// and extends it by LeaseTTL. The conditional upsert makes the check and
// the write one statement, so two relays racing for a free lease cannot both
// win.
func (r *Relay) acquire(ctx context.Context) (bool, error) {
	var won bool
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		now, err := dbNow(ctx, tx, r.db.Dialect)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`INSERT INTO outbox_lease (name, holder, expires_at) VALUES ($1, $2, $3)
			 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			 WHERE outbox_lease.holder = excluded.holder OR outbox_lease.expires_at <= $4`,
			leaseName, r.opts.NodeID, now+r.opts.LeaseTTL.Microseconds(), now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		won = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("outbox: acquire lease: %w", err)
	}
	return won, nil
}

// release gives the lease up, so another node takes over without waiting
// for it to expire. It runs as Run returns, when the caller's context is
// already done.
func (r *Relay) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.lease.held {
		return
	}
	r.setHeld(false)
	ctx, cancel := context.WithTimeout(context.Background(), markTimeout)
	defer cancel()
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE outbox_lease SET expires_at = 0 WHERE name = $1 AND holder = $2", leaseName, r.opts.NodeID)
		return err
	})
	if err != nil {
		r.log.WarnContext(ctx, "could not release the lease; it expires on its own", "error", err, "lease_ttl", r.opts.LeaseTTL)
	}
}

// dbNow reads the current time in microseconds from PostgreSQL, whose clock
// all nodes share. SQLite is only ever used by one host, so its clock is
// this process's.
func dbNow(ctx context.Context, q store.Querier, dialect store.Dialect) (int64, error) {
	if dialect != store.Postgres {
		return store.Micros(time.Now()), nil
	}
	var now int64
	err := q.QueryRowContext(ctx, "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)").Scan(&now)
	if err != nil {
		return 0, fmt.Errorf("outbox: database clock: %w", store.Classify(err))
	}
	return now, nil
}
