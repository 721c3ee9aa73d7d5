// Package storetest runs one test body against every database backend: a
// fresh SQLite file always, and a fresh PostgreSQL schema when
// CAUSEWAY_TEST_DATABASE_URL is set (required in CI). Capability packages
// use Each so their tests prove both backends behave the same, the way
// River's driver conformance suite does.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/testkit"
)

// Each runs fn as a subtest per backend, named "sqlite" and "postgres".
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, OpenSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, OpenPostgres(t)) })
}

// OpenSQLite opens a database file in a temporary directory, closed when t
// ends.
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{DataDir: testkit.DataDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// OpenPostgres opens the test PostgreSQL in a schema of its own, dropped when
// t ends; it skips, or fails in CI, when no PostgreSQL is configured.
func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{URL: PostgresURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresURL creates a fresh schema in the test PostgreSQL and returns a URL
// whose connections use it; the schema is dropped when t ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := testkit.Postgres.URL(t)
	return SchemaURL(t, base, NewSchema(t, base))
}

// NewSchema creates a uniquely named schema in the database at base and
// drops it when t ends.
func NewSchema(t testing.TB, base string) string {
	t.Helper()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	return schema
}

// SchemaURL returns base with its search_path set to schema.
func SchemaURL(t testing.TB, base, schema string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
