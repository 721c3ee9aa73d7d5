package webhooks

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway/internal/events"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/stdwebhooks"
	"github.com/causewayhq/causeway/internal/store"
)

const (
	// snippetBytes bounds the response body kept with an attempt.
	snippetBytes = 1024
	// drainBytes bounds what is read past the snippet so the connection
	// can be reused; a longer body closes it.
	drainBytes = 64 << 10
	// errorBytes bounds the error text kept with an attempt.
	errorBytes = 512
	// maxRetryAfter caps the wait a 429 or 503 can ask for.
	maxRetryAfter = 24 * time.Hour
	// recordTimeout bounds writing an attempt's record, which happens even
	// when the attempt's context has ended.
	recordTimeout = 10 * time.Second
)

// subState is what a worker needs to deliver to one subscription: a
// snapshot, replaced whenever the subscription changes.
type subState struct {
	id, appID, url string
	ordered        bool
	patterns       []string
	filter         *filter
	key, prevKey   []byte
	prevUntil      time.Time
	createdAt      time.Time
	updatedAt      time.Time
}

// newState opens the subscription's secrets and compiles its filter.
func (s *Service) newState(r *record) (*subState, error) {
	st := &subState{id: r.ID, appID: r.AppID, url: r.URL, ordered: r.Ordered, patterns: r.EventTypes,
		createdAt: r.CreatedAt, updatedAt: r.UpdatedAt}
	secret, err := s.sealer.Open(r.sealedSecret)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	if st.key, err = stdwebhooks.Key(secret); err != nil {
		return nil, err
	}
	if r.sealedPrevious != "" && r.PreviousSecretExpiresAt != nil {
		prev, err := s.sealer.Open(r.sealedPrevious)
		if err != nil {
			return nil, fmt.Errorf("previous secret: %w", err)
		}
		if st.prevKey, err = stdwebhooks.Key(prev); err != nil {
			return nil, err
		}
		st.prevUntil = *r.PreviousSecretExpiresAt
	}
	if st.filter, err = compileFilter(r.Filter); err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	return st, nil
}

// keys returns the keys that sign at now: the current one, and the
// previous one during a rotation's overlap.
func (st *subState) keys(now time.Time) [][]byte {
	if st.prevKey != nil && now.Before(st.prevUntil) {
		return [][]byte{st.key, st.prevKey}
	}
	return [][]byte{st.key}
}

// wants reports whether the event has one of the subscription's types, its
// app may see it and its filter matches. A visibility error is returned (it may be temporary); a
// filter error is logged and means no match.
func (s *Service) wants(ctx context.Context, st *subState, env *events.Envelope) (bool, error) {
	if !Matches(st.patterns, env.Type) {
		return false, nil // the consumer's subject filter is wider on old servers
	}
	ok, err := s.vis.Visible(ctx, st.appID, env)
	if err != nil || !ok {
		return false, err
	}
	if st.filter == nil {
		return true, nil
	}
	vars, err := filterVars(env.Body)
	if err == nil {
		ok, err = st.filter.match(vars)
	}
	if err != nil {
		s.log.DebugContext(ctx, "filter did not evaluate; counted as no match",
			"webhook_id", st.id, "event_id", env.ID, "error", err.Error())
		return false, nil
	}
	return ok, nil
}

// result is the outcome of one HTTP attempt.
type result struct {
	status     int
	latency    time.Duration
	err        error
	snippet    string
	retryAfter time.Duration
}

func (r result) ok() bool { return r.err == nil && r.status >= 200 && r.status < 300 }

// describe is the error text recorded with an attempt.
func (r result) describe() string {
	switch {
	case r.err != nil:
		return clip(r.err.Error(), errorBytes)
	case r.ok():
		return ""
	default:
		return fmt.Sprintf("the endpoint answered %d %s", r.status, http.StatusText(r.status))
	}
}

