// Package sealstore re-seals the sealed values (package seal) a table
// holds, after a --secret-key rotation: each capability that keeps sealed
// secrets runs Reseal over its table when a node starts, so that once every
// node has started with "NEW,OLD", nothing needs OLD any more.
package sealstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
)

// Table names a table's sealed columns.
type Table struct {
	// Name is the table; Key is its primary key: a text column, or
	// several separated by commas as in a PRIMARY KEY clause
	// ("principal, idem_key").
	Name, Key string
	// Columns hold sealed values; an empty value means none and stays.
	Columns []string
	// SealPlain seals values stored in the clear (by versions that did not
	// seal them) instead of refusing them.
	SealPlain bool
}

// Batch is how many rows Reseal reads, and rewrites in one transaction, at
// a time.
const Batch = 100

// Reseal rewrites every value in t's columns that sealer's current key did
// not seal, sealed with that key, and returns how many values it rewrote.
// It opens every value on the way: one that opens with none of sealer's
// keys is an error naming the row and --secret-key (see seal.ErrWrongKey),
// and the node should not start.
//
// A row is rewritten only if it still holds what was read: nodes
// re-sealing at once do not undo each other, and a change committed
// meanwhile (a secret rotation through the API) is kept; what it wrote is
// re-sealed by a later run if need be.
func Reseal(ctx context.Context, db *store.DB, sealer *seal.Sealer, t Table) (int, error) {
	return reseal(ctx, db, sealer, t, nil)
}

// reseal is Reseal; tests make afterRead pause between reading a batch and
// rewriting it.
//
// It is long because one batch's read, re-seal and conditional rewrite
// share the key columns' placeholders, built once above the loop.
func reseal(ctx context.Context, db *store.DB, sealer *seal.Sealer, t Table, afterRead func()) (int, error) {
	cols := len(t.Columns)
	keys := strings.Split(t.Key, ",")
	for i := range keys {
		keys[i] = strings.TrimSpace(keys[i])
	}
	nk := len(keys)
	// Rows are read in key order, a batch at a time after the last key
	// read; a composite key compares as a row value, which SQLite and
	// PostgreSQL both order column by column.
	params := make([]string, nk)
	for i := range params {
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	keyList := strings.Join(keys, ", ")
	query := fmt.Sprintf("SELECT %s, %s FROM %s WHERE (%s) > (%s) ORDER BY %s LIMIT %d",
		keyList, strings.Join(t.Columns, ", "), t.Name, keyList, strings.Join(params, ", "), keyList, Batch)
	set := make([]string, cols)
	var where []string
	for i, k := range keys {
		where = append(where, fmt.Sprintf("%s = $%d", k, cols+1+i))
	}
	for i, c := range t.Columns {
		set[i] = fmt.Sprintf("%s = $%d", c, i+1)
		where = append(where, fmt.Sprintf("%s = $%d", c, cols+nk+1+i))
	}
	update := fmt.Sprintf("UPDATE %s SET %s WHERE %s", t.Name, strings.Join(set, ", "), strings.Join(where, " AND "))

	total := 0
	for after := make([]string, nk); ; {
		batch, err := readBatch(ctx, db, query, after, nk, cols)
		if err != nil {
			return total, err
		}
		if afterRead != nil {
			afterRead()
		}
		// args are the new values, the key, then the values read.
		type rewrite struct {
			args   []any
			values int
		}
		var rewrites []rewrite
		for _, row := range batch {
			key, values := row[:nk], row[nk:]
			r := rewrite{args: make([]any, 0, 2*cols+nk)}
			for i, v := range values {
				nv, changed, err := resealValue(sealer, v, t.SealPlain)
				if err != nil {
					return total, fmt.Errorf("%s.%s of %s: %w", t.Name, t.Columns[i], strings.Join(key, " "), err)
				}
				if changed {
					r.values++
				}
				r.args = append(r.args, nv)
			}
			if r.values > 0 {
				for _, k := range key {
					r.args = append(r.args, k)
				}
				for _, v := range values {
					r.args = append(r.args, v)
				}
				rewrites = append(rewrites, r)
			}
		}
		if len(rewrites) > 0 {
			n := 0
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				n = 0 // again if the transaction is retried
				for _, r := range rewrites {
					res, err := tx.ExecContext(ctx, update, r.args...)
					if err != nil {
						return err
					}
					if k, _ := res.RowsAffected(); k == 1 {
						n += r.values
					}
				}
				return nil
			})
			if err != nil {
				return total, err
			}
			total += n
		}
		if len(batch) < Batch {
			return total, nil
		}
		after = batch[len(batch)-1][:nk]
	}
}

// readBatch returns up to Batch rows after the key after, each as its nk
// key columns and then its cols values.
func readBatch(ctx context.Context, db *store.DB, query string, after []string, nk, cols int) ([][]string, error) {
	args := make([]any, len(after))
	for i, a := range after {
		args[i] = a
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		row := make([]string, nk+cols)
		dest := make([]any, len(row))
		for i := range row {
			dest[i] = &row[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, store.Classify(err)
		}
		out = append(out, row)
	}
	return out, store.Classify(rows.Err())
}

// resealValue is what v should be stored as, and whether that differs.
func resealValue(sealer *seal.Sealer, v string, sealPlain bool) (string, bool, error) {
	switch {
	case v == "":
		return v, false, nil
	case sealPlain && !seal.IsSealed(v):
		return sealer.Seal(v), true, nil
	}
	return sealer.Reseal(v)
}
