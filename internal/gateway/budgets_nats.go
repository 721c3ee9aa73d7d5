package gateway

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/bus"
)

// BudgetBucket is the name, under the bus prefix, of the JetStream
// key-value bucket that holds the apps' shared budgets: with the default
// prefix, CAUSEWAY_GATEWAY_BUDGETS (stream KV_CAUSEWAY_GATEWAY_BUDGETS).
const BudgetBucket = "gateway_budgets"

// casAttempts bounds the read-modify-write rounds of one update when other
// nodes keep writing the same key. After a lost round a node waits a
// random moment, up to casBackoff times the rounds lost so far, so that a
// node whose copy is current (one round trip a round) does not starve one
// that has to read first (two).
const (
	casAttempts = 16
	casBackoff  = 200 * time.Microsecond
)

var errContended = errors.New("gateway: shared budget: too many concurrent updates")

// sharedBudgets keeps every app's budget in a key of a NATS KV bucket and
// updates it with compare-and-swap on the key's revision, so nodes never
// overwrite each other's charges.
type sharedBudgets struct {
	kv jetstream.KeyValue
}

func openSharedBudgets(ctx context.Context, b *bus.Bus) (*sharedBudgets, error) {
	kv, err := b.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       b.Stream(BudgetBucket),
		Description:  "Causeway gateway: per-app rate-limit and daily-quota budgets shared by all nodes",
		History:      1,
		MaxValueSize: 1024,
		Storage:      jetstream.FileStorage,
	})
	if err != nil {
		return nil, bus.Classify(fmt.Errorf("budget bucket %s: %w", b.Stream(BudgetBucket), err))
	}
	return &sharedBudgets{kv: kv}, nil
}

// storedBudget is a node's copy of an app's key.
type storedBudget struct {
	budget
	rev uint64 // the key's revision; 0: the key does not exist
	// known says budget and rev are what the key held after this node's
	// last read or write, worth trying a write against without reading.
	known bool
}

// update sets the app's budget to fn(current). It trusts cur when it is
// known, reads the key otherwise, and writes only if no other node wrote
// it in between; on a conflict it reads and applies fn again. fn may run
// several times and must decide from its argument alone; it reports
// whether there is anything to write. A decision not to write made on a
// copy is checked against a fresh read, since other nodes may have handed
// admissions back. On success cur holds what the key now holds.
func (s *sharedBudgets) update(ctx context.Context, appID string, cur *storedBudget, fn func(budget) (budget, bool)) error {
	key := budgetKey(appID)
	fresh, lost := false, 0
	for range casAttempts {
		if lost > 0 {
			select {
			case <-time.After(rand.N(casBackoff * time.Duration(lost))):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !cur.known {
			if err := s.read(ctx, key, cur); err != nil {
				return err
			}
			fresh = true
		}
		next, write := fn(cur.budget)
		if !write {
			if fresh {
				return nil
			}
			cur.known = false
			continue
		}
		data, err := json.Marshal(next)
		if err != nil {
			return err
		}
		rev, err := bus.CompareAndPut(ctx, s.kv, key, data, cur.rev)
		if err == nil {
			cur.budget, cur.rev, cur.known = next, rev, true
			return nil
		}
		// Another node wrote first (read and decide again), or the bucket
		// did not answer.
		cur.known = false
		if !errors.Is(err, bus.ErrLostRace) {
			return err
		}
		lost++
	}
	return errContended
}

func (s *sharedBudgets) read(ctx context.Context, key string, cur *storedBudget) error {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		*cur = storedBudget{known: true}
		return nil
	}
	if err != nil {
		return err
	}
	// A value this version cannot read is replaced by a fresh budget,
	// rather than refusing the app's budget for good.
	var b budget
	if json.Unmarshal(e.Value(), &b) != nil {
		b = budget{}
	}
	*cur = storedBudget{budget: b, rev: e.Revision(), known: true}
	return nil
}

// budgetKey is the app's key: "app.<id>" for ids made of letters, digits,
// '-' and '_' (all of Causeway's), "hex.<hex of the id>" otherwise.
func budgetKey(appID string) string {
	for i := 0; i < len(appID); i++ {
		c := appID[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return "hex." + hex.EncodeToString([]byte(appID))
		}
	}
	if appID == "" {
		return "hex.00"
	}
	return "app." + appID
}
