package audit_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

var operator = auth.OperatorCaller(auth.AdminTokenOperator)

// trail migrates db and returns its trail.
func trail(t *testing.T, db *store.DB) *audit.Trail {
	t.Helper()
	if err := audit.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return audit.New(db)
}

// operatorCtx is a request of the admin token's holder with an origin.
func operatorCtx(requestID string) context.Context {
	ctx := auth.WithCaller(context.Background(), operator)
	return audit.WithOrigin(ctx, audit.Origin{RequestID: requestID, ClientAddr: "192.0.2.7"})
}

// record appends c in a transaction of its own.
func record(t *testing.T, db *store.DB, ctx context.Context, c audit.Change) {
	t.Helper()
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return audit.Record(ctx, tx, c) }); err != nil {
		t.Fatal(err)
	}
}

// all lists the whole trail, newest first, page by page.
func all(t *testing.T, tr *audit.Trail, f audit.Filter) []*audit.Entry {
	t.Helper()
	var out []*audit.Entry
	cursor := ""
	for range 1000 {
		pg, err := tr.List(context.Background(), operator, f, 7, cursor)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pg.Data...)
		if cursor = pg.NextCursor; cursor == "" {
			return out
		}
	}
	t.Fatal("the list never ended")
	return nil
}

func verify(t *testing.T, tr *audit.Trail) *audit.Verdict {
	t.Helper()
	v, err := tr.Verify(context.Background(), operator)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAnEntryNamesWhoWhatTargetAndOrigin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		tr := trail(t, db)
		record(t, db, operatorCtx("req_1"), audit.Change{Action: "app.approve", TargetType: "app", TargetID: "app_1",
			Before: map[string]string{"status": "pending_approval"}, After: map[string]string{"status": "active"}})
		// An explicit By wins over the context's caller; no origin: none.
		record(t, db, context.Background(), audit.Change{Action: "spi.activate", TargetType: "spi_registration", TargetID: "spr_1",
			ProposalID: "prp_1", Confirms: "prp_0", By: auth.OperatorCaller("op_2")})
		got := all(t, tr, audit.Filter{})
		if len(got) != 2 {
			t.Fatalf("%d entries, want 2", len(got))
		}
		e := got[1] // newest first
		if e.Seq != 1 || e.Actor != "operator:admin-token" || e.Action != "app.approve" || e.TargetType != "app" ||
			e.TargetID != "app_1" || e.RequestID != "req_1" || e.ClientAddr != "192.0.2.7" || e.PrevHash != "" ||
			string(e.Before) != `{"status":"pending_approval"}` || string(e.After) != `{"status":"active"}` {
			t.Errorf("first entry = %+v", e)
		}
		if e.Hash != e.ComputeHash() || len(e.Hash) != 64 {
			t.Errorf("hash %q, computed %q", e.Hash, e.ComputeHash())
		}
		e = got[0]
		if e.Seq != 2 || e.Actor != "operator:op_2" || e.PrevHash != got[1].Hash || e.Before != nil || e.After != nil ||
			e.ProposalID != "prp_1" || e.Confirms != "prp_0" || e.RequestID != "" {
			t.Errorf("second entry = %+v", e)
		}
		// Read back from its JSON (an export's line), an entry without
		// summaries hashes as stored.
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var decoded audit.Entry
		if err := json.Unmarshal(b, &decoded); err != nil || decoded.ComputeHash() != e.Hash {
			t.Errorf("decoded from %s: hash %s, want %s (%v)", b, decoded.ComputeHash(), e.Hash, err)
		}
		if v := verify(t, tr); !v.OK || v.Entries != 2 || v.Head != e.Hash {
			t.Errorf("verify = %+v", v)
		}
	})
}

