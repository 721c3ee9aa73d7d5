package identity

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// ticketApp creates an app with scopes and returns it as its access token
// authenticates it.
func (e *env) ticketApp(email string, scopes ...string) *auth.App {
	e.t.Helper()
	app := e.createApp(e.signUp(email).Token, scopes...)
	a, err := e.svc.AuthenticateApp(context.Background(), e.accessToken(app).AccessToken)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// issue issues a stream ticket to app or fails the test.
func (e *env) issue(app *auth.App) string {
	e.t.Helper()
	ticket, _, err := e.svc.IssueStreamTicket(context.Background(), app)
	if err != nil {
		e.t.Fatal(err)
	}
	return ticket
}

// TestStreamTicketWorksOnceOnlyForItsApp: a ticket is stored as its
// SHA-256 only; of ten requests presenting it at once exactly one is let
// in, as the app that asked for it with events:read alone; every later
// use is refused.
func TestStreamTicketWorksOnceOnlyForItsApp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, Options{})
		ctx := context.Background()
		app := e.ticketApp("ticket@example.com", auth.ScopeAccountsRead, auth.ScopeEventsRead)
		other := e.ticketApp("other@example.com", auth.ScopeEventsRead)
		ticket, expires, err := e.svc.IssueStreamTicket(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ticket, "cwst_") || !expires.Equal(e.clock.Now().Add(StreamTicketTTL)) {
			t.Errorf("ticket %q expires %v, want cwst_… expiring in %v", ticket, expires, StreamTicketTTL)
		}
		theirs := e.issue(other)

		var rows []string
		r, err := db.QueryContext(ctx, `SELECT hash, app_id, client_id FROM identity_stream_tickets`)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var hash, appID, clientID string
			if err := r.Scan(&hash, &appID, &clientID); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, hash+" "+appID+" "+clientID)
		}
		r.Close()
		want := secretHash(ticket) + " " + app.ID + " " + app.ClientID
		if len(rows) != 2 || !slices.Contains(rows, want) || strings.Contains(strings.Join(rows, " "), ticket[len("cwst_"):]) {
			t.Errorf("stored tickets = %q, want only hashes, one of them %q", rows, want)
		}

		var got *auth.App
		testkit.OneWinner(t, testkit.Race(racers, func(int) error {
			a, err := e.svc.AuthenticateTicket(ctx, ticket)
			if err == nil {
				got = a
			}
			return err
		}), causeway.EUNAUTHORIZED, "invalid_ticket")
		if got.ID != app.ID || !slices.Equal(got.Scopes, []string{auth.ScopeEventsRead}) {
			t.Errorf("the ticket let in %+v, want %s with events:read only", got, app.ID)
		}
		_, err = e.svc.AuthenticateTicket(ctx, ticket)
		wantCode(t, err, "invalid_ticket")

		if a, err := e.svc.AuthenticateTicket(ctx, theirs); err != nil || a.ID != other.ID {
			t.Errorf("the other app's ticket let in %+v, %v; want %s", a, err, other.ID)
		}
		for _, bad := range []string{"", "cwst_", "cwst_" + strings.Repeat("A", 43), secretHash(ticket), strings.Repeat("cwst_", 100)} {
			_, err := e.svc.AuthenticateTicket(ctx, bad)
			wantCode(t, err, "invalid_ticket")
		}
	})
}

// TestStreamTicketExpiresAndIsPruned: a ticket not used within
// StreamTicketTTL is refused, and pruning deletes expired tickets only.
func TestStreamTicketExpiresAndIsPruned(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t), Options{})
	ctx := context.Background()
	app := e.ticketApp("expiry@example.com", auth.ScopeEventsRead)
	late := e.issue(app)
	unused := e.issue(app)
	e.clock.Advance(StreamTicketTTL)
	_, err := e.svc.AuthenticateTicket(ctx, late)
	wantCode(t, err, "ticket_expired")

	fresh := e.issue(app)
	if n, err := e.svc.PruneStreamTickets(ctx, e.clock.Now()); err != nil || n != 1 {
		t.Errorf("pruned %d, %v; want the one expired ticket left", n, err)
	}
	_, err = e.svc.AuthenticateTicket(ctx, unused)
	wantCode(t, err, "invalid_ticket")
	if _, err := e.svc.AuthenticateTicket(ctx, fresh); err != nil {
		t.Errorf("a ticket within its minute after pruning: %v", err)
	}
}

// TestStreamTicketDiesWithItsAppsSuspension: tickets are bound to the
// app's token generation, like access tokens: a suspension kills the
// tickets issued before it, also after the app is reinstated, and a
// credential from before a suspension gets no ticket.
func TestStreamTicketDiesWithItsAppsSuspension(t *testing.T) {
	e := newEnv(t, storetest.OpenSQLite(t), Options{})
	ctx := context.Background()
	app := e.ticketApp("suspended@example.com", auth.ScopeEventsRead)
	before := e.issue(app)
	beforeToo := e.issue(app)
	if code := e.bank("POST", "/apps/"+app.ID+"/suspend", nil); code != 200 {
		t.Fatalf("suspend = %d", code)
	}
	_, err := e.svc.AuthenticateTicket(ctx, before)
	wantCode(t, err, "app_inactive")
	if code := e.bank("POST", "/apps/"+app.ID+"/approve", nil); code != 200 {
		t.Fatalf("approve = %d", code)
	}
	_, err = e.svc.AuthenticateTicket(ctx, beforeToo)
	wantCode(t, err, "token_revoked")
	_, _, err = e.svc.IssueStreamTicket(ctx, app) // app as its old token presented it
	wantCode(t, err, "app_inactive")

	noEvents := e.ticketApp("no-events@example.com", auth.ScopeAccountsRead)
	_, _, err = e.svc.IssueStreamTicket(ctx, noEvents)
	wantCode(t, err, "insufficient_scope")
}

// FuzzAuthenticateTicket: whatever comes in the ticket parameter, the
// answer is a 401 of the ticket family, never a panic or another error.
func FuzzAuthenticateTicket(f *testing.F) {
	db := storetest.OpenSQLite(f)
	if err := migrateAll(context.Background(), db); err != nil {
		f.Fatal(err)
	}
	s, err := open(db, Options{Issuer: testIssuer, PasswordCost: cheapCost, Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"", "cwst_", "cwst_abc", "cwst_\x00", "cwst_" + strings.Repeat("é", 40), "Bearer cwst_x", "cwst_%zz"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ticket string) {
		_, err := s.AuthenticateTicket(context.Background(), ticket)
		if causeway.ErrorKind(err) != causeway.EUNAUTHORIZED || causeway.ErrorCode(err) != "invalid_ticket" {
			t.Fatalf("ticket %q: %v, want 401 invalid_ticket", ticket, err)
		}
	})
}
