package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/seal"
	"github.com/causewayhq/causeway/internal/seal/sealstore"
	"github.com/causewayhq/causeway/internal/store"
)

// SigningKey describes a key that signs access tokens (never its private
// part).
type SigningKey struct {
	KID       string     `json:"kid"`
	Algorithm string     `json:"algorithm" example:"EdDSA"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

const algEdDSA = "EdDSA"

// signingKey is a key with its material.
type signingKey struct {
	SigningKey
	private ed25519.PrivateKey
	public  ed25519.PublicKey
}

// keyring caches keys by kid. The database is the truth: every node reads
// the current signing key from it when it issues a token, and loads a kid
// it does not know when it verifies one, so a rotation on any node is seen
// by all at once.
type keyring struct {
	mu   sync.RWMutex
	byID map[string]*signingKey
}

func newKeyring() *keyring { return &keyring{byID: map[string]*signingKey{}} }

func (k *keyring) get(kid string) (*signingKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok := k.byID[kid]
	return key, ok
}

func (k *keyring) put(key *signingKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.byID[key.KID] = key
}

const keyColumns = `kid, algorithm, private_key, created_at, retired_at`

// scanKey reads a key row; its private part may be sealed (see
// Options.Sealer) or, as keys were stored before sealing, plain base64.
func (s *Service) scanKey(row interface{ Scan(...any) error }) (*signingKey, error) {
	var k signingKey
	var stored string
	var created int64
	var retired sql.NullInt64
	if err := row.Scan(&k.KID, &k.Algorithm, &stored, &created, &retired); err != nil {
		return nil, err
	}
	seed := stored
	if seal.IsSealed(stored) {
		if s.opts.Sealer == nil {
			return nil, fmt.Errorf("signing key %s is sealed and no secret key was given", k.KID)
		}
		var err error
		if seed, err = s.opts.Sealer.Open(stored); err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.KID, err)
		}
	}
	raw, err := base64.StdEncoding.DecodeString(seed)
	if err != nil || len(raw) != ed25519.SeedSize || k.Algorithm != algEdDSA {
		return nil, fmt.Errorf("signing key %s: unreadable key material", k.KID)
	}
	k.private = ed25519.NewKeyFromSeed(raw)
	k.public = k.private.Public().(ed25519.PublicKey)
	k.CreatedAt = store.FromMicros(created)
	k.RetiredAt = nullableTime(retired)
	return &k, nil
}

// storedSeed is how a key's private part is kept in the database: sealed
// when the service has a Sealer.
func (s *Service) storedSeed(seed string) string {
	if s.opts.Sealer == nil {
		return seed
	}
	return s.opts.Sealer.Seal(seed)
}

// sealStoredKeys seals the private part of keys stored before sealing,
// and re-seals with the sealer's current key those an older key of it
// sealed (after a --secret-key rotation), retired keys too; operators'
// TOTP secrets the same way. It opens every key on the way, so a node whose keys do not open them all does not
// start. Nodes starting together do not undo each other (see
// sealstore.Reseal).
func (s *Service) sealStoredKeys(ctx context.Context) error {
	if s.opts.Sealer == nil {
		return nil
	}
	n, err := sealstore.Reseal(ctx, s.db, s.opts.Sealer, sealstore.Table{
		Name: "identity_signing_keys", Key: "kid", Columns: []string{"private_key"}, SealPlain: true,
	})
	if n > 0 {
		s.log.InfoContext(ctx, "sealed token signing keys with the current secret key", "keys", n)
	}
	if err != nil {
		return err
	}
	n, err = sealstore.Reseal(ctx, s.db, s.opts.Sealer, sealstore.Table{
		Name: "identity_operators", Key: "id", Columns: []string{"totp_secret"}, SealPlain: true,
	})
	if n > 0 {
		s.log.InfoContext(ctx, "sealed operators' TOTP secrets with the current secret key", "operators", n)
	}
	return err
}

func newSigningKey(now time.Time) (*signingKey, string) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("identity: ed25519: " + err.Error())
	}
	k := &signingKey{
		SigningKey: SigningKey{KID: ids.New("key"), Algorithm: algEdDSA, CreatedAt: store.FromMicros(store.Micros(now))},
		private:    priv,
		public:     priv.Public().(ed25519.PublicKey),
	}
	return k, base64.StdEncoding.EncodeToString(priv.Seed())
}

func (s *Service) insertKey(ctx context.Context, tx *sql.Tx, k *signingKey, seed string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO identity_signing_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, NULL)`,
		k.KID, k.Algorithm, s.storedSeed(seed), store.Micros(k.CreatedAt))
	return err
}

