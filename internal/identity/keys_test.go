package identity

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// Secret keys of a --secret-key rotation, as testSealer makes them.
const (
	oldSecretKey byte = 21
	newSecretKey byte = 22
)

// ringSealer seals with the first of ids' keys and opens with every one,
// as --secret-key NEW,OLD does.
func ringSealer(t testing.TB, ids ...byte) *seal.Sealer {
	t.Helper()
	keys := make([][]byte, len(ids))
	for i, id := range ids {
		keys[i] = make([]byte, 32)
		keys[i][0] = id
	}
	s, err := seal.New(keys[0], keys[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storedSigningKeys returns the private parts as stored, by kid.
func storedSigningKeys(t *testing.T, db *store.DB) map[string]string {
	t.Helper()
	rows, err := db.Query(`SELECT kid, private_key FROM identity_signing_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var kid, v string
		if err := rows.Scan(&kid, &v); err != nil {
			t.Fatal(err)
		}
		out[kid] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// openedWith opens every stored key with sealer alone, failing the test if
// one does not open.
func openedWith(t *testing.T, sealer *seal.Sealer, stored map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for kid, v := range stored {
		seed, err := sealer.Open(v)
		if err != nil {
			t.Fatalf("signing key %s does not open with the expected secret key alone: %v", kid, err)
		}
		out[kid] = seed
	}
	return out
}

// oldNode starts a node with the old secret key, makes an app and a second
// signing key, and returns the app's credentials and a token of each key.
func oldNode(t *testing.T, db *store.DB) (clientID, secret string, tokens []string) {
	t.Helper()
	ctx := context.Background()
	if err := migrateAll(ctx, db); err != nil {
		t.Fatal(err)
	}
	s, err := open(db, Options{Issuer: testIssuer, PasswordCost: cheapCost, Logger: discardLogger(), Sealer: ringSealer(t, oldSecretKey)})
	if err != nil {
		t.Fatal(err)
	}
	dev, _, err := s.SignUp(ctx, "rotation@example.com", "correct horse battery", "Rotation")
	if err != nil {
		t.Fatal(err)
	}
	app, secret, err := s.CreateApp(ctx, dev, "rotation", []string{auth.ScopeAccountsRead})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if i > 0 {
			if _, err := s.RotateSigningKey(ctx); err != nil {
				t.Fatal(err)
			}
		}
		tok, err := s.IssueToken(ctx, TokenRequest{ClientID: app.ClientID, ClientSecret: secret})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok.Token)
	}
	return app.ClientID, secret, tokens
}

// TestSecretKeyRotationReSealsSigningKeysAndTokensKeepVerifying: keys
// sealed with OLD are re-sealed with NEW by a node started with NEW,OLD,
// once (a second start changes nothing); tokens signed before keep
// verifying on nodes with NEW,OLD and then NEW alone; a node given OLD
// alone afterwards refuses to start, naming --secret-key.
func TestSecretKeyRotationReSealsSigningKeysAndTokensKeepVerifying(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clientID, secret, tokens := oldNode(t, db)
		before := storedSigningKeys(t, db)
		seeds := openedWith(t, ringSealer(t, oldSecretKey), before)
		if len(seeds) != 2 {
			t.Fatalf("%d signing keys, want 2", len(seeds))
		}

		start := func(keys ...byte) (*Service, error) {
			return open(db, Options{Issuer: testIssuer, PasswordCost: cheapCost, Logger: discardLogger(), Sealer: ringSealer(t, keys...)})
		}
		works := func(name string, s *Service) {
			t.Helper()
			fresh, err := s.IssueToken(ctx, TokenRequest{ClientID: clientID, ClientSecret: secret})
			if err != nil {
				t.Fatalf("%s: issuing a token: %v", name, err)
			}
			for i, tok := range append(tokens, fresh.Token) {
				if _, err := s.AuthenticateApp(ctx, tok); err != nil {
					t.Errorf("%s: token %d is refused: %v", name, i, err)
				}
			}
		}

		rotating, err := start(newSecretKey, oldSecretKey)
		if err != nil {
			t.Fatalf("a node with NEW,OLD: %v", err)
		}
		works("NEW,OLD", rotating)
		resealed := storedSigningKeys(t, db)
		if got := openedWith(t, ringSealer(t, newSecretKey), resealed); !maps.Equal(got, seeds) {
			t.Error("re-sealing changed a key's material")
		}

		if _, err := start(newSecretKey, oldSecretKey); err != nil {
			t.Fatalf("a second node with NEW,OLD: %v", err)
		}
		if again := storedSigningKeys(t, db); !maps.Equal(again, resealed) {
			t.Error("a second start with NEW,OLD rewrote keys already sealed with NEW")
		}

		rotated, err := start(newSecretKey)
		if err != nil {
			t.Fatalf("a node with NEW alone: %v", err)
		}
		works("NEW", rotated)

		_, err = start(oldSecretKey)
		if err == nil || !strings.Contains(err.Error(), "--secret-key") || strings.Contains(err.Error(), "\n") {
			t.Errorf("a node with OLD alone after the rotation: err = %v, want one line naming --secret-key", err)
		}
	})
}

// TestNodesStartingTogetherDuringASecretKeyRotationAgree: two nodes
// started at once with NEW,OLD both start, and every key ends up sealed
// with NEW, its material unchanged.
func TestNodesStartingTogetherDuringASecretKeyRotationAgree(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clientID, secret, tokens := oldNode(t, db)
		seeds := openedWith(t, ringSealer(t, oldSecretKey), storedSigningKeys(t, db))

		const nodes = 2
		services := make([]*Service, nodes)
		errs := make([]error, nodes)
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() {
				services[i], errs[i] = open(db, Options{Issuer: testIssuer, PasswordCost: cheapCost, Logger: discardLogger(),
					Sealer: ringSealer(t, newSecretKey, oldSecretKey)})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("node %d: %v", i, err)
			}
		}
		if got := openedWith(t, ringSealer(t, newSecretKey), storedSigningKeys(t, db)); !maps.Equal(got, seeds) {
			t.Error("after two nodes re-sealed, a key's material changed")
		}
		fresh, err := services[0].IssueToken(ctx, TokenRequest{ClientID: clientID, ClientSecret: secret})
		if err != nil {
			t.Fatal(err)
		}
		for i, tok := range append(tokens, fresh.Token) {
			if _, err := services[1].AuthenticateApp(ctx, tok); err != nil {
				t.Errorf("token %d is refused by the other node: %v", i, err)
			}
		}
	})
}
