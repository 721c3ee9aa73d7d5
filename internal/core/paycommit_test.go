package core_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// Payments are booked in batches: many at once from one account must be
// decided one after another against the balance the earlier ones left,
// never against the balance all of them read before the batch.
func TestPaymentsBookedTogetherNeverSpendMoreThanTheAccountHolds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, payer := f.customerWithAccount(t, appA, "Payer", "100.00")
		_, payee := f.customerWithAccount(t, appA, "Payee", "")

		const calls = 32 // of 10.00 each: ten fit
		var wg sync.WaitGroup
		results := make(chan *core.Payment, calls)
		errs := make(chan error, calls)
		for i := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := f.bank.CreatePayment(ctx, appA, core.NewPayment{DebtorAccountID: payer.ID,
					Creditor: core.Creditor{AccountID: payee.ID}, Amount: eur(t, "10.00"), IdempotencyKey: fmt.Sprintf("k%d", i)})
				if err != nil {
					errs <- err
					return
				}
				results <- p
			}()
		}
		wg.Wait()
		close(results)
		close(errs)
		for err := range errs {
			t.Errorf("payment: %v", err)
		}
		statuses := map[string]int{}
		for p := range results {
			statuses[p.Status]++
			if p.Status == core.PaymentRejected && p.Rejection.Code != "insufficient_funds" {
				t.Errorf("payment %s rejected with %s", p.ID, p.Rejection.Code)
			}
		}
		if statuses[core.PaymentCompleted] != 10 || statuses[core.PaymentRejected] != calls-10 {
			t.Errorf("outcomes %v, want 10 completed and %d rejected", statuses, calls-10)
		}
		if booked, _ := f.balance(t, payer.ID); booked != "0.00" {
			t.Errorf("payer's balance = %s, want 0.00", booked)
		}
		if booked, _ := f.balance(t, payee.ID); booked != "100.00" {
			t.Errorf("payee's balance = %s, want 100.00", booked)
		}
	})
}

// Two calls reusing one idempotency key at the same moment fail their
// batch's INSERT: they make one payment between them, and every other
// payment of the batch is still made (each is booked again alone).
func TestOnePaymentFailingLeavesTheOthersInItsBatchMade(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, payer := f.customerWithAccount(t, appA, "Payer", "1000.00")
		_, payee := f.customerWithAccount(t, appA, "Payee", "")

		const rounds, ordinary = 5, 6
		for round := range rounds {
			type outcome struct {
				kind string
				p    *core.Payment
				err  error
			}
			out := make(chan outcome, ordinary+2)
			var wg sync.WaitGroup
			pay := func(kind, creditor, key string) {
				defer wg.Done()
				p, err := f.bank.CreatePayment(ctx, appA, core.NewPayment{DebtorAccountID: payer.ID,
					Creditor: core.Creditor{AccountID: creditor}, Amount: eur(t, "1.00"), IdempotencyKey: key})
				out <- outcome{kind, p, err}
			}
			wg.Add(ordinary + 2)
			for i := range ordinary {
				go pay("ordinary", payee.ID, fmt.Sprintf("r%d-%d", round, i))
			}
			go pay("twin", payee.ID, fmt.Sprintf("r%d-twin", round))
			go pay("twin", payee.ID, fmt.Sprintf("r%d-twin", round))
			wg.Wait()
			close(out)
			twins := map[string]bool{}
			for o := range out {
				switch {
				case o.err != nil || o.p.Status != core.PaymentCompleted:
					t.Errorf("round %d: %s payment: %+v, %v", round, o.kind, o.p, o.err)
				case o.kind == "twin":
					twins[o.p.ID] = true
				}
			}
			if len(twins) != 1 {
				t.Errorf("round %d: two calls with one key made %d payments", round, len(twins))
			}
		}
		want := fmt.Sprintf("%d.00", rounds*(ordinary+1))
		if booked, _ := f.balance(t, payee.ID); booked != want {
			t.Errorf("payee's balance = %s, want %s", booked, want)
		}
	})
}

// Visibility checks asked at one moment are answered by one query: each
// caller must still get the answer for its own app and customer, and a
// grant or revocation must apply to the very next check (nothing is kept
// between batches).
func TestCustomerAccessChecksAtOnceEachGetTheirOwnAnswer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		mine, _ := f.customerWithAccount(t, appA, "Mine", "")
		theirs, _ := f.customerWithAccount(t, appB, "Theirs", "")
		want := map[[2]string]bool{
			{appID(appA), mine.ID}: true, {appID(appA), theirs.ID}: false,
			{appID(appB), mine.ID}: false, {appID(appB), theirs.ID}: true,
			{"app_nobody", mine.ID}: false, {appID(appA), "cus_missing"}: false,
		}
		check := func(when string) {
			t.Helper()
			const rounds = 40
			var wg sync.WaitGroup
			for range rounds {
				for pair, ok := range want {
					wg.Add(1)
					go func() {
						defer wg.Done()
						got, err := f.bank.CanSeeCustomer(ctx, pair[0], pair[1])
						if err != nil || got != ok {
							t.Errorf("%s: CanSeeCustomer(%s, %s) = %v, %v; want %v", when, pair[0], pair[1], got, err, ok)
						}
					}()
				}
			}
			wg.Wait()
		}
		check("before the grant")

		bank := auth.BankProcess()
		if err := f.bank.GrantCustomer(ctx, bank, appID(appB), mine.ID); err != nil {
			t.Fatal(err)
		}
		want[[2]string{appID(appB), mine.ID}] = true
		check("after the grant")

		if err := f.bank.RevokeCustomer(ctx, bank, appID(appB), mine.ID); err != nil {
			t.Fatal(err)
		}
		want[[2]string{appID(appB), mine.ID}] = false
		check("after the revocation")

		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if ok, err := f.bank.CanSeeCustomer(cancelled, appID(appA), mine.ID); ok || err == nil {
			t.Errorf("a check whose context ended = %v, %v; want false and an error", ok, err)
		}
	})
}