// ensureSigningKey creates the installation's first signing key. The
// marker row in identity_meta is the arbiter when nodes start together:
// its primary key lets exactly one transaction insert it (PostgreSQL makes
// the others wait for that one to commit), and only that one adds a key.
func (s *Service) ensureSigningKey(ctx context.Context) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO identity_meta (key, value) VALUES ('first_signing_key', $1) ON CONFLICT (key) DO NOTHING`,
			s.now().UTC().Format(time.RFC3339))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		k, seed := newSigningKey(s.now())
		if err := s.insertKey(ctx, tx, k, seed); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "created the first token signing key", "kid", k.KID)
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.sealStoredKeys(ctx); err != nil {
		return err
	}
	_, err = s.currentKey(ctx)
	return err
}

// currentKey returns the key that signs new tokens: the newest one not
// retired.
func (s *Service) currentKey(ctx context.Context) (*signingKey, error) {
	k, err := s.scanKey(s.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM identity_signing_keys
		WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errors.New("no signing key; was the identity service started (Start)?")
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	if cached, ok := s.keys.get(k.KID); ok {
		return cached, nil
	}
	s.keys.put(k)
	return k, nil
}

// verificationKey returns the key with kid, loading it when this node has
// not seen it yet (it may have been created by a rotation on another
// node). ok is false for an unknown or retired kid.
func (s *Service) verificationKey(ctx context.Context, kid string) (key *signingKey, ok bool, err error) {
	if k, found := s.keys.get(kid); found {
		return k, k.RetiredAt == nil, nil
	}
	if !validKID(kid) {
		return nil, false, nil
	}
	k, err := s.scanKey(s.db.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM identity_signing_keys WHERE kid = $1`, kid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, store.Classify(err)
	}
	s.keys.put(k)
	return k, k.RetiredAt == nil, nil
}

func validKID(kid string) bool { return ids.Valid(kid, "key") }

// publicKeys returns every key that is not retired, oldest first: the
// JWKS.
func (s *Service) publicKeys(ctx context.Context) ([]*signingKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM identity_signing_keys WHERE retired_at IS NULL ORDER BY created_at, kid`)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	var keys []*signingKey
	for rows.Next() {
		k, err := s.scanKey(rows)
		if err != nil {
			return nil, store.Classify(err)
		}
		keys = append(keys, k)
	}
	return keys, store.Classify(rows.Err())
}

// RotateSigningKey makes a new key the signing key. Keys it replaces keep
// verifying, and stay in the JWKS, for as long as tokens they signed can
// live; a rotation retires the keys that were replaced longer ago than
// that (token lifetime plus clock leeway, twice, for safety).
func (s *Service) RotateSigningKey(ctx context.Context) (*SigningKey, error) {
	now := s.now()
	k, seed := newSigningKey(now)
	var retired []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		retired = retired[:0]
		rows, err := tx.QueryContext(ctx, `SELECT kid, created_at FROM identity_signing_keys WHERE retired_at IS NULL ORDER BY created_at, kid`)
		if err != nil {
			return err
		}
		type active struct {
			kid     string
			created int64
		}
		var keys []active
		for rows.Next() {
			var a active
			if err := rows.Scan(&a.kid, &a.created); err != nil {
				rows.Close()
				return err
			}
			keys = append(keys, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// A key stopped signing when its successor was created; the
		// current key (the last) has none yet and stays.
		grace := 2 * (s.opts.TokenTTL + clockLeeway)
		for i := 0; i+1 < len(keys); i++ {
			if now.Sub(store.FromMicros(keys[i+1].created)) > grace {
				// Names the state it leaves: a concurrent rotation that
				// retired the key first keeps its retired_at.
				if _, err := tx.ExecContext(ctx, `UPDATE identity_signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL`,
					store.Micros(now), keys[i].kid); err != nil {
					return err
				}
				retired = append(retired, keys[i].kid)
			}
		}
		if err := s.insertKey(ctx, tx, k, seed); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{Action: "signing_key.rotate", TargetType: "signing_key", TargetID: k.KID,
			After: map[string]any{"kid": k.KID, "retired": append([]string{}, retired...)}})
	})
	if err != nil {
		return nil, dbErr(err)
	}
	s.keys.put(k)
	for _, kid := range retired {
		if old, ok := s.keys.get(kid); ok {
			c := *old
			c.RetiredAt = &now
			s.keys.put(&c)
		}
	}
	s.log.InfoContext(ctx, "rotated the token signing key", "kid", k.KID, "retired", retired)
	info := k.SigningKey
	return &info, nil
}
