package gateway_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// TestTheDocumentedVerifierChecksProxiedCalls: the Go example of
// docs/apis.md ("Verifying the gateway's signature"), copied below as it
// stands there, accepts what the gateway sends and refuses it tampered.
func TestTheDocumentedVerifierChecksProxiedCalls(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		bank := newBankAPI(t)
		up := e.createUpstream(t, "Cards", bank.URL+"/api", "cards", "accounts:read")
		for _, call := range [][3]string{{"POST", "/cards/42/freeze?reason=lost", `{"until":"2026-04-01"}`}, {"GET", "/cards?limit=2&q=a%20b", ""}} {
			if res := e.do(call[0], "/v1/ext/cards"+call[1], tokenA, call[2]); res.status != 202 {
				t.Fatalf("%s %s: %d %s", call[0], call[1], res.status, res.body)
			}
			r, body := bank.lastRequest()
			target := bank.URL + r.RequestURI
			now := e.clock.Now()
			if err := verifyCauseway(r, []byte(body), target, up.ID, up.SigningSecret, now); err != nil {
				t.Errorf("%s %s: the documented verifier refuses it: %v", call[0], call[1], err)
			}
			for name, err := range map[string]error{
				"query":  verifyCauseway(r, []byte(body), target+"&x=1", up.ID, up.SigningSecret, now),
				"body":   verifyCauseway(r, []byte(body+" "), target, up.ID, up.SigningSecret, now),
				"keyid":  verifyCauseway(r, []byte(body), target, "ups_other", up.SigningSecret, now),
				"secret": verifyCauseway(r, []byte(body), target, up.ID, "whsec_"+base64.StdEncoding.EncodeToString(make([]byte, 32)), now),
				"late":   verifyCauseway(r, []byte(body), target, up.ID, up.SigningSecret, now.Add(6*time.Minute)),
			} {
				if err == nil {
					t.Errorf("%s %s: the documented verifier accepts another %s", call[0], call[1], name)
				}
			}
			r = r.Clone(t.Context())
			r.Method = "DELETE"
			if err := verifyCauseway(r, []byte(body), target, up.ID, up.SigningSecret, now); err == nil {
				t.Errorf("%s %s: the documented verifier accepts another method", call[0], call[1])
			}
		}
	})
}

// verifyCauseway checks the gateway's signature on r, whose body is body,
// sent to targetURI, for the upstream id with the whsec_ secret secret.
func verifyCauseway(r *http.Request, body []byte, targetURI, id, secret string, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	params, ok := strings.CutPrefix(r.Header.Get("Signature-Input"), "causeway=")
	prefix := `("@method" "@target-uri" "content-digest" "causeway-app-id");created=`
	suffix := fmt.Sprintf(`;keyid=%q;alg="hmac-sha256";tag="causeway-upstream"`, id)
	created, ok2 := strings.CutSuffix(strings.TrimPrefix(params, prefix), suffix)
	ts, err := strconv.ParseInt(created, 10, 64)
	if !ok || !ok2 || !strings.HasPrefix(params, prefix) || err != nil ||
		now.Sub(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		return errors.New("no fresh causeway signature")
	}
	sum := sha256.Sum256(body)
	digest := "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
	if r.Header.Get("Content-Digest") != digest {
		return errors.New("the body is not the one signed")
	}
	base := fmt.Sprintf("\"@method\": %s\n\"@target-uri\": %s\n\"content-digest\": %s\n\"causeway-app-id\": %s\n\"@signature-params\": %s",
		r.Method, targetURI, digest, r.Header.Get("Causeway-App-Id"), params)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(base))
	sig, ok := strings.CutPrefix(r.Header.Get("Signature"), "causeway=:")
	got, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(sig, ":"))
	if !ok || err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("bad causeway signature")
	}
	return nil
}
