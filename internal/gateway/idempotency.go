package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/seal/sealstore"
	"github.com/causewayhq/causeway/internal/store"
)

const (
	// IdempotencyKeyTTL is how long a key and its stored response live.
	IdempotencyKeyTTL = 24 * time.Hour
	// staleClaimAfter is when a key still marked running is taken to belong
	// to a request that will never finish (its node died): a new request may
	// claim it and run again. It is well beyond a request's duration (SPI
	// deadlines are at most seconds), and short enough that a client
	// retrying on another node is not stuck for long. Payments also keep
	// their key in their own row, so running again never pays twice.
	staleClaimAfter = 30 * time.Second
	// maxKeyLen bounds an Idempotency-Key.
	maxKeyLen = 255
	// maxFingerprintBody bounds the body read for the fingerprint; httpapi
	// caps bodies at 1 MiB by default already.
	maxFingerprintBody = 1 << 20
	// maxStoredResponse bounds a stored response body. A larger response is
	// stored without its body: a retry replays the status only, which is
	// still better than running the request twice.
	maxStoredResponse = 1 << 20
)

// A stored response body is sealed (package seal) with the row it belongs
// to: the sealed text is bodyLabel(principal, key, claim) followed by the
// body. A response can carry a secret shown once (an app's client secret,
// a webhook or SPI signing secret), which a copy of the database must not
// reveal; and since the label is sealed with it, a sealed body copied into
// another row (another app's key, or a later request under the same key)
// does not open there, so whoever can write the table cannot have a
// response replayed to someone it was not for.

// bodyLabel names the row and claim a sealed body belongs to. Keys are
// printable ASCII and principals and claims have no line breaks, so the
// label is unambiguous.
func bodyLabel(principal, key, claim string) string {
	return principal + "\n" + key + "\n" + claim + "\n"
}

// sealBody is what completeKey stores for body: "" for an empty body.
func (g *Gateway) sealBody(principal, key, claim string, body []byte) string {
	if len(body) == 0 {
		return ""
	}
	return g.sealer.Seal(bodyLabel(principal, key, claim) + string(body))
}

// storedBody reads back a stored body: from inClear, the standard base64
// an older version stores in body (this one leaves it empty, and a start
// seals it; see ResealResponses), else from sealed. inClear comes first:
// an older node taking over an expired key during a rolling upgrade
// leaves the previous sealed body beside its own. ok is false when the
// body cannot be read back: sealed with a key the Sealer does not have,
// or for another row or claim. The replay then gives the status alone, as
// for a body too large to keep.
func (g *Gateway) storedBody(principal, key, claim, inClear, sealed string) (body []byte, ok bool) {
	if inClear != "" || sealed == "" {
		b, err := base64.StdEncoding.DecodeString(inClear)
		return b, err == nil
	}
	plain, err := g.sealer.Open(sealed)
	if err == nil {
		rest, found := strings.CutPrefix(plain, bodyLabel(principal, key, claim))
		if found {
			return []byte(rest), true
		}
		err = errors.New("the sealed body belongs to another row")
	}
	g.log.Error("a stored response cannot be read back; replaying its status alone",
		"principal", principal, "error", err.Error())
	return nil, false
}

// parseIdempotencyKey reads the Idempotency-Key header values. The key is
// either a bare run of printable ASCII or, as the IETF draft writes it, a
// Structured Field string ("..." with \" and \\ escapes); both name the same
// key. It is 1 to 255 printable characters.
func parseIdempotencyKey(values []string) (string, error) {
	bad := func(why string) error {
		return causeway.Errorf(causeway.EBADREQUEST, "invalid_idempotency_key", "Idempotency-Key %s", why)
	}
	if len(values) != 1 {
		return "", bad("must be sent once")
	}
	v := strings.Trim(values[0], " \t")
	if strings.HasPrefix(v, `"`) {
		var b strings.Builder
		closed := false
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case c == '\\':
				i++
				if i == len(v) || (v[i] != '"' && v[i] != '\\') {
					return "", bad(`may only escape " and \ inside quotes`)
				}
				b.WriteByte(v[i])
			case c == '"':
				if i != len(v)-1 {
					return "", bad("has characters after its closing quote")
				}
				closed = true
			case c < 0x20 || c > 0x7e:
				return "", bad("must be printable ASCII")
			default:
				b.WriteByte(c)
			}
			if b.Len() > maxKeyLen {
				return "", bad("must be at most 255 characters")
			}
		}
		if !closed {
			return "", bad("has no closing quote")
		}
		v = b.String()
	} else {
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return "", bad("must be printable ASCII")
			}
		}
	}
	if v == "" {
		return "", bad("must not be empty")
	}
	if len(v) > maxKeyLen {
		return "", bad("must be at most 255 characters")
	}
	return v, nil
}

