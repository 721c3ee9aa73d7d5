// Package leader elects one node among those sharing a database: the node
// holding the lease publishes the outbox and runs the cluster's periodic
// jobs (retention, expiry), so nodes sharing a database do each once.
// Another node takes over within the lease's TTL when the holder dies, and
// at once when it stops cleanly.
//
// A lease does not have to be perfect: a holder paused past its TTL can
// overlap with the next one for a moment. The work it guards is safe to do
// twice (the outbox's publishes are deduplicated by JetStream, pruning the
// same old rows twice deletes them once); the lease keeps it to one node in
// the normal case.
package leader

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causewayhq/causeway/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate creates the lease table.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateDir(ctx, "leader", migrationFiles, "migrations")
}

// releaseTimeout bounds giving the lease back after the caller's context
// ended.
const releaseTimeout = 5 * time.Second

// Options name a lease and its holder.
type Options struct {
	// Name is the lease's row: the nodes asking for the same name compete.
	Name string
	// NodeID names this node in the lease; it must differ between nodes.
	NodeID string
	// TTL is how long the lease lasts without renewal, and so how long
	// other nodes wait after the holder dies. Default 10s.
	TTL    time.Duration
	Logger *slog.Logger
}

// Lease is one node's view of a named lease in the database. Hold takes
// or renews it, Held says whether this node holds it now, and Run keeps it
// until its context ends.
type Lease struct {
	db   *store.DB
	opts Options
	log  *slog.Logger

	// mu makes Hold and Release one at a time and guards the fields below.
	mu       sync.Mutex
	held     bool
	renewAt  time.Time // renew from here on, while two thirds of the TTL are left
	other    string    // the other holder last seen, for logging changes only
	stopped  bool      // set as Run ends: Hold takes the lease no more
	onChange []func(held bool)

	// validUntil (unix ns, this node's clock, counted from before the
	// request that renewed it) is when the lease runs out unless renewed;
	// 0 while not held. Held reads it without the mutex.
	validUntil atomic.Int64
}

// New returns the lease opts names over db, whose tables Migrate has
// created. It does nothing until Hold or Run.
func New(db *store.DB, opts Options) *Lease {
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Lease{db: db, opts: opts, log: opts.Logger.With("lease", opts.Name, "node", opts.NodeID)}
}

// TTL is how long the lease lasts without renewal.
func (l *Lease) TTL() time.Duration { return l.opts.TTL }

// OnChange calls fn, on the goroutine that noticed, each time this node
// gains (true) or loses (false) the lease. fn must not block or call Hold.
// Register callbacks before Hold or Run first runs.
func (l *Lease) OnChange(fn func(held bool)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onChange = append(l.onChange, fn)
}

// Held reports whether this node holds the lease now: it took or renewed
// it less than TTL ago, counting from before it asked.
func (l *Lease) Held() bool {
	until := l.validUntil.Load()
	return until != 0 && time.Now().UnixNano() < until
}

// Hold reports whether this node holds the lease, taking it when it is
// free or expired and renewing it once a third of the TTL has passed. A
// node that does not hold it only reads until the lease looks free, so
// idle standbys do not write to the database.
func (l *Lease) Hold(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return false, nil
	}
	start := time.Now()
	if l.held && start.Before(l.renewAt) {
		return true, nil
	}
	if !l.held {
		holder, err := l.holder(ctx)
		if err != nil {
			return false, err
		}
		if holder != "" {
			if holder != l.other {
				l.log.InfoContext(ctx, "standing by: another node holds the lease", "holder", holder)
				l.other = holder
			}
			return false, nil
		}
	}
	ok, err := l.acquire(ctx)
	switch {
	case err != nil:
		// The outcome is unknown; the next call asks again.
		l.set(false, start)
		return false, err
	case ok:
		if !l.held {
			l.log.InfoContext(ctx, "holds the lease")
		}
		l.other = ""
		l.renewAt = start.Add(l.opts.TTL / 3)
		l.set(true, start)
		return true, nil
	default:
		if l.held {
			l.log.WarnContext(ctx, "lost the lease to another node")
		}
		l.set(false, start)
		return false, nil
	}
}

