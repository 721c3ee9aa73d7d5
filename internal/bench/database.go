package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"time"

	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// freshDB is an empty database for one measurement, opened through
// store.Open so it has the platform's pragmas and pool settings.
type freshDB struct {
	*store.DB
	remove func() error
}

// openFresh opens an empty database: a SQLite file in a new temporary
// directory, or, when databaseURL is set, a new schema in that PostgreSQL
// database, reached through the search_path URL parameter. Close removes
// the directory or drops the schema.
func openFresh(ctx context.Context, databaseURL string) (*freshDB, error) {
	if databaseURL == "" {
		dir, err := os.MkdirTemp("", "causeway-bench-")
		if err != nil {
			return nil, err
		}
		db, err := store.Open(ctx, store.Config{DataDir: dir})
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		return &freshDB{DB: db, remove: func() error { return os.RemoveAll(dir) }}, nil
	}

	schemaURL, drop, err := freshSchema(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, store.Config{URL: schemaURL})
	if err != nil {
		return nil, errors.Join(err, drop())
	}
	return &freshDB{DB: db, remove: drop}, nil
}

// freshSchema creates a new schema in the PostgreSQL database at
// databaseURL and returns a URL that reaches it through the search_path
// URL parameter, for code that opens the database itself (a whole node).
// drop drops the schema, even after ctx is done.
func freshSchema(ctx context.Context, databaseURL string) (schemaURL string, drop func() error, err error) {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("database URL must be postgres://…")
	}
	admin, err := store.Open(ctx, store.Config{URL: databaseURL})
	if err != nil {
		return "", nil, err
	}
	// An id is lower-case letters, digits and an underscore: a valid
	// unquoted identifier, unique, and sorted by the time of the run.
	schema := "causeway_" + ids.New("bench")
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop = func() error {
		// Drop even when the run was interrupted.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		return errors.Join(err, admin.Close())
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// Close closes the database and removes it.
func (db *freshDB) Close() error {
	return errors.Join(db.DB.Close(), db.remove())
}

// rawCommits measures the baseline of the database benchmarks: one
// transaction per INSERT of one small row into a fresh database, through
// the same store.DB.Tx the platform uses (on SQLite that includes the
// store's writer queue), under the same load bounds.
func rawCommits(ctx context.Context, opts Options) (load, error) {
	db, err := openFresh(ctx, opts.DatabaseURL)
	if err != nil {
		return load{}, err
	}
	defer db.Close()
	// Shaped like the platform's own rows: a prefixed text id and a
	// microsecond timestamp.
	if _, err := db.ExecContext(ctx, `CREATE TABLE bench_rows (id TEXT PRIMARY KEY, created_at BIGINT NOT NULL)`); err != nil {
		return load{}, err
	}
	return runLoad(ctx, opts, func(ctx context.Context, _ *rand.Rand) error {
		return db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO bench_rows (id, created_at) VALUES ($1, $2)`,
				ids.New("row"), store.Micros(time.Now()))
			return err
		})
	})
}

// rawName names a baseline figure after the database, e.g.
// raw_sqlite_commits_per_s.
func rawName(opts Options, what string) string {
	dialect := store.SQLite
	if opts.DatabaseURL != "" {
		dialect = store.Postgres
	}
	return "raw_" + string(dialect) + "_" + what
}
