package webhooks_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/events"
	"github.com/causewayhq/causeway/internal/netguard"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/webhooks"
)

// The keys of a --secret-key rotation.
var (
	oldSecretKey = bytes.Repeat([]byte{1}, 32)
	newSecretKey = bytes.Repeat([]byte{2}, 32)
)

// sealerOf seals with the first key and opens with every one, as
// --secret-key NEW,OLD does.
func sealerOf(t testing.TB, keys ...[]byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// secrets are a subscription's stored secret and previous secret.
type secrets struct{ secret, previous string }

// storedSecrets returns every subscription's secrets as stored, by id.
func storedSecrets(t testing.TB, db *store.DB) map[string]secrets {
	t.Helper()
	rows, err := db.Query(`SELECT id, secret, previous_secret FROM webhook_subscriptions`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]secrets{}
	for rows.Next() {
		var id string
		var s secrets
		if err := rows.Scan(&id, &s.secret, &s.previous); err != nil {
			t.Fatal(err)
		}
		out[id] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// openedWith opens stored secrets with sealer alone, failing the test if
// one does not open.
func openedWith(t testing.TB, sealer *seal.Sealer, stored map[string]secrets) map[string]secrets {
	t.Helper()
	out := map[string]secrets{}
	for id, s := range stored {
		var o secrets
		var err error
		if o.secret, err = sealer.Open(s.secret); err != nil {
			t.Fatalf("the secret of %s does not open with the expected key alone: %v", id, err)
		}
		if s.previous != "" {
			if o.previous, err = sealer.Open(s.previous); err != nil {
				t.Fatalf("the previous secret of %s does not open with the expected key alone: %v", id, err)
			}
		}
		out[id] = o
	}
	return out
}

// TestSecretKeyRotationReSealsWebhookSecretsAndDeliveriesKeepVerifying:
// a subscription whose secret and previous secret were sealed with OLD
// keeps delivering, signed with both, on a node started with NEW,OLD,
// which re-seals both with NEW, once; then on a node with NEW alone. A
// node with OLD alone afterwards cannot open them and says so, naming
// --secret-key.
func TestSecretKeyRotationReSealsWebhookSecretsAndDeliveriesKeepVerifying(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, mq := b.openDB(t), b.openMQ(t)
			rc := newReceiver(t, nil)
			var id, current, previous string

			// node runs fn on a node with the given keys, stopped after.
			node := func(name string, sealer *seal.Sealer, fn func(t *testing.T, h *harness)) {
				t.Helper()
				ok := t.Run(name, func(t *testing.T) {
					fn(t, newSealedHarness(t, db, mq, webhooks.Options{}, nil, sealer))
				})
				if !ok {
					t.FailNow()
				}
			}
			// delivers publishes an event and checks that it arrives signed
			// with both the secret and the previous one.
			delivers := func(t *testing.T, h *harness, event string) {
				t.Helper()
				h.publish(payment(appA, event, "1"))
				var got *request
				eventually(t, wait, event+" is delivered", func() bool {
					for _, r := range rc.all() {
						if r.id() == event {
							got = &r
							return true
						}
					}
					return false
				})
				for name, secret := range map[string]string{"secret": current, "previous secret": previous} {
					wh, err := standardwebhooks.NewWebhook(secret)
					if err != nil {
						t.Fatal(err)
					}
					if err := wh.Verify(got.Body, got.Header); err != nil {
						t.Errorf("%s: the %s does not verify: %v", event, name, err)
					}
				}
			}
			reseal := func(t *testing.T, h *harness, want int) {
				t.Helper()
				if n, err := h.svc.ResealSecrets(ctx); err != nil || n != want {
					t.Fatalf("ResealSecrets = %d, %v; want %d", n, err, want)
				}
			}

			node("OLD", sealerOf(t, oldSecretKey), func(t *testing.T, h *harness) {
				sub := h.subscribe(appA, map[string]any{"url": rc.URL, "event_types": []string{"payment.*"}})
				var rotated webhooks.Subscription
				if code := h.call(http.MethodPost, "/v1/webhooks/"+sub.ID+"/rotate-secret", appA, nil, &rotated); code != http.StatusOK {
					t.Fatalf("rotate: %d", code)
				}
				id, current, previous = sub.ID, rotated.Secret, sub.Secret
				reseal(t, h, 0)
				delivers(t, h, "pay_old")
			})
			want := map[string]secrets{id: {current, previous}}
			if got := openedWith(t, sealerOf(t, oldSecretKey), storedSecrets(t, db)); !maps.Equal(got, want) {
				t.Fatalf("sealed with OLD: %v, want %v", got, want)
			}

			var resealed map[string]secrets
			node("NEW,OLD", sealerOf(t, newSecretKey, oldSecretKey), func(t *testing.T, h *harness) {
				delivers(t, h, "pay_before_reseal")
				reseal(t, h, 2)
				resealed = storedSecrets(t, db)
				if got := openedWith(t, sealerOf(t, newSecretKey), resealed); !maps.Equal(got, want) {
					t.Errorf("re-sealed with NEW: %v, want %v", got, want)
				}
				delivers(t, h, "pay_after_reseal")
				reseal(t, h, 0)
				if again := storedSecrets(t, db); !maps.Equal(again, resealed) {
					t.Error("a second re-seal rewrote secrets already sealed with NEW")
				}
			})

			node("NEW", sealerOf(t, newSecretKey), func(t *testing.T, h *harness) {
				reseal(t, h, 0)
				delivers(t, h, "pay_new")
			})

			node("OLD again", sealerOf(t, oldSecretKey), func(t *testing.T, h *harness) {
				_, err := h.svc.ResealSecrets(ctx)
				if err == nil || !strings.Contains(err.Error(), "--secret-key") || !strings.Contains(err.Error(), id) {
					t.Errorf("ResealSecrets with OLD alone: %v, want an error naming --secret-key and %s", err, id)
				}
			})
			if after := storedSecrets(t, db); !maps.Equal(after, resealed) {
				t.Error("stored secrets changed after the re-seal")
			}
		})
	}
}

