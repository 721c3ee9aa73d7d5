package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// Callers of GroupTx at the same moment share transactions, each in its
// own savepoint: a caller's error, a unique violation among them, or a
// panic undoes that caller's writes alone and comes back to that caller
// alone, while everyone else's writes commit.
func TestGroupedWritesCommitEachCallerAndFailOnlyTheFailing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		errRefused := errors.New("refused by the caller")
		const callers = 64
		var wg sync.WaitGroup
		results := make([]error, callers)
		panics := make([]any, callers)
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { panics[i] = recover() }()
				results[i] = db.GroupTx(ctx, func(tx *sql.Tx) error {
					id := fmt.Sprintf("note-%02d", i)
					if i%8 == 5 {
						id = "twin" // several callers insert the same key: one wins
					}
					if _, err := tx.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", id, "written"); err != nil {
						return err
					}
					switch i % 8 {
					case 3:
						return errRefused
					case 7:
						panic("caller 7 of 8 panics")
					}
					return nil
				})
			}()
		}
		wg.Wait()

		twins := 0
		for i := range callers {
			var n int
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM notes WHERE id = $1", fmt.Sprintf("note-%02d", i)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			err := results[i]
			switch i % 8 {
			case 3:
				if !errors.Is(err, errRefused) || n != 0 {
					t.Errorf("caller %d refused: error %v, %d rows kept", i, err, n)
				}
			case 5:
				switch {
				case err == nil:
					twins++
				case !store.IsUniqueViolation(err):
					t.Errorf("caller %d inserting the twin: %v", i, err)
				}
			case 7:
				if panics[i] == nil || n != 0 {
					t.Errorf("caller %d panicked: recovered %v, %d rows kept", i, panics[i], n)
				}
			default:
				if err != nil || panics[i] != nil || n != 1 {
					t.Errorf("caller %d: error %v, panic %v, %d rows", i, err, panics[i], n)
				}
			}
		}
		var n int
		db.QueryRowContext(ctx, "SELECT count(*) FROM notes WHERE id = 'twin'").Scan(&n)
		if twins != 1 || n != 1 {
			t.Errorf("%d callers inserted the twin, %d rows of it: want one", twins, n)
		}
	})
}

// SmallWrite's callers at one moment all land, on either engine, and a
// statement's error reaches its caller.
func TestSmallWritesAtOnceAllLand(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		migrated(t, db)
		const callers = 48
		var wg sync.WaitGroup
		errs := make([]error, callers)
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.SmallWrite(ctx, func(q store.Querier) error {
					id := fmt.Sprintf("small-%02d", i)
					if i%6 == 0 {
						id = "small-00" // a key claimed once: the others conflict
					}
					_, err := q.ExecContext(ctx, "INSERT INTO notes (id, body) VALUES ($1, $2)", id, "written")
					return err
				})
			}()
		}
		wg.Wait()
		conflicts := 0
		for i, err := range errs {
			switch {
			case i%6 == 0 && store.IsUniqueViolation(err):
				conflicts++
			case err != nil:
				t.Errorf("caller %d: %v", i, err)
			}
		}
		var n int
		db.QueryRowContext(ctx, "SELECT count(*) FROM notes WHERE id LIKE 'small-%'").Scan(&n)
		if want := callers - callers/6 + 1; n != want || conflicts != callers/6-1 {
			t.Errorf("%d rows and %d conflicts, want %d rows and %d conflicts", n, conflicts, want, callers/6-1)
		}
	})
}
