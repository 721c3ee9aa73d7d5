package store

import (
	"context"
	"database/sql"
)

// Scanner is a row to read: *sql.Row or *sql.Rows, so one scan function
// reads a row from either.
type Scanner interface {
	Scan(dest ...any) error
}

// Querier runs statements: *sql.DB, *sql.Tx or Queries, so one function
// can run on the pool or in a transaction.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}
