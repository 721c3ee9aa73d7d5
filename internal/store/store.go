// Package store opens the platform's database: an embedded SQLite file by
// default, or PostgreSQL when a URL is given. Both are reached through
// database/sql with the same SQL ($1 placeholders, portable column types), so
// every capability package writes its queries once. Each capability owns its
// tables and brings its own embedded goose migrations (see Migrate).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/batch"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the platform's database handle.
type DB struct {
	*sql.DB
	Dialect Dialect
	// Location describes where the data lives, without credentials
	// (a file path or host:port/database), for status pages and errors.
	Location string

	// writeMu serializes write transactions on SQLite. SQLite allows one
	// writer at a time; queuing writers here is much faster and fairer than
	// letting them spin in SQLite's busy handler.
	writeMu sync.Mutex

	stmts     sync.Map // query -> *sql.Stmt, see Stmt
	preparing sync.Map // query -> true while Queries prepares it
	// afterCommit holds, per open transaction of Tx, what to run once it
	// commits (see AfterCommit).
	afterCommit sync.Map // *sql.Tx -> *[]func()

	groups batch.Queue[*groupMember] // the callers of GroupTx waiting for a transaction
}

// Config selects the database. With URL empty, a SQLite file named
// causeway.db is opened (and created) in DataDir.
type Config struct {
	URL     string
	DataDir string
}

// Open opens and pings the configured database. It does not run migrations.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.URL != "" {
		return openPostgres(ctx, cfg.URL)
	}
	return openSQLite(ctx, cfg.DataDir)
}

func newDB(sqlDB *sql.DB, dialect Dialect, location string) *DB {
	db := &DB{DB: sqlDB, Dialect: dialect, Location: location}
	db.groups = batch.Queue[*groupMember]{Max: maxGroup, Run: db.commitGroup}
	return db
}

func openSQLite(ctx context.Context, dataDir string) (*DB, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, "causeway.db")
	// The file holds customers' data and sealed secrets: readable by this
	// user only. SQLite creates its -wal and -shm files with the same mode.
	// An existing file keeps the mode its operator gave it.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	// WAL lets readers run beside the writer. synchronous(FULL) flushes every
	// commit's WAL to disk before the commit returns, so an acknowledged
	// payment survives a power cut, not only a process crash.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(30000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	// Ping does not touch the file; a read does, and fails early on an
	// unreadable or corrupt file.
	if _, err := db.ExecContext(ctx, "SELECT count(*) FROM sqlite_master"); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return newDB(db, SQLite, path), nil
}

func openPostgres(ctx context.Context, rawURL string) (*DB, error) {
	loc := redactURL(rawURL)
	db, err := sql.Open("pgx", rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", loc, err)
	}
	// As many idle connections as open ones: a pool that closes what it
	// cannot keep idle opens a new server process for the next burst, and
	// under load that churn costs more than the queries.
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxLifetime(30 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres %s: %w", loc, firstLine(err))
	}
	return newDB(db, Postgres, loc), nil
}

// redactURL keeps host, port and database of a connection URL and drops
// credentials and parameters.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Host + u.Path
}

func firstLine(err error) error {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		return errors.New(msg[:i])
	}
	return err
}

// Tx runs fn in a transaction and commits it if fn returns nil. Transactions
// that fail because of write contention (SQLite busy, PostgreSQL
// serialization failure or deadlock) are retried a few times, so fn must be
// safe to run again: all its effects go through tx.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	const attempts = 5
	var err error
	for i := range attempts {
		err = db.tx(ctx, fn)
		if err == nil || !isRetryable(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(i+1) * 5 * time.Millisecond)
	}
	return Classify(err)
}

func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	if db.Dialect == SQLite {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	hooks := &[]func(){}
	db.afterCommit.Store(tx, hooks)
	defer db.afterCommit.Delete(tx)
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
		if err != nil {
			tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return err
	}
	for _, f := range *hooks {
		f()
	}
	return nil
}

// AfterCommit runs f once tx, a transaction of Tx, has committed; not at
// all if it rolls back (or is retried: the retry registers its own). Code
// that writes inside a caller's transaction uses it to act on the commit,
// e.g. to wake the outbox relay when its rows are visible.
func (db *DB) AfterCommit(tx *sql.Tx, f func()) {
	if hooks, ok := db.afterCommit.Load(tx); ok {
		h := hooks.(*[]func())
		*h = append(*h, f)
	}
}

func isRetryable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}

// IsUniqueViolation reports whether err is a unique or primary-key
// constraint violation on either engine.
func IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return false
}