// fingerprint identifies a request for its idempotency key: method, path
// with query, and the SHA-256 of the body.
func fingerprint(method, requestURI string, body []byte) string {
	sum := sha256.Sum256(body)
	return method + " " + requestURI + " sha256:" + hex.EncodeToString(sum[:])
}

// readBody reads the request body for the fingerprint and puts it back for
// the handler.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxFingerprintBody+1))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, httpapi.NewProblem(http.StatusRequestEntityTooLarge, "body_too_large",
				"request body exceeds "+strconv.FormatInt(tooBig.Limit, 10)+" bytes")
		}
		return nil, causeway.Errorf(causeway.EBADREQUEST, "unreadable_body", "the request body could not be read")
	}
	if len(b) > maxFingerprintBody {
		return nil, httpapi.NewProblem(http.StatusRequestEntityTooLarge, "body_too_large",
			"a request with an Idempotency-Key may carry at most "+strconv.Itoa(maxFingerprintBody)+" bytes")
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

// claimOutcome is what claiming an idempotency key found.
type claimOutcome int

const (
	claimed    claimOutcome = iota // the key is ours: run the request
	replay                         // the same request finished: replay its response
	mismatch                       // the key was used for a different request
	inProgress                     // the same request is still running
)

// storedResponse is a response kept for replay.
type storedResponse struct {
	status      int
	contentType string
	body        []byte
	omitted     bool
}

// claimKey claims (principal, key) for the request with fingerprint fp.
// The INSERT under the primary key decides, across goroutines and nodes,
// which request runs; the others find its row and are answered from it.
func (g *Gateway) claimKey(ctx context.Context, principal, key, fp string) (outcome claimOutcome, claim string, resp *storedResponse, err error) {
	now := g.now()
	claim = newClaimToken()
	// Each statement is right on its own (the INSERT claims, the UPDATE
	// names the claim it replaces), so they need no transaction.
	err = g.db.SmallWrite(ctx, func(tx store.Querier) error {
		outcome, resp = claimed, nil // it may run again
		// A row can vanish between the INSERT and the SELECT (its request
		// failed and released it), so go round a few times.
		for range 3 {
			res, err := tx.ExecContext(ctx,
				`INSERT INTO gateway_idempotency (principal, idem_key, fingerprint, claim, state, created_at, expires_at)
				 VALUES ($1, $2, $3, $4, 'running', $5, $6)
				 ON CONFLICT (principal, idem_key) DO NOTHING`,
				principal, key, fp, claim, store.Micros(now), store.Micros(now.Add(IdempotencyKeyTTL)))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				outcome = claimed
				return nil
			}
			var (
				rowFP, rowClaim, state, contentType, inClear, sealed string
				status                                               int
				omitted                                              bool
				createdAt, expiresAt                                 int64
			)
			err = tx.QueryRowContext(ctx,
				`SELECT fingerprint, claim, state, status, content_type, body, sealed_body, body_omitted, created_at, expires_at
				 FROM gateway_idempotency WHERE principal = $1 AND idem_key = $2`, principal, key).
				Scan(&rowFP, &rowClaim, &state, &status, &contentType, &inClear, &sealed, &omitted, &createdAt, &expiresAt)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			expired := expiresAt <= store.Micros(now)
			stale := state == "running" && createdAt <= store.Micros(now.Add(-staleClaimAfter))
			if expired || stale {
				res, err := tx.ExecContext(ctx,
					`UPDATE gateway_idempotency SET fingerprint = $3, claim = $4, state = 'running', status = 0,
					   content_type = '', body = '', sealed_body = '', body_omitted = FALSE, created_at = $5, expires_at = $6
					 WHERE principal = $1 AND idem_key = $2 AND claim = $7`,
					principal, key, fp, claim, store.Micros(now), store.Micros(now.Add(IdempotencyKeyTTL)), rowClaim)
				if err != nil {
					return err
				}
				if n, err := res.RowsAffected(); err != nil {
					return err
				} else if n == 1 {
					outcome = claimed
					return nil
				}
				continue
			}
			switch {
			case rowFP != fp:
				outcome = mismatch
			case state == "running":
				outcome = inProgress
			default:
				body, ok := g.storedBody(principal, key, rowClaim, inClear, sealed)
				outcome = replay
				resp = &storedResponse{status: status, contentType: contentType, body: body, omitted: omitted || !ok}
			}
			return nil
		}
		// Three rounds of the key appearing and vanishing: treat it as busy.
		outcome = inProgress
		return nil
	})
	return outcome, claim, resp, err
}

