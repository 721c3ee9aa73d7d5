package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

func migrations(t *testing.T, dir string) fs.FS {
	t.Helper()
	return os.DirFS(filepath.Join("testdata", "migrations", dir))
}

func migrated(t *testing.T, db *store.DB) {
	t.Helper()
	if err := db.Migrate(context.Background(), "a", migrations(t, "a")); err != nil {
		t.Fatal(err)
	}
}

func TestMigrationsApplyOnceAndPerCapability(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		// Running again is a no-op, not an error.
		migrated(t, db)
		// A second capability migrates with its own version table.
		if err := db.Migrate(ctx, "b", migrations(t, "b")); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"counters", "notes", "others"} {
			if _, err := db.ExecContext(ctx, "SELECT count(*) FROM "+table); err != nil {
				t.Errorf("table %s: %v", table, err)
			}
		}
		var versions int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM schema_a WHERE version_id > 0").Scan(&versions); err != nil {
			t.Fatal(err)
		}
		if versions != 2 {
			t.Errorf("schema_a has %d versions, want 2", versions)
		}
	})
}

func TestTxCommitsOnSuccessAndRollsBackOnError(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", "n1", "kept")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", "n2", "lost"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Tx error = %v, want boom", err)
		}
		func() {
			defer func() { recover() }()
			db.Tx(ctx, func(tx *sql.Tx) error {
				tx.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", "n3", "lost")
				panic("in tx")
			})
		}()
		var ids []string
		rows, err := db.QueryContext(ctx, "SELECT id FROM notes ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			rows.Scan(&id)
			ids = append(ids, id)
		}
		if len(ids) != 1 || ids[0] != "n1" {
			t.Errorf("notes = %v, want [n1]", ids)
		}
	})
}

func TestConcurrentWritersLoseNoUpdate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		if _, err := db.ExecContext(ctx, "INSERT INTO counters (name, n, at) VALUES ($1, 0, 0)", "c"); err != nil {
			t.Fatal(err)
		}
		const workers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					errs <- db.Tx(ctx, func(tx *sql.Tx) error {
						// Lock the row first (as payments do), then read and
						// write: the read must see every earlier commit.
						if _, err := tx.ExecContext(ctx, "UPDATE counters SET at = at + 1 WHERE name = $1", "c"); err != nil {
							return err
						}
						var n int64
						if err := tx.QueryRowContext(ctx, "SELECT n FROM counters WHERE name = $1", "c").Scan(&n); err != nil {
							return err
						}
						_, err := tx.ExecContext(ctx, "UPDATE counters SET n = $1 WHERE name = $2", n+1, "c")
						return err
					})
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var n int64
		db.QueryRowContext(ctx, "SELECT n FROM counters WHERE name = $1", "c").Scan(&n)
		if n != workers*each {
			t.Errorf("counter = %d, want %d", n, workers*each)
		}
	})
}

func TestUniqueViolationIsRecognised(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		insert := func() error {
			_, err := db.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", "dup", "x")
			return err
		}
		if err := insert(); err != nil {
			t.Fatal(err)
		}
		err := insert()
		if !store.IsUniqueViolation(err) {
			t.Errorf("IsUniqueViolation(%v) = false", err)
		}
		if store.IsUnavailable(err) {
			t.Errorf("a constraint violation is not unavailability: %v", err)
		}
	})
}

func TestTimestampsAndBooleansRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		when := time.Date(2026, 3, 29, 1, 30, 0, 123456000, time.UTC)
		if _, err := db.ExecContext(ctx, "INSERT INTO counters (name, n, at) VALUES ($1, $2, $3)", "t", 1, store.Micros(when)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO notes (id, body, pinned) VALUES ($1, $2, $3)", "p", "x", true); err != nil {
			t.Fatal(err)
		}
		var at int64
		db.QueryRowContext(ctx, "SELECT at FROM counters WHERE name = $1", "t").Scan(&at)
		if got := store.FromMicros(at); !got.Equal(when) {
			t.Errorf("time = %v, want %v", got, when)
		}
		var pinned bool
		if err := db.QueryRowContext(ctx, "SELECT pinned FROM notes WHERE id = $1 AND pinned = $2", "p", true).Scan(&pinned); err != nil || !pinned {
			t.Errorf("pinned = %v, %v", pinned, err)
		}
	})
}

func TestDataSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		db, err := store.Open(ctx, store.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		migrated(t, db)
		db.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", "keep", "me")
		// The file and its WAL hold customers' data: this user's only.
		for _, name := range []string{"causeway.db", "causeway.db-wal"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, %v; want 0600", name, fi.Mode().Perm(), err)
			}
		}
		db.Close()
		db, err = store.Open(ctx, store.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		migrated(t, db)
		var body string
		if err := db.QueryRowContext(ctx, "SELECT body FROM notes WHERE id = $1", "keep").Scan(&body); err != nil || body != "me" {
			t.Errorf("after reopen: %q, %v", body, err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		url := storetest.PostgresURL(t)
		db, err := store.Open(ctx, store.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		migrated(t, db)
		db.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", "keep", "me")
		db.Close()
		db, err = store.Open(ctx, store.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var body string
		if err := db.QueryRowContext(ctx, "SELECT body FROM notes WHERE id = $1", "keep").Scan(&body); err != nil || body != "me" {
			t.Errorf("after reopen: %q, %v", body, err)
		}
	})
}

func TestOpenFailsClearlyWhenUnreachable(t *testing.T) {
	ctx := context.Background()
	_, err := store.Open(ctx, store.Config{URL: "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"})
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if got := err.Error(); len(got) == 0 || containsNewline(got) {
		t.Errorf("error should be one line, got %q", got)
	}

	file := filepath.Join(t.TempDir(), "not-a-dir")
	os.WriteFile(file, nil, 0o600)
	if _, err := store.Open(ctx, store.Config{DataDir: file}); err == nil {
		t.Error("Open with a file as data dir succeeded")
	}
}

func containsNewline(s string) bool {
	for _, c := range s {
		if c == '\n' {
			return true
		}
	}
	return false
}

// TestLostPostgresConnectionIsUnavailableThenRecovers cuts the network path
// to PostgreSQL under a live pool: queries fail as EUNAVAILABLE (a 503 for
// the API), and succeed again once the path is back.
func TestLostPostgresConnectionIsUnavailableThenRecovers(t *testing.T) {
	base := testkit.Postgres.URL(t)
	schema := storetest.NewSchema(t, base)
	u := storetest.SchemaURL(t, base, schema)
	proxy := testkit.NewProxy(t, testkit.HostPort(t, u))
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{URL: replaceHost(t, u, proxy.Addr())})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	migrated(t, db)

	proxy.Cut()
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", "x", "y")
		return err
	})
	if causeway.ErrorKind(err) != causeway.EUNAVAILABLE {
		t.Fatalf("with the database cut, Tx error = %v (kind %s), want unavailable", err, causeway.ErrorKind(err))
	}
	proxy.Restore()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = db.PingContext(ctx)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("database did not come back: %v", err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", "after", "ok"); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
}