var quietLogger = slog.New(slog.DiscardHandler)

// bareService is a webhook service that does not run its dispatcher.
func bareService(t testing.TB, db *store.DB, b *bus.Bus, sealer *seal.Sealer) *webhooks.Service {
	t.Helper()
	ctx := context.Background()
	if err := outbox.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := webhooks.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	vis := events.Visibility{Customers: &customers{grants: map[string]bool{}}, Public: func(string) bool { return false }}
	guard := netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	svc, err := webhooks.New(db, b, vis, sealer, guard, webhooks.Options{Logger: quietLogger, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc
}

// TestNodesReSealingWebhookSecretsAtOnceAgree: two nodes started with
// NEW,OLD at once re-seal each secret once between them, over more than
// one batch, and every secret ends up sealed with NEW, unchanged. (Whether
// they overlap here is up to the scheduler; sealstore's tests make them.)
func TestNodesReSealingWebhookSecretsAtOnceAgree(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, mq := b.openDB(t), b.openMQ(t)
			old := bareService(t, db, mq, sealerOf(t, oldSecretKey))
			const subscriptions = 130 // more than a batch, across two apps (at most 100 each)
			values := 0
			for i := range subscriptions {
				app := auth.AppCaller([]string{appA, appB}[i%2])
				sub, err := old.Create(ctx, app, webhooks.NewSubscription{URL: fmt.Sprintf("http://127.0.0.1:9/%d", i), EventTypes: []string{"*"}})
				if err != nil {
					t.Fatal(err)
				}
				values++
				if i%3 == 0 {
					if _, err := old.RotateSecret(ctx, app, sub.ID); err != nil {
						t.Fatal(err)
					}
					values++
				}
			}
			want := openedWith(t, sealerOf(t, oldSecretKey), storedSecrets(t, db))

			nodes := []*webhooks.Service{
				bareService(t, db, mq, sealerOf(t, newSecretKey, oldSecretKey)),
				bareService(t, db, mq, sealerOf(t, newSecretKey, oldSecretKey)),
			}
			counts := make([]int, len(nodes))
			errs := make([]error, len(nodes))
			var wg sync.WaitGroup
			for i, n := range nodes {
				wg.Go(func() { counts[i], errs[i] = n.ResealSecrets(ctx) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("node %d: %v", i, err)
				}
			}
			if counts[0]+counts[1] != values {
				t.Errorf("the nodes re-sealed %d and %d secrets, want %d between them", counts[0], counts[1], values)
			}
			if got := openedWith(t, sealerOf(t, newSecretKey), storedSecrets(t, db)); !maps.Equal(got, want) {
				t.Error("after two nodes re-sealed, a secret changed or is not sealed with NEW")
			}
			if n, err := nodes[0].ResealSecrets(ctx); n != 0 || err != nil {
				t.Errorf("a later re-seal = %d, %v; want 0", n, err)
			}
		})
	}
}
