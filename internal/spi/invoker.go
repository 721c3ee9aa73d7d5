package spi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/ids"
)

// CallBody is what an SPI endpoint receives: POST, application/json, signed
// with the Standard Webhooks headers (webhook-id equals ID).
type CallBody struct {
	ID             string          `json:"id"`
	ExtensionPoint string          `json:"extension_point"`
	Deadline       string          `json:"deadline" doc:"RFC 3339; an answer after it is ignored"`
	Payload        json.RawMessage `json:"payload"`
}

// deadlineFormat is RFC 3339 with milliseconds: deadlines are short.
const deadlineFormat = "2006-01-02T15:04:05.000Z07:00"

// Call asks the registrations at call.Point for an answer, for a process
// of call.AppID ("" for the bank's own). It implements core.Extensions.
//
// With no active registration the answer is not Answered and the bank uses
// its built-in rules. Otherwise the registrations (see candidates) are
// asked as the point's combination rule says (see Combination): one after
// the other until one answers, or all at once. Each gets a signed POST and
// its deadline; a 2xx answer that satisfies the point's response schema is
// its reply. Anything else - a timeout, an error status, a redirect, a body
// that is too large, not JSON or not valid, an open circuit breaker - is a
// failure, handled by the failing registration's policy. The whole call
// ends within the point's maximum deadline, whatever the endpoints do.
//
// The error is non-nil only when the call could not be made: an unknown
// point, a payload that does not match the point's request schema
// (EINVALID invalid_payload), the database, or ctx ending first.
func (s *Service) Call(ctx context.Context, call core.ExtensionCall) (core.ExtensionAnswer, error) {
	p, err := s.Point(ctx, call.Point)
	if err != nil {
		return core.ExtensionAnswer{}, err
	}
	cands, err := s.candidates(ctx, p.Name, call.AppID)
	if err != nil || len(cands) == 0 {
		return core.ExtensionAnswer{}, err
	}
	payload, err := json.Marshal(call.Payload)
	if err != nil {
		return core.ExtensionAnswer{}, fmt.Errorf("spi: payload for %s: %w", p.Name, err)
	}
	if err := checkPayload(p, payload); err != nil {
		return core.ExtensionAnswer{}, err
	}
	return s.run(ctx, p, call.AppID, payload, cands)
}

// Invoke is Call for a bank process that speaks JSON: the southbound
// POST /bank/v1/extension-points/{name}/invoke. The payload is checked
// against the point's request schema before anything else.
func (s *Service) Invoke(ctx context.Context, point, appID string, payload json.RawMessage) (core.ExtensionAnswer, error) {
	p, err := s.Point(ctx, point)
	if err != nil {
		return core.ExtensionAnswer{}, err
	}
	if err := checkPayload(p, payload); err != nil {
		return core.ExtensionAnswer{}, err
	}
	cands, err := s.candidates(ctx, p.Name, appID)
	if err != nil || len(cands) == 0 {
		return core.ExtensionAnswer{}, err
	}
	return s.run(ctx, p, appID, compactJSON(payload), cands)
}

func checkPayload(p *Point, payload []byte) error {
	if err := validate(p.request, payload); err != nil {
		return causeway.Errorf(causeway.EINVALID, "invalid_payload",
			"the payload does not match the request schema of %s: %s", p.Name, shorten(err.Error()))
	}
	return nil
}

// pointCall is one call at a point: what every attempt shares, and the
// audit of the attempts.
type pointCall struct {
	s       *Service
	p       *Point
	appID   string
	payload json.RawMessage
	// caller is the bank process's context; budget ends with it or when
	// the point's maximum has passed, whichever is first.
	caller, budget context.Context
	audit          []*Invocation
}

// run asks the candidates as p's combination rule says, combines their
// replies, and audits every attempt.
func (s *Service) run(ctx context.Context, p *Point, appID string, payload json.RawMessage, cands []*Registration) (core.ExtensionAnswer, error) {
	// The bank process waits at most the point's maximum for the whole
	// call, however many registrations it asks.
	budget, cancel := context.WithTimeout(ctx, time.Duration(p.MaxTimeoutMS)*time.Millisecond)
	defer cancel()
	c := &pointCall{s: s, p: p, appID: appID, payload: payload, caller: ctx, budget: budget}
	defer func() {
		// Counted and recorded once the policy has given each attempt
		// its final outcome.
		for _, inv := range c.audit {
			s.metrics.invocations.WithLabelValues(inv.RegistrationID, inv.ExtensionPoint, inv.Outcome).Inc()
		}
		s.record(c.audit)
	}()

	switch p.Combine.Rule {
	case CombineFirst:
		if a := c.first(cands); a.Answered {
			return a, nil
		}
		return core.ExtensionAnswer{}, ctx.Err()
	case CombineTightenOnly:
		// The bank's answer from its own registrations, in order, while
		// the app's own are asked beside it.
		var own, bank []*Registration
		for _, r := range cands {
			if r.Scope == ScopeApp {
				own = append(own, r)
			} else {
				bank = append(bank, r)
			}
		}
		wait := c.all(own)
		var a core.ExtensionAnswer
		if len(bank) > 0 {
			a = c.first(bank)
		}
		replies, last := wait()
		if ctx.Err() != nil {
			return core.ExtensionAnswer{}, ctx.Err()
		}
		if len(bank) == 0 && len(replies) == 0 {
			// None of the app's own replied: its stand-in is its reply,
			// and the bank's own rules still decide.
			replies = c.standIn(own, last).Replies
		}
		a.Replies = append(a.Replies, replies...)
		return a, nil
	}
	replies, last := c.all(cands)()
	if ctx.Err() != nil {
		return core.ExtensionAnswer{}, ctx.Err()
	}
	if len(replies) == 0 {
		return c.standIn(cands, last), nil
	}
	return p.Combine.combine(replies), nil
}

