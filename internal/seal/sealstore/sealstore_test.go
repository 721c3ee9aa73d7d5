package sealstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// The keys of a --secret-key rotation, and one no node is given.
var (
	oldKey   = bytes.Repeat([]byte{1}, 32)
	newKey   = bytes.Repeat([]byte{2}, 32)
	otherKey = bytes.Repeat([]byte{3}, 32)
)

func sealer(t testing.TB, keys ...[]byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// secrets is a table like the capabilities': a secret, and a previous
// secret that is often empty.
var secrets = Table{Name: "secrets", Key: "id", Columns: []string{"secret", "previous"}}

// pair is a row's two values.
type pair struct{ secret, previous string }

// fill creates the table with rows rows, their secrets sealed with key and
// every third one with a previous secret, and returns the plain values by
// id and how many values are sealed.
func fill(t *testing.T, db *store.DB, rows int, key []byte) (map[string]pair, int) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE secrets (id TEXT PRIMARY KEY, secret TEXT NOT NULL, previous TEXT NOT NULL DEFAULT '')`); err != nil {
		t.Fatal(err)
	}
	s := sealer(t, key)
	plain := map[string]pair{}
	values := 0
	for i := range rows {
		id := fmt.Sprintf("row_%04d", i)
		p := pair{secret: "whsec_" + id}
		if i%3 == 0 {
			p.previous = "whsec_previous_" + id
		}
		prev := ""
		if p.previous != "" {
			prev = s.Seal(p.previous)
			values++
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO secrets (id, secret, previous) VALUES ($1, $2, $3)`, id, s.Seal(p.secret), prev); err != nil {
			t.Fatal(err)
		}
		values++
		plain[id] = p
	}
	return plain, values
}

// stored returns the table's values as stored, by id.
func stored(t *testing.T, db *store.DB) map[string]pair {
	t.Helper()
	rows, err := db.Query(`SELECT id, secret, previous FROM secrets`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]pair{}
	for rows.Next() {
		var id string
		var p pair
		if err := rows.Scan(&id, &p.secret, &p.previous); err != nil {
			t.Fatal(err)
		}
		out[id] = p
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// opened opens every stored value with s alone, failing the test if one
// does not open.
func opened(t *testing.T, s *seal.Sealer, values map[string]pair) map[string]pair {
	t.Helper()
	out := map[string]pair{}
	for id, p := range values {
		var o pair
		var err error
		if o.secret, err = s.Open(p.secret); err != nil {
			t.Fatalf("%s's secret: %v", id, err)
		}
		if p.previous != "" {
			if o.previous, err = s.Open(p.previous); err != nil {
				t.Fatalf("%s's previous secret: %v", id, err)
			}
		}
		out[id] = o
	}
	return out
}

func TestResealRewritesEveryValueOfAnOlderKeyOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		plain, values := fill(t, db, 2*Batch+30, oldKey)
		// A value sealed with NEW already, as a node with NEW,OLD seals a
		// secret created during the rotation.
		if _, err := db.ExecContext(ctx, `UPDATE secrets SET secret = $1 WHERE id = 'row_0001'`, sealer(t, newKey).Seal(plain["row_0001"].secret)); err != nil {
			t.Fatal(err)
		}
		values--

		ring := sealer(t, newKey, oldKey)
		n, err := Reseal(ctx, db, ring, secrets)
		if err != nil || n != values {
			t.Fatalf("Reseal = %d, %v; want %d", n, err, values)
		}
		after := stored(t, db)
		if got := opened(t, sealer(t, newKey), after); !maps.Equal(got, plain) {
			t.Error("a value changed, or does not open with NEW alone")
		}
		if n, err := Reseal(ctx, db, ring, secrets); n != 0 || err != nil {
			t.Errorf("a second Reseal = %d, %v; want 0", n, err)
		}
		if again := stored(t, db); !maps.Equal(again, after) {
			t.Error("a second Reseal rewrote values")
		}
		if n, err := Reseal(ctx, db, sealer(t, newKey), secrets); n != 0 || err != nil {
			t.Errorf("Reseal with NEW alone = %d, %v; want 0", n, err)
		}
	})
}

func TestResealPagesThroughACompositeKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE pairs (a TEXT NOT NULL, b TEXT NOT NULL, v TEXT NOT NULL,
			PRIMARY KEY (a, b))`); err != nil {
			t.Fatal(err)
		}
		// More rows than a batch under one a, so a batch ends inside it
		// and the next must go on from its b.
		old := sealer(t, oldKey)
		plain := map[string]string{}
		for i := range Batch + 50 {
			a, b := "a0", fmt.Sprintf("b%04d", i)
			if i >= Batch+20 {
				a = "a1"
			}
			plain[a+" "+b] = "secret " + a + b
			if _, err := db.ExecContext(ctx, `INSERT INTO pairs (a, b, v) VALUES ($1, $2, $3)`, a, b, old.Seal(plain[a+" "+b])); err != nil {
				t.Fatal(err)
			}
		}
		table := Table{Name: "pairs", Key: "a, b", Columns: []string{"v"}}
		if n, err := Reseal(ctx, db, sealer(t, newKey, oldKey), table); n != len(plain) || err != nil {
			t.Fatalf("Reseal = %d, %v; want %d", n, err, len(plain))
		}
		rows, err := db.QueryContext(ctx, `SELECT a, b, v FROM pairs`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		onlyNew := sealer(t, newKey)
		for rows.Next() {
			var a, b, v string
			if err := rows.Scan(&a, &b, &v); err != nil {
				t.Fatal(err)
			}
			if got, err := onlyNew.Open(v); err != nil || got != plain[a+" "+b] {
				t.Errorf("%s %s: %q, %v", a, b, got, err)
			}
		}
	})
}

func TestResealRefusesAValueNoKeyOpens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fill(t, db, 5, oldKey)
		if _, err := db.ExecContext(ctx, `UPDATE secrets SET previous = $1 WHERE id = 'row_0004'`, sealer(t, otherKey).Seal("x")); err != nil {
			t.Fatal(err)
		}
		_, err := Reseal(ctx, db, sealer(t, newKey, oldKey), secrets)
		if !errors.Is(err, seal.ErrWrongKey) || !strings.Contains(err.Error(), "--secret-key") ||
			!strings.Contains(err.Error(), "secrets.previous of row_0004") || strings.Contains(err.Error(), "\n") {
			t.Errorf("Reseal over a value of another key: %v, want one line naming the row and --secret-key", err)
		}

		if _, err := db.ExecContext(ctx, `UPDATE secrets SET previous = 'in the clear' WHERE id = 'row_0004'`); err != nil {
			t.Fatal(err)
		}
		if _, err := Reseal(ctx, db, sealer(t, newKey, oldKey), secrets); err == nil {
			t.Error("Reseal accepted a value in the clear")
		}
		plainToo := secrets
		plainToo.SealPlain = true
		if _, err := Reseal(ctx, db, sealer(t, newKey, oldKey), plainToo); err != nil {
			t.Fatalf("Reseal with SealPlain: %v", err)
		}
		if got := opened(t, sealer(t, newKey), stored(t, db))["row_0004"].previous; got != "in the clear" {
			t.Errorf("the value in the clear is sealed as %q", got)
		}
	})
}

// barrier makes parties callers of wait return together, once each has
// called it; t fails, and wait returns, if they do not all come within a
// minute (which only bounds a broken test).
func barrier(t *testing.T, parties int) func() {
	var wg sync.WaitGroup
	wg.Add(parties)
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	return func() {
		wg.Done()
		select {
		case <-all:
		case <-time.After(time.Minute):
			t.Error("the other re-sealer never read its batch")
		}
	}
}

// once returns f that calls g the first time only.
func once(g func()) func() {
	var o sync.Once
	return func() { o.Do(g) }
}

// TestNodesResealingAtOnceRewriteEachValueOnce: two nodes both read the
// first batch before either rewrites it; each value is rewritten by one of
// them, so their counts add up to the values, and every value is the one
// the winner wrote.
func TestNodesResealingAtOnceRewriteEachValueOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		plain, values := fill(t, db, Batch+40, oldKey)
		const nodes = 2
		bothRead := barrier(t, nodes)
		counts := make([]int, nodes)
		errs := make([]error, nodes)
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() {
				counts[i], errs[i] = reseal(ctx, db, sealer(t, newKey, oldKey), secrets, once(bothRead))
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("node %d: %v", i, err)
			}
		}
		if counts[0]+counts[1] != values {
			t.Errorf("the nodes rewrote %v values, want %d between them", counts, values)
		}
		if got := opened(t, sealer(t, newKey), stored(t, db)); !maps.Equal(got, plain) {
			t.Error("a value changed, or does not open with NEW alone")
		}
	})
}

// TestAChangeBetweenReadAndRewriteIsKept: a secret rotated after Reseal
// read its row keeps the rotation's values; the row's older value is
// re-sealed by the next run.
func TestAChangeBetweenReadAndRewriteIsKept(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		plain, values := fill(t, db, 10, oldKey)
		// A node still sealing with OLD rotates row_0002's secret: the new
		// one sealed with OLD, the old one kept as the previous.
		before := stored(t, db)["row_0002"]
		rotate := func() {
			if _, err := db.ExecContext(ctx, `UPDATE secrets SET secret = $1, previous = $2 WHERE id = 'row_0002'`,
				sealer(t, oldKey).Seal("whsec_rotated"), before.secret); err != nil {
				t.Error(err)
			}
		}
		ring := sealer(t, newKey, oldKey)
		n, err := reseal(ctx, db, ring, secrets, once(rotate))
		if err != nil || n != values-1 {
			t.Fatalf("Reseal = %d, %v; want %d (all but the rotated row's secret)", n, err, values-1)
		}
		plain["row_0002"] = pair{secret: "whsec_rotated", previous: plain["row_0002"].secret}
		if got := opened(t, sealer(t, newKey, oldKey), stored(t, db)); !maps.Equal(got, plain) {
			t.Errorf("row_0002 = %+v, want the rotation's %+v", got["row_0002"], plain["row_0002"])
		}
		if n, err := Reseal(ctx, db, ring, secrets); n != 2 || err != nil {
			t.Errorf("the next Reseal = %d, %v; want the rotated row's 2 values", n, err)
		}
		if got := opened(t, sealer(t, newKey), stored(t, db)); !maps.Equal(got, plain) {
			t.Error("after the next Reseal, a value changed or does not open with NEW alone")
		}
	})
}