func TestARolledBackChangeLeavesNoEntry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		tr := trail(t, db)
		ctx := operatorCtx("req_1")
		failed := errors.New("the change failed after recording")
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if err := audit.Record(ctx, tx, audit.Change{Action: "app.suspend", TargetType: "app", TargetID: "app_1"}); err != nil {
				return err
			}
			return failed
		})
		if !errors.Is(err, failed) {
			t.Fatalf("tx = %v", err)
		}
		record(t, db, ctx, audit.Change{Action: "app.approve", TargetType: "app", TargetID: "app_1"})
		got := all(t, tr, audit.Filter{})
		if len(got) != 1 || got[0].Action != "app.approve" || got[0].Seq != 1 {
			t.Fatalf("entries = %+v", got)
		}
		if v := verify(t, tr); !v.OK {
			t.Errorf("verify = %+v", v)
		}
	})
}

func TestTheBanksOwnProcessIsNotRecorded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		tr := trail(t, db)
		bank := auth.WithCaller(context.Background(), auth.BankProcess())
		record(t, db, bank, audit.Change{Action: "dataset.publish", TargetType: "dataset", TargetID: "ds_1"})
		record(t, db, context.Background(), audit.Change{Action: "grant.create", TargetType: "app", TargetID: "app_1", By: auth.BankProcess()})
		if got := all(t, tr, audit.Filter{}); len(got) != 0 {
			t.Fatalf("entries = %+v", got)
		}
		// A change with no caller at all is recorded as nobody's: a
		// forgotten caller shows.
		record(t, db, context.Background(), audit.Change{Action: "grant.create", TargetType: "app", TargetID: "app_1"})
		if got := all(t, tr, audit.Filter{}); len(got) != 1 || got[0].Actor != "nobody" {
			t.Fatalf("entries = %+v", got)
		}
	})
}

func TestOnlyTheBankReadsTheTrail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		tr := trail(t, db)
		ctx := context.Background()
		for _, c := range []auth.Caller{{}, auth.AppCaller("app_1"), auth.DeveloperCaller("dev_1")} {
			_, err := tr.List(ctx, c, audit.Filter{}, 0, "")
			_, verr := tr.Verify(ctx, c)
			eerr := tr.Export(ctx, c, audit.Filter{}, 0, 0, func(*audit.Entry) error { return nil })
			for _, err := range []error{err, verr, eerr} {
				if causeway.ErrorCode(err) != "bank_only" {
					t.Errorf("%s: %v, want bank_only", c, err)
				}
			}
		}
	})
}

// seed records n entries: actions app.approve, app.suspend and
// dataset_access.approve in turn, on targets app_0.. app_2, by operators
// op_0 and op_1 in turn.
func seed(t *testing.T, db *store.DB, n int) {
	t.Helper()
	actions := []string{"app.approve", "app.suspend", "dataset_access.approve"}
	for i := range n {
		ctx := auth.WithCaller(context.Background(), auth.OperatorCaller(fmt.Sprintf("op_%d", i%2)))
		record(t, db, ctx, audit.Change{Action: actions[i%3], TargetType: "app", TargetID: fmt.Sprintf("app_%d", i%3)})
	}
}

