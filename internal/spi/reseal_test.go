package spi_test

import (
	"bytes"
	"context"
	"maps"
	"strings"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/spi"
	"github.com/causewayhq/causeway/internal/spi/spitest"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// The keys of a --secret-key rotation.
var (
	oldSecretKey = bytes.Repeat([]byte{1}, 32)
	newSecretKey = bytes.Repeat([]byte{2}, 32)
)

// sealedWith makes a service seal with the first key and open with every
// one, as --secret-key NEW,OLD does.
func sealedWith(t testing.TB, keys ...[]byte) func(*spi.Options) {
	return func(o *spi.Options) {
		s, err := seal.New(keys[0], keys[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		o.Sealer = s
	}
}

// secrets are a registration's secret and previous secret.
type secrets struct{ secret, previous string }

// storedSecrets returns every registration's secrets as stored, by id.
func storedSecrets(t *testing.T, db *store.DB) map[string]secrets {
	t.Helper()
	rows, err := db.Query(`SELECT id, secret, previous_secret FROM spi_registrations`)
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

// openedWith opens stored secrets with key alone, failing the test if one
// does not open.
func openedWith(t *testing.T, key []byte, stored map[string]secrets) map[string]secrets {
	t.Helper()
	s, _ := seal.New(key)
	out := map[string]secrets{}
	for id, v := range stored {
		var o secrets
		var err error
		if o.secret, err = s.Open(v.secret); err != nil {
			t.Fatalf("the secret of %s does not open with the expected key alone: %v", id, err)
		}
		if v.previous != "" {
			if o.previous, err = s.Open(v.previous); err != nil {
				t.Fatalf("the previous secret of %s does not open with the expected key alone: %v", id, err)
			}
		}
		out[id] = o
	}
	return out
}

// TestSecretKeyRotationReSealsSPISecretsAndCallsKeepVerifying: a
// registration whose secret and previous secret were sealed with OLD (and
// a deleted one) keep working on a node started with NEW,OLD, which
// re-seals them all with NEW, once; calls carry signatures of both secrets
// throughout, also on a node with NEW alone. A node with OLD alone
// afterwards cannot open them and says so, naming --secret-key.
func TestSecretKeyRotationReSealsSPISecretsAndCallsKeepVerifying(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := spitest.New(t, approve(1, "ok"))

		old := newService(t, db, sealedWith(t, oldSecretKey))
		r, first := appReg(t, old, "app_a", core.PointFraudCheck, srv.URL, spi.NewRegistration{})
		_, current, err := old.RotateSecret(ctx, auth.AppCaller("app_a"), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		gone, goneSecret := appReg(t, old, "app_b", core.PointFraudCheck, srv.URL, spi.NewRegistration{})
		if err := old.DeleteRegistration(ctx, auth.AppCaller("app_b"), gone.ID); err != nil {
			t.Fatal(err)
		}
		want := map[string]secrets{r.ID: {current, first}, gone.ID: {goneSecret, ""}}

		verifies := func(name string, s *spi.Service) {
			t.Helper()
			if a := call(t, s, "app_a"); a.StandIn {
				t.Fatalf("%s: the call got the stand-in: %+v", name, a)
			}
			req, ok := srv.Last()
			if !ok {
				t.Fatalf("%s: no call", name)
			}
			for _, secret := range []string{current, first} {
				wh, err := standardwebhooks.NewWebhook(secret)
				if err != nil {
					t.Fatal(err)
				}
				if err := wh.Verify(req.Body, req.Header); err != nil {
					t.Errorf("%s: a secret does not verify the call: %v", name, err)
				}
			}
		}
		reseal := func(name string, s *spi.Service, want int) {
			t.Helper()
			if n, err := s.ResealSecrets(ctx); n != want || err != nil {
				t.Fatalf("%s: ResealSecrets = %d, %v; want %d", name, n, err, want)
			}
		}

		verifies("OLD", old)
		if got := openedWith(t, oldSecretKey, storedSecrets(t, db)); !maps.Equal(got, want) {
			t.Fatalf("sealed with OLD: %v, want %v", got, want)
		}

		rotating := newService(t, db, sealedWith(t, newSecretKey, oldSecretKey))
		verifies("NEW,OLD before re-sealing", rotating)
		reseal("NEW,OLD", rotating, 3)
		resealed := storedSecrets(t, db)
		if got := openedWith(t, newSecretKey, resealed); !maps.Equal(got, want) {
			t.Errorf("re-sealed with NEW: %v, want %v", got, want)
		}
		verifies("NEW,OLD after re-sealing", rotating)
		reseal("NEW,OLD again", newService(t, db, sealedWith(t, newSecretKey, oldSecretKey)), 0)
		if again := storedSecrets(t, db); !maps.Equal(again, resealed) {
			t.Error("a second re-seal rewrote secrets already sealed with NEW")
		}

		rotated := newService(t, db, sealedWith(t, newSecretKey))
		reseal("NEW", rotated, 0)
		verifies("NEW", rotated)

		stale := newService(t, db, sealedWith(t, oldSecretKey))
		if _, err := stale.ResealSecrets(ctx); err == nil || !strings.Contains(err.Error(), "--secret-key") ||
			!strings.Contains(err.Error(), "spi_registrations") {
			t.Errorf("ResealSecrets with OLD alone: %v, want an error naming --secret-key and the registration", err)
		}
	})
}