// set records whether the lease is held, as of start, and tells the
// callbacks when that changed. The caller holds mu.
func (l *Lease) set(held bool, start time.Time) {
	if held {
		l.validUntil.Store(start.Add(l.opts.TTL).UnixNano())
	} else {
		l.validUntil.Store(0)
	}
	if held == l.held {
		return
	}
	l.held = held
	for _, fn := range l.onChange {
		fn(held)
	}
}

// Run keeps the lease, asking for it every third of the TTL, until ctx is
// done; then it gives the lease up, so another node takes over at once,
// and takes it no more. Errors (the database down) are logged and asked
// again at the next tick.
func (l *Lease) Run(ctx context.Context) error {
	l.mu.Lock()
	l.stopped = false
	l.mu.Unlock()
	tick := time.NewTicker(l.opts.TTL / 3)
	defer tick.Stop()
	failures := 0
	for {
		if _, err := l.Hold(ctx); err != nil && ctx.Err() == nil {
			failures++
			if failures == 1 || failures%30 == 0 {
				l.log.WarnContext(ctx, "asking for the lease failed; asking again", "error", err.Error(), "failures", failures)
			}
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
			l.stop()
			return nil
		case <-tick.C:
		}
	}
}

// stop gives the lease up and keeps Hold from taking it again.
func (l *Lease) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.Release()
}

// Release gives the lease up, if this node holds it, so another node
// takes over without waiting for it to expire. It works after the caller's
// context has ended. A later Hold may take the lease again.
func (l *Lease) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held {
		return
	}
	l.set(false, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE outbox_lease SET expires_at = 0 WHERE name = $1 AND holder = $2",
			l.opts.Name, l.opts.NodeID)
		return err
	})
	if err != nil {
		l.log.WarnContext(ctx, "could not release the lease; it expires on its own", "error", err.Error(), "ttl", l.opts.TTL)
	}
}

// holder returns the node holding an unexpired lease other than this one,
// or "" when the lease is free or this node's.
func (l *Lease) holder(ctx context.Context) (string, error) {
	var holder string
	var expires int64
	err := l.db.QueryRowContext(ctx, "SELECT holder, expires_at FROM outbox_lease WHERE name = $1", l.opts.Name).
		Scan(&holder, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("leader: read lease: %w", store.Classify(err))
	}
	if holder == l.opts.NodeID {
		return "", nil
	}
	now, err := dbNow(ctx, l.db.DB, l.db.Dialect)
	if err != nil {
		return "", err
	}
	if expires <= now {
		return "", nil
	}
	return holder, nil
}

// acquire takes the lease if it is free, expired or already this node's,
// and extends it by the TTL. The conditional upsert makes the check and
// the write one statement, so two nodes racing for a free lease cannot
// both win.
func (l *Lease) acquire(ctx context.Context) (bool, error) {
	var won bool
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		now, err := dbNow(ctx, tx, l.db.Dialect)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`INSERT INTO outbox_lease (name, holder, expires_at) VALUES ($1, $2, $3)
			 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			 WHERE outbox_lease.holder = excluded.holder OR outbox_lease.expires_at <= $4`,
			l.opts.Name, l.opts.NodeID, now+l.opts.TTL.Microseconds(), now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		won = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("leader: acquire lease: %w", err)
	}
	return won, nil
}

// dbNow reads the current time in microseconds from PostgreSQL, whose
// clock all nodes share, so nodes with skewed clocks still agree on when a
// lease expires. SQLite is only ever used by one host, so its clock is
// this process's.
func dbNow(ctx context.Context, q store.Querier, dialect store.Dialect) (int64, error) {
	if dialect != store.Postgres {
		return store.Micros(time.Now()), nil
	}
	var now int64
	err := q.QueryRowContext(ctx, "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)").Scan(&now)
	if err != nil {
		return 0, fmt.Errorf("leader: database clock: %w", store.Classify(err))
	}
	return now, nil
}