// Classify turns an error that means "the database cannot be reached" into a
// causeway EUNAVAILABLE error, so the HTTP layer answers 503 instead of 500,
// and PostgreSQL's refusals of a value into EINVALID (422): text it cannot
// store (NUL, invalid UTF-8: invalid_text) and numbers out of range
// (value_out_of_range). The text rule and the money bounds refuse such
// input before any SQL runs; this is the backstop. Other errors, nil
// included, are returned unchanged.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var ce *causeway.Error
	if errors.As(err, &ce) {
		return err
	}
	if IsUnavailable(err) {
		return &unavailableError{err: err}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "22021", "22P05": // character_not_in_repertoire, untranslatable_character
			return &classifiedError{err: err, as: causeway.Errorf(causeway.EINVALID, "invalid_text",
				"the text cannot be stored: it must be valid UTF-8 without NUL characters")}
		case "22003": // numeric_value_out_of_range
			return &classifiedError{err: err, as: causeway.Errorf(causeway.EINVALID, "value_out_of_range",
				"a number is out of the range the bank can store")}
		}
	}
	return err
}

// classifiedError keeps the database's error for the logs and reads as a
// domain error for the HTTP layer.
type classifiedError struct {
	err error
	as  *causeway.Error
}

func (e *classifiedError) Error() string   { return e.err.Error() }
func (e *classifiedError) Unwrap() []error { return []error{e.err, e.as} }

type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() []error {
	return []error{e.err, causeway.Errorf(causeway.EUNAVAILABLE, "database_unavailable", "the database is unavailable; try again shortly")}
}

// IsUnavailable reports whether err means the database could not be reached
// (connection refused or lost), as opposed to a problem with the statement.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var ce *causeway.Error
	if errors.As(err, &ce) {
		return ce.Kind == causeway.EUNAVAILABLE
	}
	if errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-03: admin shutdown, crash
		// shutdown, cannot connect now.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P")
	}
	var ce2 *pgconn.ConnectError
	if errors.As(err, &ce2) {
		return true
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "broken pipe", "connection reset", "unexpected EOF", "conn closed", "failed to connect", "bad connection"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// Micros converts t to the integer stored in timestamp columns: microseconds
// since the Unix epoch, UTC. Integers sort and compare the same way on both
// engines, unlike their native time types.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// FromMicros is the inverse of Micros.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// Stmt returns a prepared statement for query, prepared once and kept for
// the life of the DB. For hot read paths: SQLite spends more time parsing a
// short statement than running it. database/sql prepares it on each pooled
// connection as needed.
func (db *DB) Stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := db.stmts.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, Classify(err)
	}
	if prev, loaded := db.stmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// Queries runs statements through the DB's statement cache (see Stmt), on
// the pool or in one transaction. It has the methods of *sql.DB and *sql.Tx
// that take a query string, so code written against those can use it
// unchanged; only statements with a fixed text belong in it, as each text
// is prepared and kept for the life of the DB.
type Queries struct {
	db *DB
	tx *sql.Tx
}

// Prepared returns Queries that run on the pool.
func (db *DB) Prepared() Queries { return Queries{db: db} }

// PreparedIn returns Queries that run in tx, a transaction of db.
func (db *DB) PreparedIn(tx *sql.Tx) Queries { return Queries{db: db, tx: tx} }

// stmt returns query's prepared statement, or nil to run it unprepared.
func (q Queries) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if q.tx == nil {
		return q.db.Stmt(ctx, query)
	}
	if s, ok := q.db.stmts.Load(query); ok {
		// The transaction's copy is prepared once per connection too, and
		// closed with the transaction.
		return q.tx.StmtContext(ctx, s.(*sql.Stmt)), nil
	}
	// Preparing on the pool takes a second connection, which a transaction
	// must not wait for: when every connection is in a transaction doing
	// the same, none comes free. Run this one unprepared and prepare it
	// for the next, once a connection is free.
	if _, busy := q.db.preparing.LoadOrStore(query, true); !busy {
		go func() {
			defer q.db.preparing.Delete(query)
			q.db.Stmt(context.Background(), query) // on error, the next miss tries again
		}()
	}
	return nil, nil
}

// ExecContext runs query's prepared statement.
func (q Queries) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := q.stmt(ctx, query)
	switch {
	case err != nil:
		return nil, err
	case s == nil:
		return q.tx.ExecContext(ctx, query, args...)
	}
	return s.ExecContext(ctx, args...)
}

// QueryContext runs query's prepared statement.
func (q Queries) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := q.stmt(ctx, query)
	switch {
	case err != nil:
		return nil, err
	case s == nil:
		return q.tx.QueryContext(ctx, query, args...)
	}
	return s.QueryContext(ctx, args...)
}

// QueryRowContext runs query's prepared statement.
func (q Queries) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s, err := q.stmt(ctx, query); err == nil && s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	// Unprepared. When preparing failed, this reports the error (a *sql.Row
	// cannot be made with one), or succeeds after all.
	if q.tx != nil {
		return q.tx.QueryRowContext(ctx, query, args...)
	}
	return q.db.QueryRowContext(ctx, query, args...)
}
