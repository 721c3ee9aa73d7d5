package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/causewayhq/causeway"
)

// GroupTx runs fn like Tx, but in a transaction it may share with other
// GroupTx calls waiting at the same moment: each in a savepoint of its own,
// committed together. It is for small, frequent writes whose commit costs
// more than the write: on SQLite, which commits one writer at a time and
// flushes each commit to disk, the callers of one group pay for one commit
// between them.
//
// A caller's failure rolls back its savepoint and leaves the others alone.
// A failure of the shared transaction itself (its commit, a lost
// connection) makes every caller of the group run again alone, through
// Tx. So, as with Tx, fn must be safe to run more than once, and all its
// effects must go through tx. fn should not take long: the others wait for
// it. AfterCommit works in it as in Tx (a hook of a savepoint that was
// rolled back runs too, which a wake-up tolerates).
func (db *DB) GroupTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	m := &groupMember{fn: fn, done: make(chan error, 1)}
	db.groups.Add(m)
	err := <-m.done
	if m.alone {
		return db.Tx(ctx, fn)
	}
	return Classify(err)
}

// SmallWrite runs fn's few statements, each of which must be right on its
// own (an INSERT that claims a key, an UPDATE that names the state it
// leaves): fn must not rely on them committing together, nor on its error
// undoing the ones that ran. On SQLite they
// run in a transaction shared with the other callers of the moment
// (GroupTx), where every commit waits for the one writer's turn and a
// flush to disk; on PostgreSQL each commits on its own, one round trip and
// no BEGIN or COMMIT, since PostgreSQL runs such writes side by side and
// flushes concurrent commits together itself.
func (db *DB) SmallWrite(ctx context.Context, fn func(q Querier) error) error {
	if db.Dialect == Postgres {
		return Classify(fn(db.DB))
	}
	return db.GroupTx(ctx, func(tx *sql.Tx) error { return fn(tx) })
}

// maxGroup bounds the callers sharing one transaction, and so how long
// other writers wait for it.
const maxGroup = 64

// groupTimeout bounds one group's transaction. It runs apart from its
// callers' contexts, so that one caller giving up does not roll back the
// others.
const groupTimeout = 30 * time.Second

type groupMember struct {
	fn    func(tx *sql.Tx) error
	err   error
	alone bool // run again alone: the shared transaction failed
	done  chan error
}

// commitGroup runs a group's callers in one transaction, each in a
// savepoint, and answers them.
func (db *DB) commitGroup(batch []*groupMember) {
	defer func() {
		// A caller's panic: the transaction is rolled back (see tx), and
		// every caller runs again alone, where the panic is its caller's.
		if r := recover(); r != nil {
			for _, m := range batch {
				m.alone = true
				m.done <- nil
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	if len(batch) == 1 {
		// Alone already: no savepoint needed. Run here all the same, so
		// that while it waits for the writer's turn the next callers
		// queue up for one group.
		m := batch[0]
		m.err = db.tx(ctx, m.fn)
		m.alone = isRetryable(m.err) // Tx retries contention
		m.done <- m.err
		return
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for _, m := range batch {
			if err := member(ctx, tx, m); err != nil {
				return err
			}
		}
		return nil
	})
	for _, m := range batch {
		if err != nil {
			m.alone = true
		}
		m.done <- m.err
	}
}

// member runs one caller in its savepoint, keeping its error in m.err. The
// error it returns is the shared transaction's: a savepoint that could not
// be taken or rolled back.
func member(ctx context.Context, tx *sql.Tx, m *groupMember) (err error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT group_member"); err != nil {
		return err
	}
	if m.err = m.fn(tx); m.err == nil {
		_, err = tx.ExecContext(ctx, "RELEASE SAVEPOINT group_member")
		return err
	}
	if isRetryable(m.err) {
		m.alone = true // contention: Tx retries it, alone
	}
	if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT group_member"); err != nil {
		return fmt.Errorf("%w: %w", causeway.Errorf(causeway.EINTERNAL, "group_rollback", "rolling back a grouped write"), err)
	}
	_, err = tx.ExecContext(ctx, "RELEASE SAVEPOINT group_member")
	return err
}