// first asks cands in order until one replies, and returns its reply as
// the answer. After the last failure, or when no time is left for the next,
// the stand-in answers. It is not Answered only when the caller gave up.
func (c *pointCall) first(cands []*Registration) core.ExtensionAnswer {
	var last *Invocation
	for i, r := range cands {
		if i > 0 && exhausted(c.budget) {
			// Earlier registrations used up the point's maximum: the
			// rest are not tried, and the stand-in answers.
			return c.standInAfter(cands[i-1], last, fmt.Sprintf("no time left for %d more registration(s) within %dms; last failure: %s",
				len(cands)-i, c.p.MaxTimeoutMS, last.FailureReason))
		}
		inv, body := c.s.attempt(c.caller, c.budget, c.p, c.appID, r, c.payload)
		c.audit = append(c.audit, inv)
		last = inv
		if inv.Outcome != OutcomeAnswered && c.caller.Err() != nil {
			// The caller gave up: not the registration's failure, so no
			// policy applies; the caller gets its error.
			return core.ExtensionAnswer{}
		}
		if reply, ok := c.settle(r, inv, body); ok {
			return answerOf(reply, []core.ExtensionReply{reply})
		}
		// OnFailureNext: on to the next registration.
	}
	return c.standIn(cands, last)
}

// all asks every one of cands at once and returns a function that waits
// for them: it gives their replies in the order of cands, and the audit
// row of the last of them, and audits every attempt. When the caller gave
// up meanwhile, no policy applies and there are no replies.
func (c *pointCall) all(cands []*Registration) func() ([]core.ExtensionReply, *Invocation) {
	invs := make([]*Invocation, len(cands))
	bodies := make([]json.RawMessage, len(cands))
	var wg sync.WaitGroup
	for i, r := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			invs[i], bodies[i] = c.s.attempt(c.caller, c.budget, c.p, c.appID, r, c.payload)
		}()
	}
	return func() ([]core.ExtensionReply, *Invocation) {
		wg.Wait()
		c.audit = append(c.audit, invs...)
		var replies []core.ExtensionReply
		for i, r := range cands {
			if c.caller.Err() != nil {
				break
			}
			if reply, ok := c.settle(r, invs[i], bodies[i]); ok {
				replies = append(replies, reply)
			}
		}
		if len(invs) == 0 {
			return replies, nil
		}
		return replies, invs[len(invs)-1]
	}
}

// settle applies r's failure policy to its attempt inv: an answer is its
// reply; a failure is a failed reply (reject), a stand-in reply
// (stand_in), or no reply at all (next).
func (c *pointCall) settle(r *Registration, inv *Invocation, body json.RawMessage) (core.ExtensionReply, bool) {
	reply := core.ExtensionReply{Provider: r.ID, Scope: r.Scope}
	if inv.Outcome == OutcomeAnswered {
		reply.Body = body
		return reply, true
	}
	switch r.OnFailure {
	case OnFailureReject:
		reply.Failed, reply.Reason = true, inv.FailureReason
		return reply, true
	case OnFailureStandIn:
		c.markStandIn(inv)
		reply.StandIn, reply.Reason, reply.Body = true, inv.FailureReason, c.p.StandIn
		return reply, true
	}
	return reply, false
}

// standIn is the answer when none of cands replied: the point's stand-in,
// after the failure of the last, whose attempt last is.
func (c *pointCall) standIn(cands []*Registration, last *Invocation) core.ExtensionAnswer {
	reason := last.FailureReason
	if len(cands) > 1 {
		reason = fmt.Sprintf("none of %d registrations answered; last failure: %s", len(cands), reason)
	}
	return c.standInAfter(cands[len(cands)-1], last, reason)
}

// standInAfter answers with the stand-in because of r's failed attempt inv.
func (c *pointCall) standInAfter(r *Registration, inv *Invocation, reason string) core.ExtensionAnswer {
	c.markStandIn(inv)
	reply := core.ExtensionReply{Provider: r.ID, Scope: r.Scope, StandIn: true, Reason: reason, Body: c.p.StandIn}
	return answerOf(reply, []core.ExtensionReply{reply})
}