func TestFiltersNarrowTheTrail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		tr := trail(t, db)
		seed(t, db, 12)
		record(t, db, operatorCtx("req_x"), audit.Change{Action: "dataset_access_x.approve", TargetType: "payment", TargetID: "pay_1"})
		everything := all(t, tr, audit.Filter{})
		if len(everything) != 13 {
			t.Fatalf("%d entries, want 13", len(everything))
		}
		for i := 1; i < len(everything); i++ {
			if everything[i].Seq != everything[i-1].Seq-1 {
				t.Fatalf("not newest first: %d after %d", everything[i].Seq, everything[i-1].Seq)
			}
		}
		mid := everything[6].At
		cases := map[string]struct {
			f    audit.Filter
			want func(e *audit.Entry) bool
		}{
			"operator":        {audit.Filter{Operator: "op_1"}, func(e *audit.Entry) bool { return e.Actor == "operator:op_1" }},
			"target":          {audit.Filter{TargetID: "app_2"}, func(e *audit.Entry) bool { return e.TargetID == "app_2" }},
			"target type":     {audit.Filter{TargetType: "payment"}, func(e *audit.Entry) bool { return e.TargetType == "payment" }},
			"action":          {audit.Filter{Action: "app.suspend"}, func(e *audit.Entry) bool { return e.Action == "app.suspend" }},
			"action prefix":   {audit.Filter{Action: "dataset_access.*"}, func(e *audit.Entry) bool { return e.Action == "dataset_access.approve" }},
			"prefix of words": {audit.Filter{Action: "app.*"}, func(e *audit.Entry) bool { return e.Action == "app.approve" || e.Action == "app.suspend" }},
			"from":            {audit.Filter{From: mid}, func(e *audit.Entry) bool { return !e.At.Before(mid) }},
			"to":              {audit.Filter{To: mid}, func(e *audit.Entry) bool { return e.At.Before(mid) }},
			"together": {audit.Filter{Operator: "op_0", Action: "app.*", From: everything[12].At, To: mid.Add(time.Hour)},
				func(e *audit.Entry) bool { return e.Actor == "operator:op_0" && e.Action[:4] == "app." }},
		}
		for name, c := range cases {
			got := all(t, tr, c.f)
			var want []*audit.Entry
			for _, e := range everything {
				if c.want(e) {
					want = append(want, e)
				}
			}
			if len(want) == 0 || !slices.EqualFunc(got, want, func(a, b *audit.Entry) bool { return a.Seq == b.Seq }) {
				t.Errorf("%s: got %d entries, want %d", name, len(got), len(want))
			}
		}
	})
}

func TestExportGoesOldestFirstFromAfterUpToTheLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		tr := trail(t, db)
		seed(t, db, 9)
		export := func(f audit.Filter, after int64, limit int) []int64 {
			var seqs []int64
			err := tr.Export(context.Background(), operator, f, after, limit, func(e *audit.Entry) error {
				seqs = append(seqs, e.Seq)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return seqs
		}
		if got := export(audit.Filter{}, 0, 0); !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}) {
			t.Errorf("everything: %v", got)
		}
		if got := export(audit.Filter{}, 3, 4); !slices.Equal(got, []int64{4, 5, 6, 7}) {
			t.Errorf("after 3, 4 of them: %v", got)
		}
		if got := export(audit.Filter{Action: "app.suspend"}, 2, 0); !slices.Equal(got, []int64{5, 8}) {
			t.Errorf("filtered: %v", got)
		}
		for _, limit := range []int{-1, audit.MaxExport + 1} {
			err := tr.Export(context.Background(), operator, audit.Filter{}, 0, limit, func(*audit.Entry) error { return nil })
			if causeway.ErrorCode(err) != "invalid_limit" {
				t.Errorf("limit %d: %v", limit, err)
			}
		}
		stop := errors.New("client gone")
		n := 0
		err := tr.Export(context.Background(), operator, audit.Filter{}, 0, 0, func(*audit.Entry) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("an emit error: %v after %d", err, n)
		}
	})
}