func TestAfterCommitRunsOnlyOnceCommitted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		ran := 0
		db.Tx(ctx, func(tx *sql.Tx) error {
			db.AfterCommit(tx, func() {
				// The row must be visible to other connections by now.
				var n int
				db.QueryRowContext(ctx, "SELECT COUNT(*) FROM notes WHERE id = 'c'").Scan(&n)
				ran += n
			})
			_, err := tx.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ('c', 'x')")
			return err
		})
		db.Tx(ctx, func(tx *sql.Tx) error {
			db.AfterCommit(tx, func() { ran += 100 })
			return errors.New("roll back")
		})
		if ran != 1 {
			t.Errorf("after-commit hooks ran %d (want 1: once, after the commit, not on rollback)", ran)
		}
	})
}

// A transaction that runs a statement through the cache for the first time
// must not wait for a second connection to prepare it: with every
// connection in such a transaction, none would come free.
func TestPreparedQueriesInTxNeverWaitForAnotherConnection(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		migrated(t, db)
		db.SetMaxOpenConns(1)
		insert := "INSERT INTO notes (id, body) VALUES ($1, $2)"
		for i, id := range []string{"a", "b", "c"} {
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				q := db.PreparedIn(tx)
				if _, err := q.ExecContext(ctx, insert, id, "x"); err != nil {
					return err
				}
				var n int
				if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM notes").Scan(&n); err != nil {
					return err
				}
				if n != i+1 {
					t.Errorf("transaction %d sees %d notes, want %d", i, n, i+1)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		// A rollback takes the prepared statements' writes with it.
		db.Tx(ctx, func(tx *sql.Tx) error {
			db.PreparedIn(tx).ExecContext(ctx, insert, "d", "x")
			return errors.New("roll back")
		})
		var n int
		if err := db.Prepared().QueryRowContext(ctx, "SELECT COUNT(*) FROM notes").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Errorf("notes = %d, want 3", n)
		}
	})
}

// TestPostgresRefusalsOfAValueAreInvalidInput: text PostgreSQL cannot
// store and numbers out of range are the caller's input, EINVALID (422),
// never an internal error. SQLite stores such text as it is.
func TestPostgresRefusalsOfAValueAreInvalidInput(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	migrated(t, db)
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", "nul", "a\x00b")
		return err
	})
	if causeway.ErrorKind(err) != causeway.EINVALID || causeway.ErrorCode(err) != "invalid_text" {
		t.Errorf("NUL in text: %v (kind %s), want EINVALID invalid_text", err, causeway.ErrorKind(err))
	}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", "utf8", "a\xffb")
		return err
	})
	if causeway.ErrorKind(err) != causeway.EINVALID || causeway.ErrorCode(err) != "invalid_text" {
		t.Errorf("invalid UTF-8: %v (kind %s), want EINVALID invalid_text", err, causeway.ErrorKind(err))
	}
	var sum int64
	err = store.Classify(db.QueryRowContext(ctx, "SELECT $1::bigint + $2::bigint", int64(1<<62), int64(1<<62)).Scan(&sum))
	if causeway.ErrorKind(err) != causeway.EINVALID || causeway.ErrorCode(err) != "value_out_of_range" {
		t.Errorf("bigint overflow: %v (kind %s), want EINVALID value_out_of_range", err, causeway.ErrorKind(err))
	}
	if store.IsUnavailable(err) {
		t.Errorf("a refused value is not unavailability: %v", err)
	}
}

// A multi-row INSERT built with Values binds every argument to its own
// column and row on both engines, also past SQLite's old limit of 999
// parameters.
func TestValuesBindsEachArgumentInOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		if _, err := db.Exec(`CREATE TABLE pairs (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		const rows = 1500
		args := make([]any, 0, 2*rows)
		for i := range rows {
			args = append(args, i, fmt.Sprintf("v%d", i))
		}
		if _, err := db.Exec(`INSERT INTO pairs (k, v) VALUES `+db.Dialect.Values(rows, 2), args...); err != nil {
			t.Fatal(err)
		}
		r, err := db.Query(`SELECT k, v FROM pairs ORDER BY k`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		n := 0
		for r.Next() {
			var k int
			var v string
			if err := r.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			if k != n || v != fmt.Sprintf("v%d", n) {
				t.Fatalf("row %d = (%d, %q)", n, k, v)
			}
			n++
		}
		if n != rows {
			t.Fatalf("%d rows, want %d", n, rows)
		}
	})
}
