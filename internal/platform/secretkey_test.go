package platform_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/httpsig"
	"github.com/causewayhq/causeway/internal/platform"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/spi/spitest"
)

// TestSecretKeyRotatesWithoutLosingSecrets is the rotation procedure of
// docs/operations.md: secrets made on a node with OLD keep working on a
// node with OLD,NEW, then on one with NEW,OLD, which re-seals them all
// with NEW (while, on the scale-out runtime, the OLD,NEW node keeps
// working beside it), then on a node with NEW alone. Throughout, an access
// token issued before the rotation verifies, and webhook deliveries and
// SPI calls verify with the secrets the app was given. A node given OLD
// alone afterwards does not start, and says why in one line naming
// --secret-key.
func TestSecretKeyRotatesWithoutLosingSecrets(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		_, oldKey := randomKey()
		newKey, newEnc := randomKey()
		cfg := rt.Config(t)
		// The restarted nodes listen on other ports; their issuer stays,
		// so tokens from before a restart still verify.
		cfg.PublicURL = "http://causeway.nodes.test"
		start := func(keys string) *platformtest.Node {
			t.Helper()
			c := cfg
			c.SecretKey = keys
			return platformtest.Start(t, c)
		}

		n := start(oldKey)
		doc := openapitest.Fetch(t, n.URL)
		a, _ := developerApp(t, n, doc, "rotation@solarworld.example")
		rec := &hookReceiver{}
		hooks := httptest.NewServer(rec)
		defer hooks.Close()
		var wh struct{ Secret string }
		// With an Idempotency-Key: its stored answer, secret and all, is
		// sealed too, and must replay after the rotation.
		whBody := map[string]any{"url": hooks.URL, "event_types": []string{"payment.*"}}
		res := a.do("POST", "/v1/webhooks", "/v1/webhooks", whBody, "Idempotency-Key", "rotation-webhook")
		if res.status != 201 {
			t.Fatalf("create webhook: %d %s", res.status, res.body)
		}
		res.decode(t, &wh)
		whAnswer := res.body
		rec.mu.Lock()
		rec.secret = wh.Secret
		rec.mu.Unlock()
		fraud := spitest.New(t, fraudAnswer{Decision: "approve", Score: 1, Reason: "known payee"})
		var reg struct{ Secret string }
		res = a.do("POST", "/v1/spi-registrations", "/v1/spi-registrations", map[string]any{
			"extension_point": "payments.fraud-check", "url": fraud.URL, "scope": "app"})
		if res.status != 201 {
			t.Fatalf("register SPI: %d %s", res.status, res.body)
		}
		res.decode(t, &reg)
		var accounts page
		a.do("GET", "/v1/accounts", "", nil).decode(t, &accounts)
		upstream := signedUpstream(t)
		upstream.mu.Lock()
		status := bankCall(t, n, "POST", "/upstreams", map[string]any{"name": "Cards", "base_url": upstream.URL,
			"path_prefix": "cards", "scope": "accounts:read"}, &upstream.up)
		upstream.mu.Unlock()
		if status != 201 {
			t.Fatalf("publish an upstream: %d", status)
		}

		// works pays through node n with the token issued on the first
		// node, and checks the SPI call and the webhook delivery verify.
		works := func(name string, n *platformtest.Node) {
			t.Helper()
			a.base = n.URL
			hits := fraud.Hits()
			var pay struct{ ID, Status string }
			res := a.do("POST", "/v1/payments", "/v1/payments", map[string]any{"debtor_account_id": accounts.Data[0].ID,
				"creditor": map[string]any{"account_id": accounts.Data[1].ID}, "amount": map[string]any{"amount": "1.00", "currency": "EUR"}})
			if res.status != 201 {
				t.Fatalf("%s: payment: %d %s", name, res.status, res.body)
			}
			res.decode(t, &pay)
			if pay.Status != "completed" || fraud.Hits() != hits+1 {
				t.Errorf("%s: payment %+v, fraud checks %d, want completed after one", name, pay, fraud.Hits()-hits)
			}
			if res := a.do("POST", "/v1/ext/cards/x?y=1", "", map[string]any{"a": 1}); res.status != 200 {
				t.Errorf("%s: the upstream answered %d %s, want its signature to verify", name, res.status, res.body)
			}
			call, _ := fraud.Last()
			if v, err := standardwebhooks.NewWebhook(reg.Secret); err != nil || v.Verify(call.Body, call.Header) != nil {
				t.Errorf("%s: the SPI call does not verify with the registration's secret", name)
			}
			for deadline := time.Now().Add(30 * time.Second); rec.find("payment.completed", pay.ID) == nil; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: payment.completed was not delivered", name)
				}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.errs) > 0 {
				t.Errorf("%s: deliveries that did not verify: %v", name, rec.errs)
			}
		}
		works("OLD", n)
		n.Close()

		// Step 1: the node learns NEW, and still seals with OLD.
		n = start(oldKey + "," + newEnc)
		works("OLD,NEW", n)
		// Step 2: NEW seals, and a node starting with it re-seals. On the
		// scale-out runtime a node of step 1 keeps serving meanwhile, as
		// in a rolling restart.
		var step1 *platformtest.Node
		if rt.Name == platformtest.ScaleOut.Name {
			step1 = n
		} else {
			n.Close()
		}
		n = start(newEnc + "," + oldKey)
		works("NEW,OLD", n)
		if step1 != nil {
			works("OLD,NEW beside NEW,OLD", step1)
			step1.Close()
		}
		onlyNew, _ := seal.New(newKey)
		for _, q := range []string{
			`SELECT secret FROM webhook_subscriptions`, `SELECT previous_secret FROM webhook_subscriptions WHERE previous_secret <> ''`,
			`SELECT secret FROM spi_registrations`, `SELECT previous_secret FROM spi_registrations WHERE previous_secret <> ''`,
			`SELECT private_key FROM identity_signing_keys`, `SELECT signing_secret FROM gateway_upstreams`,
			`SELECT sealed_body FROM gateway_idempotency WHERE sealed_body <> ''`,
		} {
			for _, v := range column(t, n, q) {
				if _, err := onlyNew.Open(v); err != nil {
					t.Errorf("after a start with NEW,OLD, %q holds a value NEW alone does not open: %v", q, err)
				}
			}
		}
		n.Close()

		n = start(newEnc)
		works("NEW", n)
		if again := a.do("POST", "/v1/webhooks", "/v1/webhooks", whBody, "Idempotency-Key", "rotation-webhook"); again.status != 201 ||
			again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, whAnswer) {
			t.Errorf("NEW: the webhook creation's retry: %d %s, want the first answer %s", again.status, again.body, whAnswer)
		}
		n.Close()

		stale := cfg
		stale.SecretKey = oldKey
		p, err := platform.New(context.Background(), stale)
		if err == nil {
			p.Close()
		}
		if !errors.Is(err, seal.ErrWrongKey) || !strings.Contains(err.Error(), "--secret-key") || strings.Contains(err.Error(), "\n") {
			t.Errorf("a node with OLD alone after the rotation: %v, want one line naming --secret-key", err)
		}
	})
}

// upstream is an upstream API that answers 200 to calls whose signature
// verifies with the secret it was published with (up), 401 to others.
type upstream struct {
	*httptest.Server
	mu sync.Mutex
	up struct {
		ID            string `json:"id"`
		SigningSecret string `json:"signing_secret"`
	}
}

func signedUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		id, secret := u.up.ID, u.up.SigningSecret
		u.mu.Unlock()
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		_, err := httpsig.Verify(r, httpsig.Verification{Label: "causeway", Tag: "causeway-upstream", MaxAge: 5 * time.Minute,
			Required: []string{"@method", "@target-uri", "content-digest", "causeway-app-id"},
			Key: func(keyID, alg string) (*httpsig.Key, error) {
				if keyID != id {
					return nil, errors.New("unknown keyid " + keyID)
				}
				return httpsig.HMACKey(keyID, key), nil
			}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

// randomKey returns a secret key, and how --secret-key gives it.
func randomKey() ([]byte, string) {
	b := make([]byte, 32)
	rand.Read(b)
	return b, base64.StdEncoding.EncodeToString(b)
}

// column returns the one column query selects.
func column(t *testing.T, n *platformtest.Node, query string) []string {
	t.Helper()
	rows, err := n.DB.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