// completeKey stores the response of the request holding the claim, its
// body sealed.
func (g *Gateway) completeKey(ctx context.Context, principal, key, claim string, resp storedResponse) error {
	sealed := g.sealBody(principal, key, claim, resp.body)
	return g.db.SmallWrite(ctx, func(tx store.Querier) error {
		_, err := tx.ExecContext(ctx,
			`UPDATE gateway_idempotency SET state = 'done', status = $4, content_type = $5, body = '', sealed_body = $6, body_omitted = $7
			 WHERE principal = $1 AND idem_key = $2 AND claim = $3`,
			principal, key, claim, resp.status, resp.contentType, sealed, resp.omitted)
		return err
	})
}

// releaseKey gives the key up, so the request can be retried under it.
func (g *Gateway) releaseKey(ctx context.Context, principal, key, claim string) error {
	return g.db.SmallWrite(ctx, func(tx store.Querier) error {
		_, err := tx.ExecContext(ctx,
			`DELETE FROM gateway_idempotency WHERE principal = $1 AND idem_key = $2 AND claim = $3`,
			principal, key, claim)
		return err
	})
}

// PruneIdempotencyKeys deletes expired keys and their responses, and
// returns how many. The cluster's leader runs it (Jobs).
func (g *Gateway) PruneIdempotencyKeys(ctx context.Context) (int64, error) {
	var n int64
	err := g.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM gateway_idempotency WHERE expires_at <= $1`, store.Micros(g.now()))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// ResealResponses keeps every stored response sealed with the Sealer's
// current key, and returns how many bodies it sealed or re-sealed. It
// seals the bodies an older version stored in the clear (any node of one
// may still be writing them during a rolling upgrade, so it runs at every
// start), and, while the Sealer has more than one key (a --secret-key
// rotation), re-seals those an older key sealed (see sealstore.Reseal), so
// that once every node has started with "NEW,OLD" no stored response needs
// OLD. Expired keys are pruned first, so their bodies cost nothing. Like
// sealstore.Reseal it fails, with seal.ErrWrongKey, on a body none of the
// keys opens.
func (g *Gateway) ResealResponses(ctx context.Context) (int, error) {
	if _, err := g.PruneIdempotencyKeys(ctx); err != nil {
		return 0, fmt.Errorf("gateway: %w", err)
	}
	n, err := g.sealClearBodies(ctx)
	if err == nil && g.sealer.Keys() > 1 {
		var m int
		m, err = sealstore.Reseal(ctx, g.db, g.sealer, sealstore.Table{
			Name: "gateway_idempotency", Key: "principal, idem_key", Columns: []string{"sealed_body"}})
		n += m
	}
	if n > 0 {
		g.log.InfoContext(ctx, "sealed stored idempotent responses with the current secret key", "responses", n)
	}
	if err != nil {
		return n, fmt.Errorf("gateway: %w", err)
	}
	return n, nil
}

// sealClearBodies moves the bodies older versions stored in the clear (in
// body, standard base64) into sealed_body, a batch at a time. A row is
// rewritten only if it still holds what was read. A body that is not
// base64 is dropped, and its replay gives the status alone.
func (g *Gateway) sealClearBodies(ctx context.Context) (int, error) {
	type clearRow struct{ principal, key, claim, body string }
	total := 0
	for after := (clearRow{}); ; {
		var batch []clearRow
		err := func() error {
			rows, err := g.db.QueryContext(ctx,
				`SELECT principal, idem_key, claim, body FROM gateway_idempotency
				 WHERE body <> '' AND (principal, idem_key) > ($1, $2) ORDER BY principal, idem_key LIMIT 100`,
				after.principal, after.key)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var r clearRow
				if err := rows.Scan(&r.principal, &r.key, &r.claim, &r.body); err != nil {
					return err
				}
				batch = append(batch, r)
			}
			return rows.Err()
		}()
		if err != nil {
			return total, store.Classify(err)
		}
		if len(batch) == 0 {
			return total, nil
		}
		n := 0
		err = g.db.Tx(ctx, func(tx *sql.Tx) error {
			n = 0 // again if the transaction is retried
			for _, r := range batch {
				raw, bad := base64.StdEncoding.DecodeString(r.body)
				if bad != nil {
					raw = nil
				}
				res, err := tx.ExecContext(ctx,
					`UPDATE gateway_idempotency SET body = '', sealed_body = $1, body_omitted = (body_omitted OR $2)
					 WHERE principal = $3 AND idem_key = $4 AND claim = $5 AND body = $6`,
					g.sealBody(r.principal, r.key, r.claim, raw), bad != nil, r.principal, r.key, r.claim, r.body)
				if err != nil {
					return err
				}
				if k, _ := res.RowsAffected(); k == 1 {
					n++
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		after = batch[len(batch)-1]
	}
}

func newClaimToken() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// serveIdempotent runs a POST under its Idempotency-Key for principal
// ("app:<id>" or "developer:<id>"): the first request with a key runs and
// its response is stored; a retry with the same request gets that response
// again; anything else with the key is refused.
func (g *Gateway) serveIdempotent(w *recorder, r *http.Request, next http.Handler, principal string) {
	key, err := parseIdempotencyKey(r.Header.Values("Idempotency-Key"))
	if err != nil {
		g.reject(w, r, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		g.reject(w, r, err)
		return
	}
	ctx := r.Context()
	outcome, claim, stored, err := g.claimKey(ctx, principal, key, fingerprint(r.Method, r.URL.RequestURI(), body))
	if err != nil {
		if store.IsUnavailable(err) {
			// The claim may have committed though its answer was lost with
			// the connection: release it once the database is back, or
			// retries would wait for it to go stale.
			g.retryFinishKey(context.WithoutCancel(ctx), principal, key, claim, nil, err)
		}
		httpapi.WriteProblem(w, r, store.Classify(err))
		return
	}
	switch outcome {
	case replay:
		g.metrics.replays.Inc()
		h := w.Header()
		if stored.contentType != "" {
			h.Set("Content-Type", stored.contentType)
		}
		h.Set("Idempotent-Replayed", "true")
		if len(stored.body) > 0 {
			h.Set("Content-Length", strconv.Itoa(len(stored.body)))
		}
		w.WriteHeader(stored.status)
		w.Write(stored.body)
		return
	case mismatch:
		g.reject(w, r, causeway.Errorf(causeway.EINVALID, "idempotency_key_reused",
			"this Idempotency-Key was used for a different request (method, path or body differ); use a new key"))
		return
	case inProgress:
		w.Header().Set("Retry-After", "1")
		g.reject(w, r, causeway.Errorf(causeway.ECONFLICT, "idempotency_in_progress",
			"a request with this Idempotency-Key is still being processed; retry shortly"))
		return
	}

	// The claim outlives the client: store or release it even if the
	// caller has gone away.
	bg := context.WithoutCancel(ctx)
	finished := false
	defer func() {
		if !finished { // the handler panicked: let the key be retried
			g.finishKey(bg, principal, key, claim, nil)
		}
	}()
	w.capture = true
	next.ServeHTTP(w, r)
	finished = true
	status := w.statusCode()
	if status >= 500 {
		g.finishKey(bg, principal, key, claim, nil)
		return
	}
	g.finishKey(bg, principal, key, claim, &storedResponse{
		status:      status,
		contentType: w.Header().Get("Content-Type"),
		body:        w.captured(),
		omitted:     w.overflow,
	})
}

// finishKey stores resp under the claim, or releases the claim if resp is
// nil. While the database cannot be reached it keeps trying in the
// background (see retryFinishKey). Any other failure is logged: the key
// then stays claimed until its claim goes stale, and retries meanwhile get
// 409.
func (g *Gateway) finishKey(ctx context.Context, principal, key, claim string, resp *storedResponse) {
	err := g.finishKeyOnce(ctx, principal, key, claim, resp)
	if err == nil {
		return
	}
	if !store.IsUnavailable(err) {
		g.log.ErrorContext(ctx, "could not finish an idempotency key", "principal", principal, "error", err.Error())
		return
	}
	g.retryFinishKey(ctx, principal, key, claim, resp, err)
}

// retryFinishKey does what finishKey could not, err being why, in the
// background while the database cannot be reached, until the claim would
// go stale anyway. Without it a client that retries once the database is
// back, as the 503 asks, is refused with 409 idempotency_in_progress for
// the rest of staleClaimAfter, although nothing runs under its key.
func (g *Gateway) retryFinishKey(ctx context.Context, principal, key, claim string, resp *storedResponse, err error) {
	giveUp := time.Now().Add(staleClaimAfter)
	go func() {
		for wait := finishRetryWait; time.Now().Add(wait).Before(giveUp); wait = min(2*wait, 5*time.Second) {
			time.Sleep(wait)
			if err = g.finishKeyOnce(ctx, principal, key, claim, resp); err == nil || !store.IsUnavailable(err) {
				break
			}
		}
		if err != nil {
			g.log.ErrorContext(ctx, "could not finish an idempotency key", "principal", principal, "error", err.Error())
		}
	}()
}

// finishRetryWait is the first pause before retryFinishKey tries again.
const finishRetryWait = 250 * time.Millisecond

func (g *Gateway) finishKeyOnce(ctx context.Context, principal, key, claim string, resp *storedResponse) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if resp == nil {
		return g.releaseKey(ctx, principal, key, claim)
	}
	return g.completeKey(ctx, principal, key, claim, *resp)
}
