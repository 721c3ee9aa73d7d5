package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/gateway"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// storedRow is what gateway_idempotency holds for a key.
type storedRow struct{ body, sealed string }

func readRow(t *testing.T, db *store.DB, principal, key string) storedRow {
	t.Helper()
	var r storedRow
	if err := db.QueryRow(`SELECT body, sealed_body FROM gateway_idempotency WHERE principal = $1 AND idem_key = $2`,
		principal, key).Scan(&r.body, &r.sealed); err != nil {
		t.Fatal(err)
	}
	return r
}

func sealerOf(t *testing.T, keys ...[]byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func TestStoredResponsesAreSealedAndReplayedExactly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		first := e.do("POST", "/v1/things", tokenA, `{"name":"secret-bearing"}`, "Idempotency-Key", "sealed-1")
		if first.status != 201 {
			t.Fatalf("first: %d %s", first.status, first.body)
		}
		row := readRow(t, db, "app:app_a", "sealed-1")
		if row.body != "" || !seal.IsSealed(row.sealed) {
			t.Fatalf("stored %+v, want the body sealed and nothing in the clear", row)
		}
		if strings.Contains(row.sealed, base64.StdEncoding.EncodeToString(first.body)[4:20]) {
			t.Fatal("the sealed body holds the body's base64")
		}
		again := e.do("POST", "/v1/things", tokenA, `{"name":"secret-bearing"}`, "Idempotency-Key", "sealed-1")
		if again.status != 201 || !bytes.Equal(again.body, first.body) || again.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry: %d %s, want the first answer %s", again.status, again.body, first.body)
		}

		// A sealed body copied into another app's row does not open there:
		// that app's retry gets the status alone, not app_a's answer.
		other := e.do("POST", "/v1/things", tokenB, `{"name":"secret-bearing"}`, "Idempotency-Key", "sealed-1")
		if other.status != 201 {
			t.Fatalf("app_b: %d %s", other.status, other.body)
		}
		if _, err := db.Exec(`UPDATE gateway_idempotency SET sealed_body = $1 WHERE principal = 'app:app_b' AND idem_key = 'sealed-1'`,
			row.sealed); err != nil {
			t.Fatal(err)
		}
		moved := e.do("POST", "/v1/things", tokenB, `{"name":"secret-bearing"}`, "Idempotency-Key", "sealed-1")
		if moved.status != 201 || len(moved.body) != 0 || moved.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("app_b's retry over app_a's sealed body: %d %q, want 201 with no body", moved.status, moved.body)
		}
		if n := e.app.posts.Load(); n != 2 {
			t.Errorf("the handler ran %d times, want 2", n)
		}
	})
}

func TestResponsesAnOlderVersionStoredInTheClearAreSealedAtStart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		first := e.do("POST", "/v1/things", tokenA, `{"name":"legacy"}`, "Idempotency-Key", "legacy-1")
		// What an older version stored: the body in the clear, in body.
		if _, err := db.Exec(`UPDATE gateway_idempotency SET body = $1, sealed_body = '' WHERE idem_key = 'legacy-1'`,
			base64.StdEncoding.EncodeToString(first.body)); err != nil {
			t.Fatal(err)
		}
		// Before a start seals it, a retry still replays it.
		if res := e.do("POST", "/v1/things", tokenA, `{"name":"legacy"}`, "Idempotency-Key", "legacy-1"); !bytes.Equal(res.body, first.body) {
			t.Errorf("retry over a body in the clear: %d %s, want %s", res.status, res.body, first.body)
		}
		n, err := e.gw.ResealResponses(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("ResealResponses = %d, %v; want 1", n, err)
		}
		if row := readRow(t, db, "app:app_a", "legacy-1"); row.body != "" || !seal.IsSealed(row.sealed) {
			t.Fatalf("after the start: %+v, want the body sealed and nothing in the clear", row)
		}
		if res := e.do("POST", "/v1/things", tokenA, `{"name":"legacy"}`, "Idempotency-Key", "legacy-1"); !bytes.Equal(res.body, first.body) ||
			res.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry after sealing: %d %s, want %s", res.status, res.body, first.body)
		}
		if n, err := e.gw.ResealResponses(context.Background()); n != 0 || err != nil {
			t.Errorf("a second ResealResponses = %d, %v; want 0", n, err)
		}
	})
}

// TestStoredResponsesFollowASecretKeyRotation is the --secret-key rotation
// of docs/operations.md over stored responses: one sealed with OLD replays
// on a node with NEW,OLD, whose start re-seals it with NEW, and then
// replays on a node with NEW alone.
func TestStoredResponsesFollowASecretKeyRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		oldKey, newKey := randomKey(), randomKey()
		ring := sealerOf(t, oldKey)
		e := newEnvWith(t, db, func(o *gateway.Options) { o.Sealer = ring })
		first := e.do("POST", "/v1/things", tokenA, `{"name":"rotate"}`, "Idempotency-Key", "rotate-1")
		replays := func(step string, n *node) {
			t.Helper()
			res := n.do("POST", "/v1/things", tokenA, `{"name":"rotate"}`, "Idempotency-Key", "rotate-1")
			if res.status != 201 || !bytes.Equal(res.body, first.body) || res.header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("%s: %d %s, want the first answer %s", step, res.status, res.body, first.body)
			}
		}

		ring = sealerOf(t, newKey, oldKey)
		both := e.newNode(t)
		replays("NEW,OLD before re-sealing", both)
		if n, err := both.gw.ResealResponses(context.Background()); n != 1 || err != nil {
			t.Fatalf("ResealResponses with NEW,OLD = %d, %v; want 1", n, err)
		}
		if _, err := sealerOf(t, newKey).Open(readRow(t, db, "app:app_a", "rotate-1").sealed); err != nil {
			t.Fatalf("after a start with NEW,OLD the stored body does not open with NEW alone: %v", err)
		}
		ring = sealerOf(t, newKey)
		replays("NEW", e.newNode(t))
		if n := e.app.posts.Load(); n != 1 {
			t.Errorf("the handler ran %d times, want 1", n)
		}
	})
}