// TestVerifyFindsEditsDeletionsAndReorderings edits the trail directly in
// the database, as someone with access to it could, and checks that the
// chain's check names the first entry that no longer verifies.
func TestVerifyFindsEditsDeletionsAndReorderings(t *testing.T) {
	cases := []struct {
		name     string
		sql      []string
		brokenAt int64
	}{
		{"a column edited", []string{`UPDATE audit_entries SET actor = 'operator:someone-else' WHERE seq = 3`}, 3},
		{"a summary edited", []string{`UPDATE audit_entries SET after = '{"status":"suspended"}' WHERE seq = 4`}, 4},
		{"a summary removed", []string{`UPDATE audit_entries SET before = NULL WHERE seq = 2`}, 2},
		{"the time edited", []string{`UPDATE audit_entries SET at = at + 1 WHERE seq = 5`}, 5},
		{"an entry deleted", []string{`DELETE FROM audit_entries WHERE seq = 3`}, 3},
		{"the first entry deleted", []string{`DELETE FROM audit_entries WHERE seq = 1`}, 1},
		{"the newest entry deleted", []string{`DELETE FROM audit_entries WHERE seq = 6`}, 6},
		{"the newest entry deleted and the head rolled back", []string{`DELETE FROM audit_entries WHERE seq = 6`,
			`UPDATE audit_head SET seq = 5 WHERE id = 1`}, 5},
		{"two entries swapped", []string{`UPDATE audit_entries SET seq = 100 WHERE seq = 2`,
			`UPDATE audit_entries SET seq = 2 WHERE seq = 3`, `UPDATE audit_entries SET seq = 3 WHERE seq = 100`}, 2},
		{"an entry rehashed after an edit", nil, 4}, // see below
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				tr := trail(t, db)
				for i := range 6 {
					record(t, db, operatorCtx(fmt.Sprintf("req_%d", i)), audit.Change{Action: "app.approve", TargetType: "app",
						TargetID: fmt.Sprintf("app_%d", i), Before: map[string]string{"status": "pending_approval"},
						After: map[string]string{"status": "active"}})
				}
				if v := verify(t, tr); !v.OK || v.Entries != 6 {
					t.Fatalf("before the edit: %+v", v)
				}
				stmts := c.sql
				if stmts == nil {
					// Whoever edits entry 4 and recomputes its hash breaks
					// the link from entry 5.
					e := all(t, tr, audit.Filter{})[2]
					e.Actor = "operator:someone-else"
					stmts = []string{fmt.Sprintf(`UPDATE audit_entries SET actor = '%s', hash = '%s' WHERE seq = 4`, e.Actor, e.ComputeHash())}
					c.brokenAt = 5
				}
				for _, s := range stmts {
					if _, err := db.ExecContext(context.Background(), s); err != nil {
						t.Fatal(err)
					}
				}
				v := verify(t, tr)
				if v.OK || v.BrokenAt != c.brokenAt || v.Reason == "" {
					t.Errorf("verify = %+v, want broken at %d", v, c.brokenAt)
				}
			})
		})
	}
}

// TestConcurrentAppendsKeepOneUnbrokenChain appends from 2×20 goroutines at
// once, on PostgreSQL through two connection pools as two nodes would: the
// head's row lock orders them into one chain, seq 1..40, no fork.
func TestConcurrentAppendsKeepOneUnbrokenChain(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		db := storetest.OpenSQLite(t)
		appendConcurrently(t, db, db)
	})
	t.Run("postgres", func(t *testing.T) {
		// Two connection pools on one schema: two nodes.
		url := storetest.PostgresURL(t)
		var dbs [2]*store.DB
		for i := range dbs {
			db, err := store.Open(context.Background(), store.Config{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			dbs[i] = db
		}
		appendConcurrently(t, dbs[0], dbs[1])
	})
}

func appendConcurrently(t *testing.T, a, b *store.DB) {
	const nodes, perNode = 2, 20
	tr := trail(t, a)
	dbs := []*store.DB{a, b}
	errs := testkit.Race(nodes*perNode, func(i int) error {
		ctx := operatorCtx(fmt.Sprintf("req_%d", i))
		return dbs[i%nodes].Tx(ctx, func(tx *sql.Tx) error {
			return audit.Record(ctx, tx, audit.Change{Action: "app.limits.set", TargetType: "app", TargetID: fmt.Sprintf("app_%d", i)})
		})
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := all(t, tr, audit.Filter{})
	if len(got) != nodes*perNode {
		t.Fatalf("%d entries, want %d", len(got), nodes*perNode)
	}
	targets := map[string]bool{}
	for i, e := range got {
		if want := int64(len(got) - i); e.Seq != want {
			t.Fatalf("entry %d has seq %d, want %d", i, e.Seq, want)
		}
		targets[e.TargetID] = true
	}
	if len(targets) != nodes*perNode {
		t.Errorf("%d distinct targets, want %d", len(targets), nodes*perNode)
	}
	if v := verify(t, tr); !v.OK || v.Entries != nodes*perNode {
		t.Errorf("verify = %+v", v)
	}
}