// markStandIn records that the failed attempt inv made the bank use the
// stand-in result.
func (c *pointCall) markStandIn(inv *Invocation) {
	inv.StandIn = true
	if inv.Outcome == OutcomeFailed {
		inv.Outcome = OutcomeStandIn
	}
}

// exhausted reports whether less than a millisecond of the call's budget
// is left: too little to ask anyone.
func exhausted(budget context.Context) bool {
	d, _ := budget.Deadline()
	return budget.Err() != nil || time.Until(d) < time.Millisecond
}

// attempt makes one call to r, unless its circuit breaker is open, and
// returns its audit row and, when it answered, the answer.
func (s *Service) attempt(caller, budget context.Context, p *Point, appID string, r *Registration, payload json.RawMessage) (*Invocation, json.RawMessage) {
	inv := &Invocation{
		ID: ids.New("inv"), RegistrationID: r.ID, AppID: appID, ExtensionPoint: p.Name,
		StartedAt: s.timestamp(), Outcome: OutcomeFailed,
	}
	done, err := s.breakers.get(r.ID).Allow()
	if err != nil {
		inv.Outcome = OutcomeSkippedBreakerOpen
		inv.FailureReason = "circuit open: the endpoint failed repeatedly and is not called until a probe succeeds"
		return inv, nil
	}
	began := time.Now()
	body, status, err := s.post(caller, budget, p, r, inv.ID, payload)
	elapsed := time.Since(began)
	done(err)
	inv.LatencyMS = float64(elapsed.Microseconds()) / 1000
	inv.StatusCode = status
	s.metrics.latency.WithLabelValues(r.ID, p.Name).Observe(elapsed.Seconds())
	if err != nil {
		inv.FailureReason = shorten(err.Error())
		return inv, nil
	}
	inv.Outcome = OutcomeAnswered
	return inv, body
}

// post sends the signed call and reads and checks the answer, all within
// the registration's deadline: a hanging endpoint, or one that sends its
// headers and then trickles the body, is cut off when the deadline passes.
func (s *Service) post(caller, budget context.Context, p *Point, r *Registration, id string, payload json.RawMessage) (json.RawMessage, int, error) {
	// allowed is this attempt's share of time: the registration's
	// deadline, or less when the whole call's budget runs out first.
	allowed := time.Duration(p.timeout(r.TimeoutMS)) * time.Millisecond
	if d, ok := budget.Deadline(); ok && time.Until(d) < allowed {
		allowed = time.Until(d)
	}
	ctx, cancel := context.WithTimeout(budget, allowed)
	defer cancel()
	allowed = allowed.Round(time.Millisecond)
	deadline, _ := ctx.Deadline()
	body, err := json.Marshal(CallBody{ID: id, ExtensionPoint: p.Name, Deadline: deadline.UTC().Format(deadlineFormat), Payload: payload})
	if err != nil {
		return nil, 0, err
	}
	sig, err := s.signer(r)
	if err != nil {
		return nil, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		return nil, 0, fmt.Errorf("bad request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Causeway-SPI/1")
	sig.sign(req.Header, id, s.now(), body)

	cut := func(err error) error {
		switch {
		case caller.Err() != nil:
			return fmt.Errorf("%w: %v", errCallerGone, caller.Err())
		case ctx.Err() != nil:
			return fmt.Errorf("no answer within the deadline of %dms", allowed.Milliseconds())
		}
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ce *causeway.Error
		if errors.As(err, &ce) {
			return nil, 0, cut(errors.New(ce.Message))
		}
		return nil, 0, cut(fmt.Errorf("request failed: %v", errors.Unwrap(err)))
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 300 && code < 400:
		return nil, code, fmt.Errorf("answered HTTP %d; redirects are not followed", code)
	case code < 200 || code > 299:
		return nil, code, fmt.Errorf("answered HTTP %d", code)
	case resp.ContentLength > s.maxBody:
		return nil, code, fmt.Errorf("answer of %d bytes is larger than the %d-byte limit", resp.ContentLength, s.maxBody)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBody+1))
	if err != nil {
		return nil, code, cut(fmt.Errorf("reading the answer failed: %v", err))
	}
	if int64(len(raw)) > s.maxBody {
		return nil, code, fmt.Errorf("answer is larger than the %d-byte limit", s.maxBody)
	}
	answer, err := checkAnswer(p, raw)
	if err != nil {
		return nil, code, err
	}
	return answer, code, nil
}

// signer signs calls to r: with its secret, and its previous one while a
// rotation overlaps.
func (s *Service) signer(r *Registration) (signer, error) {
	sealed := []string{r.sealedSecret}
	if r.sealedPrevious != "" && r.PreviousSecretExpiresAt != nil && s.now().Before(*r.PreviousSecretExpiresAt) {
		sealed = append(sealed, r.sealedPrevious)
	}
	secrets := make([]string, len(sealed))
	for i, v := range sealed {
		var err error
		if secrets[i], err = s.sealer.Open(v); err != nil {
			return signer{}, fmt.Errorf("cannot read the signing secret: %v", err)
		}
	}
	return newSigner(secrets...)
}