// post makes one attempt: the CloudEvent body, signed, through the
// guarded client (which refuses forbidden addresses at dial time and does
// not follow redirects).
func (s *Service) post(ctx context.Context, st *subState, env *events.Envelope) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.url, bytes.NewReader(env.Body))
	if err != nil {
		return result{err: err}
	}
	// The timestamp is the real time, whatever Options.Now says: receivers
	// check it against their own clock to refuse replays.
	now := time.Now()
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("User-Agent", "Causeway-Webhooks/1.0")
	stdwebhooks.SetHeaders(req.Header, st.keys(now), env.ID, now, env.Body)
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return result{err: err, latency: time.Since(start)}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, snippetBytes))
	res := result{status: resp.StatusCode, latency: time.Since(start), snippet: clip(string(head), snippetBytes)}
	io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.retryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
	}
	return res
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(max(n, 0), int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// clip returns s cut to at most n bytes of valid UTF-8 without NUL, which
// PostgreSQL's TEXT refuses.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		for len(s) > n {
			s = s[:len(s)-1]
			s = strings.ToValidUTF8(s, "")
		}
	}
	return strings.ReplaceAll(s, "\x00", "")
}

// retryDelay is the wait before the next attempt after failed attempt
// number attempt: the schedule's, with jitter, or longer if the endpoint
// asked for it.
func (s *Service) retryDelay(attempt int, res result) time.Duration {
	sched := s.opts.Schedule
	d := sched[min(max(attempt-1, 0), len(sched)-1)]
	if j := s.opts.Jitter; j > 0 && d > 0 {
		d += time.Duration((rand.Float64()*2 - 1) * j * float64(d))
	}
	return max(d, res.retryAfter)
}

// handle delivers one message of a subscription's consumer and settles it
// with JetStream.
//
// It is long because one attempt is one sequence (visibility, the signed
// POST, the outcome, the record, then ack, nak or term) whose steps share
// the message and the attempt.
func (s *Service) handle(ctx context.Context, st *subState, msg jetstream.Msg) {
	env, err := events.FromMsg(msg)
	if err != nil {
		s.log.ErrorContext(ctx, "a stream message is not an event; dropped", "webhook_id", st.id, "error", err.Error())
		msg.Term()
		return
	}
	meta, err := msg.Metadata()
	if err != nil {
		msg.Nak()
		return
	}
	send, err := s.wants(ctx, st, env)
	if err != nil {
		if ctx.Err() != nil {
			msg.Nak()
			return
		}
		s.log.WarnContext(ctx, "visibility check failed; will retry", "webhook_id", st.id, "event_id", env.ID, "error", err.Error())
		if int(meta.NumDelivered) < s.maxDeliver() {
			msg.NakWithDelay(s.retryDelay(int(meta.NumDelivered), result{}))
			return
		}
		// JetStream would silently stop redelivering: dead-letter it visibly.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		s.record(rctx, &Delivery{
			ID: ids.New("whd"), SubscriptionID: st.id, EventID: env.ID, EventType: env.Type, StreamSeq: env.Seq,
			Attempt: int(meta.NumDelivered), Origin: OriginStream, Outcome: OutcomeDead, CreatedAt: s.opts.Now().UTC(),
			Error: clip("not sent: whether the app may see the event could not be checked: "+err.Error(), errorBytes),
		}, recordOnly)
		msg.Term()
		return
	}
	if !send {
		msg.Ack()
		return
	}
	msg.InProgress()
	res := s.post(ctx, st, env)
	if ctx.Err() != nil {
		// Stopping: the attempt was cut short, not answered. Hand the event
		// back without recording anything.
		msg.Nak()
		return
	}
	attempt := int(meta.NumDelivered)
	d := &Delivery{
		ID: ids.New("whd"), SubscriptionID: st.id, EventID: env.ID, EventType: env.Type, StreamSeq: env.Seq,
		Attempt: attempt, Origin: OriginStream, StatusCode: res.status,
		LatencyMS: float64(res.latency.Microseconds()) / 1000, Error: res.describe(), Snippet: res.snippet,
		CreatedAt: s.opts.Now().UTC(),
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	switch {
	case res.ok():
		d.Outcome = OutcomeSucceeded
		s.record(rctx, d, recordSuccess)
		msg.Ack()
	case res.err == nil && res.status == http.StatusGone:
		d.Outcome = OutcomeDead
		d.Error = "the endpoint answered 410 Gone; the subscription is disabled"
		s.record(rctx, d, recordGone)
		msg.Term()
	default:
		last := attempt >= s.maxDeliver()
		if last {
			d.Outcome = OutcomeDead
		} else {
			d.Outcome = OutcomeFailed
		}
		s.record(rctx, d, recordFailure)
		if last {
			s.log.InfoContext(ctx, "event dead-lettered", "webhook_id", st.id, "event_id", env.ID, "attempts", attempt)
			msg.Term()
		} else {
			msg.NakWithDelay(s.retryDelay(attempt, res))
		}
	}
}

