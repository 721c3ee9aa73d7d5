package store

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// MigrateDir is Migrate with the migrations in directory dir of files,
// as a capability embeds them (//go:embed migrations/*.sql).
func (db *DB) MigrateDir(ctx context.Context, name string, files fs.FS, dir string) error {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		return err
	}
	return db.Migrate(ctx, name, sub)
}

// Migrate applies the embedded goose migrations of one capability. Each
// capability keeps its own version table (schema_<name>), so packages own
// their tables and migrate independently. The SQL must be portable: TEXT,
// BIGINT, INTEGER and BOOLEAN columns, timestamps as BIGINT microseconds
// (see Micros).
//
// On PostgreSQL an advisory session lock makes nodes that start together
// migrate one after another.
func (db *DB) Migrate(ctx context.Context, name string, migrations fs.FS) error {
	dialect := goose.DialectSQLite3
	var opts []goose.ProviderOption
	opts = append(opts, goose.WithTableName("schema_"+name))
	if db.Dialect == Postgres {
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID(name)))
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.DB, migrations, opts...)
	if err != nil {
		return fmt.Errorf("migrations %s: %w", name, err)
	}
	if db.Dialect == SQLite {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations %s: %w", name, Classify(err))
	}
	return nil
}

// lockID derives a stable advisory lock id per capability.
func lockID(name string) int64 {
	var h int64 = 5381
	for _, c := range name {
		h = h*33 + int64(c)
	}
	return 0x43415553<<16 ^ h
}
