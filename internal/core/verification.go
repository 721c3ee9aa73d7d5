package core

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/store"
)

// KYCVerification is one KYC check run on a customer (the /v1/kyc-checks
// resource): the built-in rules, and the kyc.verify provider when one is
// registered.
type KYCVerification struct {
	ID         string     `json:"id"`
	CustomerID string     `json:"customer_id"`
	Result     string     `json:"result" enum:"pass,fail,refer"`
	Checks     []KYCCheck `json:"checks"`
	Provider   string     `json:"provider"`
	StandIn    bool       `json:"stand_in"`
	CreatedAt  time.Time  `json:"created_at"`
}

// resultRank orders results from best to worst, to combine them.
var resultRank = map[string]int{KYCPass: 0, KYCRefer: 1, KYCFail: 2}

func worse(a, b string) string {
	if resultRank[b] > resultRank[a] {
		return b
	}
	return a
}

// VerifyCustomer runs a KYC check on a customer the caller may see and
// records the result as the customer's KYC status. The built-in rules always
// run; the replies of the kyc.verify providers - the bank's and the calling
// app's own - are combined with them, the worst result winning (fail, then
// refer, then pass): no provider can clear a sanctions hit or another's
// referral. The check's provider is the one whose reply decided.
func (b *Bank) VerifyCustomer(ctx context.Context, caller auth.Caller, customerID string) (*KYCVerification, error) {
	c, err := getCustomer(ctx, b.db, caller, customerID)
	if err != nil {
		return nil, err
	}
	now := b.now().UTC().Truncate(time.Microsecond)
	outcome := RunKYCRules(KYCSubject{
		Type: c.Type, Name: c.Name, DateOfBirth: c.DateOfBirth, Email: c.Email, Phone: c.Phone,
		AddressLine1: c.Address.Line1, City: c.Address.City, Postcode: c.Address.Postcode,
		Country: c.Address.Country, DocumentNumber: c.DocumentNumber,
	}, now)
	v := &KYCVerification{
		ID: ids.New("kyc"), CustomerID: c.ID, Result: outcome.Result, Checks: outcome.Checks,
		Provider: "builtin", CreatedAt: now,
	}
	ans, err := b.ext.Call(ctx, ExtensionCall{Point: PointKYCVerify, AppID: appOf(caller),
		Payload: map[string]any{"customer": c, "rules": v}})
	if err != nil {
		return nil, err
	}
	if ans.Answered {
		// Every reply counts: each adds its checks and its result, and
		// the worst of them and of the rules is the result.
		v.Provider, v.StandIn = ans.Provider, ans.StandIn
		for _, r := range ans.replies() {
			v.Checks = append(v.Checks, kycReplyChecks(r)...)
		}
		for _, ch := range v.Checks {
			v.Result = worse(v.Result, ch.Result)
		}
	}
	checks, _ := json.Marshal(v.Checks)
	err = b.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO core_kyc_checks (id, customer_id, app_id, result, checks, provider, stand_in, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			v.ID, v.CustomerID, appOf(caller), v.Result, string(checks), v.Provider, v.StandIn, store.Micros(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE core_customers SET kyc_status = $1 WHERE id = $2`, v.Result, c.ID); err != nil {
			return err
		}
		return b.events.WriteEvents(ctx, tx, []Event{{
			Type: "kyc.check.completed", Subject: v.ID, Data: v, CustomerID: c.ID,
		}})
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Verification returns a KYC check on a customer the caller may see.
func (b *Bank) Verification(ctx context.Context, caller auth.Caller, id string) (*KYCVerification, error) {
	var v KYCVerification
	var checks string
	var created int64
	err := b.db.QueryRowContext(ctx, `SELECT id, customer_id, result, checks, provider, stand_in, created_at
		FROM core_kyc_checks WHERE id = $1`, id).Scan(&v.ID, &v.CustomerID, &v.Result, &checks, &v.Provider, &v.StandIn, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "kyc_check_not_found", "no KYC check %s", id)
	}
	if err != nil {
		return nil, store.Classify(err)
	}
	if _, err := getCustomer(ctx, b.db, caller, v.CustomerID); err != nil {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "kyc_check_not_found", "no KYC check %s", id)
	}
	json.Unmarshal([]byte(checks), &v.Checks)
	v.CreatedAt = store.FromMicros(created)
	return &v, nil
}

// kycReplyChecks are the checks one kyc.verify reply adds: the provider's
// own, and its overall result as the check "provider". A provider that
// failed, or answered with a body the bank cannot read, refers.
func kycReplyChecks(r ExtensionReply) []KYCCheck {
	var body struct {
		Result string     `json:"result"`
		Checks []KYCCheck `json:"checks"`
	}
	err := json.Unmarshal(r.Body, &body)
	_, known := resultRank[body.Result]
	switch {
	case r.Failed:
		return []KYCCheck{{Name: "provider", Result: KYCRefer, Detail: "kyc provider " + r.Provider + " failed: " + r.Reason}}
	case err != nil || !known:
		return []KYCCheck{{Name: "provider", Result: KYCRefer, Detail: "kyc provider " + r.Provider + " answered with an invalid body"}}
	}
	return append(body.Checks, KYCCheck{Name: "provider", Result: body.Result, Detail: "result of " + r.Provider})
}