// How an attempt's record touches its subscription.
type recordKind int

const (
	recordOnly    recordKind = iota // a failed manual re-send: nothing else
	recordSuccess                   // the failure run, if any, is over
	recordFailure                   // a failure run starts or goes on; may disable
	recordGone                      // 410: disable
)

// applyRecord writes an attempt's effect on the subscription in tx (the
// attempt itself is inserted with its batch). It returns the subscription as
// it was if the attempt disabled it, and why. cleared lists the
// subscriptions whose failure run this transaction has already ended, so
// a batch of successes clears it once.
func (s *Service) applyRecord(ctx context.Context, tx *sql.Tx, d *Delivery, kind recordKind, cleared map[string]bool) (*record, string, error) {
	var reason string
	switch kind {
	case recordSuccess:
		if cleared[d.SubscriptionID] {
			return nil, "", nil
		}
		cleared[d.SubscriptionID] = true
		_, err := tx.ExecContext(ctx, "UPDATE webhook_subscriptions SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL", d.SubscriptionID)
		return nil, "", err
	case recordGone:
		reason = fmt.Sprintf("the endpoint answered 410 Gone at %s", d.CreatedAt.Format(time.RFC3339))
	case recordFailure:
		delete(cleared, d.SubscriptionID)
		if _, err := tx.ExecContext(ctx, "UPDATE webhook_subscriptions SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL",
			d.SubscriptionID, store.Micros(d.CreatedAt)); err != nil {
			return nil, "", err
		}
		var since sql.NullInt64
		err := tx.QueryRowContext(ctx, "SELECT failing_since FROM webhook_subscriptions WHERE id = $1", d.SubscriptionID).Scan(&since)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, "", nil
		}
		if err != nil {
			return nil, "", err
		}
		if !since.Valid || s.opts.Now().Sub(store.FromMicros(since.Int64)) <= s.opts.DisableAfter {
			return nil, "", nil
		}
		reason = fmt.Sprintf("every delivery attempt failed since %s (more than %s); the last: %s",
			store.FromMicros(since.Int64).Format(time.RFC3339), s.opts.DisableAfter, d.Error)
	default:
		return nil, "", nil
	}
	disabled, err := s.disable(ctx, tx, d.SubscriptionID, reason)
	return disabled, reason, err
}

// sendOnce makes a single attempt outside the subscription's consumer (a
// recover or a manual retry) and records it. It is not retried: a failure
// is recorded as failed and left to the developer.
func (s *Service) sendOnce(ctx context.Context, st *subState, env *events.Envelope, origin string) {
	res := s.post(ctx, st, env)
	if ctx.Err() != nil {
		return
	}
	d := &Delivery{
		ID: ids.New("whd"), SubscriptionID: st.id, EventID: env.ID, EventType: env.Type, StreamSeq: env.Seq,
		Attempt: 1, Origin: origin, StatusCode: res.status,
		LatencyMS: float64(res.latency.Microseconds()) / 1000, Error: res.describe(), Snippet: res.snippet,
		CreatedAt: s.opts.Now().UTC(),
	}
	kind := recordOnly
	switch {
	case res.ok():
		d.Outcome, kind = OutcomeSucceeded, recordSuccess
	case res.err == nil && res.status == http.StatusGone:
		d.Outcome, kind = OutcomeFailed, recordGone
		d.Error = "the endpoint answered 410 Gone; the subscription is disabled"
	default:
		d.Outcome = OutcomeFailed
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	s.record(rctx, d, kind)
}
