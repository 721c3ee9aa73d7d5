package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
)

// verifyToken checks an access token of this installation: a compact JWS
// whose header says EdDSA, "at+jwt" and a kid of one of our keys, whose
// Ed25519 signature that key verifies, and whose claims say it is for
// Audience from Options.Issuer, with a subject and a scope, issued in the
// past and unexpired (both within clockLeeway).
//
// It is written for exactly our tokens rather than through a general JWT
// library: with the signature check itself at 43 µs, jwx's parsing and
// validation cost another 28 µs per fresh token (docs/benchmarks.md,
// "Where a fresh token's time goes"). Nothing but the header is read
// before the signature is checked, and the header only picks the key; the
// algorithm is fixed, so no header can choose a weaker one.
func (s *Service) verifyToken(ctx context.Context, bearer string) (verifiedToken, error) {
	// looksLikeJWS has checked the length, the alphabet and the two dots.
	head, rest, _ := strings.Cut(bearer, ".")
	payload, sig64, _ := strings.Cut(rest, ".")
	var hdr struct {
		Alg  string   `json:"alg"`
		Typ  string   `json:"typ"`
		Kid  string   `json:"kid"`
		Crit []string `json:"crit"`
	}
	if err := decodeSegment(head, &hdr); err != nil {
		return verifiedToken{}, errInvalidToken("malformed header")
	}
	if hdr.Alg != algEdDSA || len(hdr.Crit) > 0 ||
		strings.TrimPrefix(strings.ToLower(hdr.Typ), "application/") != accessTokenType {
		return verifiedToken{}, errInvalidToken("not an EdDSA access token")
	}
	key, ok, err := s.verificationKey(ctx, hdr.Kid)
	if err != nil {
		return verifiedToken{}, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(sig64)
	if !ok || err != nil || len(sig) != ed25519.SignatureSize ||
		!ed25519.Verify(key.public, []byte(bearer[:len(head)+1+len(payload)]), sig) {
		return verifiedToken{}, errInvalidToken("signature, audience, issuer or claims do not check out")
	}

	var c struct {
		Iss   string          `json:"iss"`
		Sub   string          `json:"sub"`
		Aud   json.RawMessage `json:"aud"`
		Exp   *json.Number    `json:"exp"`
		Iat   *json.Number    `json:"iat"`
		Nbf   *json.Number    `json:"nbf"`
		Scope *string         `json:"scope"`
		Gen   *json.Number    `json:"gen"`
	}
	if err := decodeSegment(payload, &c); err != nil {
		return verifiedToken{}, errInvalidToken("malformed claims")
	}
	exp, okExp := numericDate(c.Exp)
	iat, okIat := numericDate(c.Iat)
	nbf, okNbf := numericDate(c.Nbf)
	now := s.now()
	switch {
	case !okExp || !okIat || (c.Nbf != nil && !okNbf) || c.Sub == "" || c.Iss != s.opts.Issuer || !forAudience(c.Aud):
		return verifiedToken{}, errInvalidToken("signature, audience, issuer or claims do not check out")
	case !now.Before(exp.Add(clockLeeway)):
		return verifiedToken{}, causeway.Errorf(causeway.EUNAUTHORIZED, "token_expired", "the access token has expired; get a new one from /oauth2/token")
	case iat.After(now.Add(clockLeeway)), okNbf && nbf.After(now.Add(clockLeeway)):
		return verifiedToken{}, errInvalidToken("signature, audience, issuer or claims do not check out")
	case c.Scope == nil:
		return verifiedToken{}, errInvalidToken("no scope claim")
	}
	// Tokens issued before generations existed have no claim: generation
	// 0, which the upgrade left to every app that was not suspended.
	var generation int64
	if c.Gen != nil {
		g, err := c.Gen.Float64()
		if err != nil || g < 0 || g > 1<<53 || g != math.Trunc(g) {
			return verifiedToken{}, errInvalidToken("malformed token generation")
		}
		generation = int64(g)
	}
	return verifiedToken{clientID: c.Sub, scope: *c.Scope, generation: generation, expires: exp.Add(clockLeeway)}, nil
}

// decodeSegment decodes one base64url part of a compact JWS as a JSON
// object into v.
func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(v)
}

// numericDate reads a JWT NumericDate (seconds since the epoch, perhaps
// with a fraction).
func numericDate(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 || math.IsNaN(f) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// forAudience reports whether an "aud" claim, a string or an array of
// strings, names Audience.
func forAudience(raw json.RawMessage) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == Audience
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil {
		return false
	}
	for _, a := range many {
		if a == Audience {
			return true
		}
	}
	return false
}
