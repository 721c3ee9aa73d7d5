package gateway_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

func TestIdempotentRetryReplaysTheStoredResponse(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		first := e.do("POST", "/v1/things", tokenA, `{"name":"pay"}`, "Idempotency-Key", "key-1")
		if first.status != 201 {
			t.Fatalf("first: %d %s", first.status, first.body)
		}
		if first.header.Get("Idempotent-Replayed") != "" {
			t.Error("the first response says it is a replay")
		}
		again := e.do("POST", "/v1/things", tokenA, `{"name":"pay"}`, "Idempotency-Key", "key-1")
		if again.status != 201 || !bytes.Equal(again.body, first.body) {
			t.Errorf("retry: %d %s, want 201 %s", again.status, again.body, first.body)
		}
		if again.header.Get("Idempotent-Replayed") != "true" {
			t.Error("the retry lacks Idempotent-Replayed: true")
		}
		if ct := again.header.Get("Content-Type"); ct != first.header.Get("Content-Type") {
			t.Errorf("replayed Content-Type %q, first %q", ct, first.header.Get("Content-Type"))
		}
		if again.header.Get("RateLimit-Remaining") == "" {
			t.Error("a replay is still an app response and needs RateLimit headers")
		}
		if n := e.app.posts.Load(); n != 1 {
			t.Errorf("the handler ran %d times, want 1", n)
		}

		// The key belongs to the app: another app may use the same one.
		if res := e.do("POST", "/v1/things", tokenB, `{"name":"pay"}`, "Idempotency-Key", "key-1"); res.status != 201 || res.header.Get("Idempotent-Replayed") != "" {
			t.Errorf("app_b with app_a's key: %d replayed=%q", res.status, res.header.Get("Idempotent-Replayed"))
		}
		// Without a key, every POST runs.
		e.do("POST", "/v1/things", tokenA, `{"name":"pay"}`)
		if n := e.app.posts.Load(); n != 3 {
			t.Errorf("the handler ran %d times, want 3", n)
		}
		// A 4xx answer is an answer: it is stored too.
		bad := e.do("POST", "/v1/things", tokenA, `{"name":"bad"}`, "Idempotency-Key", "key-bad")
		bad.problem(t, 422, "bad_thing")
		e.do("POST", "/v1/things", tokenA, `{"name":"bad"}`, "Idempotency-Key", "key-bad").problem(t, 422, "bad_thing")
		if n := e.app.posts.Load(); n != 4 {
			t.Errorf("the handler ran %d times, want 4", n)
		}
	})
}

func TestIdempotencyKeyReusedForADifferentRequestIsRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.do("POST", "/v1/things", tokenA, `{"name":"one"}`, "Idempotency-Key", "key-2")
		e.do("POST", "/v1/things", tokenA, `{"name":"two"}`, "Idempotency-Key", "key-2").problem(t, 422, "idempotency_key_reused")
		e.do("POST", "/v1/things?x=1", tokenA, `{"name":"one"}`, "Idempotency-Key", "key-2").problem(t, 422, "idempotency_key_reused")
		e.do("POST", "/v1/notes", tokenA, `{"name":"one"}`, "Idempotency-Key", "key-2").problem(t, 401, "invalid_token")
		if n := e.app.posts.Load(); n != 1 {
			t.Errorf("the handler ran %d times, want 1", n)
		}
	})
}

func TestIdempotencyKeyMustBeShortPrintableText(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		for _, key := range []string{" ", strings.Repeat("k", 256), "caf\xc3\xa9", `"unterminated`, `"a"b`} {
			e.do("POST", "/v1/things", tokenA, `{"name":"x"}`, "Idempotency-Key", key).problem(t, 400, "invalid_idempotency_key")
		}
		e.do("POST", "/v1/things", tokenA, `{"name":"x"}`, "Idempotency-Key", "a", "Idempotency-Key", "b").
			problem(t, 400, "invalid_idempotency_key")
		if n := e.app.posts.Load(); n != 0 {
			t.Fatalf("the handler ran %d times on bad keys", n)
		}
		// The IETF draft's quoted form names the same key as the bare one.
		long := strings.Repeat("k", 255)
		if res := e.do("POST", "/v1/things", tokenA, `{"name":"x"}`, "Idempotency-Key", `"`+long+`"`); res.status != 201 {
			t.Fatalf("quoted 255-character key: %d %s", res.status, res.body)
		}
		if res := e.do("POST", "/v1/things", tokenA, `{"name":"x"}`, "Idempotency-Key", long); res.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("bare form of the quoted key: %d, not a replay", res.status)
		}
		// GET requests ignore the header.
		if res := e.do("GET", "/v1/things", tokenA, "", "Idempotency-Key", " "); res.status != 200 {
			t.Errorf("GET with a bad key: %d", res.status)
		}
	})
}

func TestRequestWithAKeyStillRunningIsAConflict(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		done := make(chan response, 1)
		go func() {
			done <- e.do("POST", "/v1/things", tokenA, `{"name":"slow"}`, "Idempotency-Key", "key-3")
		}()
		<-e.app.entered
		res := e.do("POST", "/v1/things", tokenA, `{"name":"slow"}`, "Idempotency-Key", "key-3")
		res.problem(t, 409, "idempotency_in_progress")
		if res.header.Get("Retry-After") == "" {
			t.Error("409 without Retry-After")
		}
		e.app.unblock()
		first := <-done
		if first.status != 201 {
			t.Fatalf("first: %d %s", first.status, first.body)
		}
		again := e.do("POST", "/v1/things", tokenA, `{"name":"slow"}`, "Idempotency-Key", "key-3")
		if again.status != 201 || !bytes.Equal(again.body, first.body) || again.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("after the first finished: %d %s", again.status, again.body)
		}
		if n := e.app.posts.Load(); n != 1 {
			t.Errorf("the handler ran %d times, want 1", n)
		}
	})
}

func TestConcurrentRequestsWithOneKeyRunTheHandlerOnceAcrossNodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		nodes := []*node{e.node, e.newNode(t)}
		const n = 12
		results := make([]response, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				results[i] = nodes[i%2].do("POST", "/v1/things", tokenA, `{"name":"sleepy"}`, "Idempotency-Key", "key-4")
			})
		}
		wg.Wait()
		var created []byte
		var statuses []int
		for _, res := range results {
			statuses = append(statuses, res.status)
		}
		t.Logf("statuses %v", statuses)
		for i, res := range results {
			switch res.status {
			case 201:
				if created == nil {
					created = res.body
				} else if !bytes.Equal(res.body, created) {
					t.Errorf("request %d got a different response: %s vs %s", i, res.body, created)
				}
			case 409:
				res.problem(t, 409, "idempotency_in_progress")
			default:
				t.Errorf("request %d: %d %s", i, res.status, res.body)
			}
		}
		if created == nil {
			// Every loser arrived while the winner ran; its response is
			// stored now.
			res := e.do("POST", "/v1/things", tokenA, `{"name":"sleepy"}`, "Idempotency-Key", "key-4")
			if res.status != 201 || res.header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("after the race: %d %s", res.status, res.body)
			}
		}
		if got := e.app.posts.Load(); got != 1 {
			t.Errorf("the handler ran %d times across two nodes, want 1", got)
		}
	})
}

func TestServerErrorsAreNotStoredSoTheKeyCanBeRetried(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		for range 2 {
			res := e.do("POST", "/v1/things", tokenA, `{"name":"boom"}`, "Idempotency-Key", "key-5")
			res.problem(t, 503, "core_down")
			if res.header.Get("Idempotent-Replayed") != "" {
				t.Error("a 5xx was replayed")
			}
		}
		if n := e.app.posts.Load(); n != 2 {
			t.Errorf("the handler ran %d times, want 2 (the 5xx must not be stored)", n)
		}
		// A handler that panics releases its key too.
		for range 2 {
			e.do("POST", "/v1/things", tokenA, `{"name":"panic"}`, "Idempotency-Key", "key-panic").problem(t, 500, "internal")
		}
		if n := e.app.posts.Load(); n != 4 {
			t.Errorf("the handler ran %d times, want 4", n)
		}
		e.flush()
		var a analyticsBody
		e.admin("GET", "/bank/v1/apps/app_a/analytics"+analyticsRange, "").json(t, &a)
		if a.Totals.ServerErrors != 4 {
			t.Errorf("analytics counted %d server errors, want 4", a.Totals.ServerErrors)
		}
	})
}

func TestDeveloperPostsHonourIdempotencyKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		first := e.do("POST", "/v1/notes", tokenDevOrg, `{"name":"n"}`, "Idempotency-Key", "key-6")
		again := e.do("POST", "/v1/notes", tokenDevOrg, `{"name":"n"}`, "Idempotency-Key", "key-6")
		if first.status != 201 || again.status != 201 || !bytes.Equal(first.body, again.body) || again.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("developer retry: %d %s then %d %s", first.status, first.body, again.status, again.body)
		}
		// Another developer's key space is separate.
		if res := e.do("POST", "/v1/notes", "dev:dev_2:org_1", `{"name":"n"}`, "Idempotency-Key", "key-6"); res.header.Get("Idempotent-Replayed") != "" {
			t.Error("dev_2 got dev_1's stored response")
		}
		if n := e.app.notes.Load(); n != 2 {
			t.Errorf("the handler ran %d times, want 2", n)
		}
	})
}

func TestIdempotencyKeysExpireAfterADayAndArePruned(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.do("POST", "/v1/things", tokenA, `{"name":"one"}`, "Idempotency-Key", "key-7")
		e.do("POST", "/v1/things", tokenA, `{"name":"one"}`, "Idempotency-Key", "key-8")
		e.clock.Advance(23 * time.Hour)
		e.do("POST", "/v1/things", tokenA, `{"name":"two"}`, "Idempotency-Key", "key-7").problem(t, 422, "idempotency_key_reused")

		e.clock.Advance(2 * time.Hour)
		// An expired key is free again, pruned or not.
		if res := e.do("POST", "/v1/things", tokenA, `{"name":"two"}`, "Idempotency-Key", "key-7"); res.status != 201 || res.header.Get("Idempotent-Replayed") != "" {
			t.Errorf("expired key reused: %d %s", res.status, res.body)
		}
		n, err := e.gw.PruneIdempotencyKeys(context.Background())
		if err != nil || n != 1 {
			t.Errorf("pruned %d keys (%v), want 1 (key-8; key-7 was claimed again)", n, err)
		}
	})
}

func TestAKeyHeldByARequestThatNeverFinishedIsTakenOverAfterItsLease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		// The first request stands for one whose node died mid-way.
		lost := make(chan response, 1)
		go func() { lost <- e.do("POST", "/v1/things", tokenA, `{"name":"slow"}`, "Idempotency-Key", "key-9") }()
		<-e.app.entered
		e.do("POST", "/v1/things", tokenA, `{"name":"slow"}`, "Idempotency-Key", "key-9").problem(t, 409, "idempotency_in_progress")

		e.clock.Advance(6 * time.Minute)
		retry := make(chan response, 1)
		go func() { retry <- e.do("POST", "/v1/things", tokenA, `{"name":"slow"}`, "Idempotency-Key", "key-9") }()
		<-e.app.entered
		e.app.unblock()
		<-lost
		second := <-retry
		if second.status != 201 {
			t.Fatalf("the retry that took the key over: %d %s", second.status, second.body)
		}
		// The stored response is the retry's: the lost request, finishing
		// late, no longer holds the key and cannot overwrite it.
		replayed := e.do("POST", "/v1/things", tokenA, `{"name":"slow"}`, "Idempotency-Key", "key-9")
		if !bytes.Equal(replayed.body, second.body) || replayed.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replayed %s, want the retry's %s", replayed.body, second.body)
		}
	})
}
