package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/causewayhq/causeway/client"
)

// fakePlatform is a token endpoint and one API route whose answers the
// test scripts, attempt by attempt, to show what the SDK does on the wire
// in cases a real node does not produce on demand (a dropped connection, a
// 503, a refused token).
type fakePlatform struct {
	*httptest.Server
	mu      sync.Mutex
	tokens  int      // tokens issued
	keys    []string // Idempotency-Key of every API request
	auths   []string // Authorization of every API request
	answers []func(w http.ResponseWriter, r *http.Request)
}

func newFakePlatform(t *testing.T, answers ...func(w http.ResponseWriter, r *http.Request)) *fakePlatform {
	f := &fakePlatform{answers: answers}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		if id, secret, _ := r.BasicAuth(); id != "id" || secret != "secret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"unknown client or wrong secret"}`)
			return
		}
		f.mu.Lock()
		f.tokens++
		n := f.tokens
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":900}`, n)
	})
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		i := len(f.keys)
		f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
		f.auths = append(f.auths, r.Header.Get("Authorization"))
		f.mu.Unlock()
		if i >= len(f.answers) {
			t.Errorf("unexpected request %d: %s %s", i+1, r.Method, r.URL)
			w.WriteHeader(500)
			return
		}
		f.answers[i](w, r)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakePlatform) tokensIssued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens
}

func (f *fakePlatform) requests() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...), append([]string(nil), f.auths...)
}

func created(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(201)
	fmt.Fprint(w, `{"id":"pay_1","status":"completed","amount":{"amount":"1.00","currency":"EUR"}}`)
}

func problem(status int, code string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("X-Request-Id", "req-1")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{
			"type": "https://causeway.dev/problems/" + code, "title": http.StatusText(status),
			"status": status, "detail": "scripted", "code": code, "request_id": "req-1",
		})
	}
}

// dropConnection closes the connection without an answer: a network error.
func dropConnection(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

var onePayment = client.NewPayment{DebtorAccountID: "acc_1", Creditor: client.Creditor{AccountID: "acc_2"}, Amount: client.EUR("1.00")}

func TestCreatePaymentIsRetriedOnceWithTheSameKey(t *testing.T) {
	for _, tt := range []struct {
		name  string
		first func(http.ResponseWriter, *http.Request)
	}{
		{"AfterANetworkError", dropConnection},
		{"AfterA503", problem(503, "unavailable")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, opts := range [][]client.CallOption{nil, {client.WithIdempotencyKey("order-7")}} {
				f := newFakePlatform(t, tt.first, created)
				// Without keep-alives every attempt has a fresh
				// connection, which net/http never retries by itself:
				// the retry seen here is the SDK's.
				hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
				p, err := client.New(f.URL, "id", "secret", client.WithHTTPClient(hc)).CreatePayment(t.Context(), onePayment, opts...)
				if err != nil || p.ID != "pay_1" || p.Amount != client.EUR("1.00") {
					t.Fatalf("payment = %+v, %v", p, err)
				}
				keys, _ := f.requests()
				if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
					t.Errorf("Idempotency-Key of the two attempts: %q", keys)
				}
				if opts != nil && keys[0] != "order-7" {
					t.Errorf("Idempotency-Key = %q, want the caller's order-7", keys[0])
				}
			}
		})
	}
}

func TestARetryThatFailsAgainReturnsTheSecondFailure(t *testing.T) {
	f := newFakePlatform(t, problem(503, "unavailable"), problem(503, "unavailable"))
	_, err := client.New(f.URL, "id", "secret").CreatePayment(t.Context(), onePayment)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 503 || e.Code != "unavailable" || e.RequestID != "req-1" {
		t.Fatalf("err = %v", err)
	}
	if keys, _ := f.requests(); len(keys) != 2 {
		t.Errorf("%d attempts, want 2", len(keys))
	}
}

func TestOtherErrorsAreNotRetried(t *testing.T) {
	for _, status := range []int{400, 404, 409, 422, 429, 500} {
		f := newFakePlatform(t, problem(status, "scripted_code"))
		_, err := client.New(f.URL, "id", "secret").CreatePayment(t.Context(), onePayment)
		var e *client.Error
		if !errors.As(err, &e) || e.Status != status || e.Code != "scripted_code" || e.Detail != "scripted" {
			t.Errorf("%d: err = %v", status, err)
		}
		if client.IsNotFound(err) != (status == 404) {
			t.Errorf("%d: IsNotFound = %v", status, client.IsNotFound(err))
		}
		if keys, _ := f.requests(); len(keys) != 1 {
			t.Errorf("%d: %d attempts, want 1", status, len(keys))
		}
	}
}

func TestACancelledCallIsNotRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		// Once the body is read, the server notices the client leaving.
		io.Copy(io.Discard, r.Body)
		cancel()
		<-r.Context().Done()
	})
	_, err := client.New(f.URL, "id", "secret").CreatePayment(ctx, onePayment)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if keys, _ := f.requests(); len(keys) != 1 {
		t.Errorf("%d attempts, want 1", len(keys))
	}
}

func TestEachCallGetsItsOwnRandomKey(t *testing.T) {
	f := newFakePlatform(t, created, created)
	c := client.New(f.URL, "id", "secret")
	for range 2 {
		if _, err := c.CreatePayment(t.Context(), onePayment); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := f.requests()
	if keys[0] == "" || keys[0] == keys[1] {
		t.Errorf("keys of two calls: %q", keys)
	}
}

func TestTheTokenIsFetchedOnceAndRenewedWhenRefused(t *testing.T) {
	ok := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"data":[{"id":"acc_1","currency":"EUR"}],"next_cursor":""}`)
	}
	f := newFakePlatform(t, ok, ok, ok, problem(401, "unauthorized"), ok, problem(401, "unauthorized"), problem(401, "unauthorized"))
	c := client.New(f.URL, "id", "secret")
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := c.Accounts(t.Context(), client.AccountFilter{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.tokensIssued(); n != 1 {
		t.Errorf("three concurrent calls fetched %d tokens, want 1", n)
	}
	// A refused token is replaced once, and the call sent again.
	if _, err := c.Accounts(t.Context(), client.AccountFilter{}); err != nil {
		t.Fatal(err)
	}
	_, auths := f.requests()
	if auths[3] != "Bearer tok-1" || auths[4] != "Bearer tok-2" {
		t.Errorf("Authorization before and after a 401: %q, %q", auths[3], auths[4])
	}
	// A second refusal in a row is the caller's.
	_, err := c.Accounts(t.Context(), client.AccountFilter{})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 401 {
		t.Errorf("err = %v, want 401", err)
	}
	if n := f.tokensIssued(); n != 3 {
		t.Errorf("%d tokens issued, want 3", n)
	}
}

func TestARefusedTokenRequestIsAnError(t *testing.T) {
	f := newFakePlatform(t)
	_, err := client.New(f.URL, "id", "wrong").Accounts(t.Context(), client.AccountFilter{})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 401 || e.Code != "invalid_client" || e.Detail != "unknown client or wrong secret" {
		t.Fatalf("err = %v", err)
	}
	if keys, _ := f.requests(); len(keys) != 0 {
		t.Errorf("the API was called without a token")
	}
}

func TestAnAnswerThatIsNotAProblemStillGivesAnError(t *testing.T) {
	f := newFakePlatform(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("X-Request-Id", "proxy-9")
		w.WriteHeader(502)
		fmt.Fprint(w, "<html>Bad Gateway</html>")
	})
	_, err := client.New(f.URL, "id", "secret").Account(t.Context(), "acc_1")
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 502 || e.Code != "" || e.Title != "Bad Gateway" || e.RequestID != "proxy-9" || !strings.Contains(e.Detail, "Bad Gateway") {
		t.Fatalf("err = %#v", err)
	}
}

func TestAllAccountsStopsAtTheFirstError(t *testing.T) {
	page := func(next string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"data":[{"id":"acc_%s"}],"next_cursor":%q}`, next, next)
		}
	}
	f := newFakePlatform(t, page("a"), page("b"), problem(400, "invalid_cursor"))
	var ids []string
	var errs []error
	for acc, err := range client.New(f.URL, "id", "secret").AllAccounts(t.Context(), client.AccountFilter{Limit: 1}) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids = append(ids, acc.ID)
	}
	if strings.Join(ids, ",") != "acc_a,acc_b" || len(errs) != 1 {
		t.Errorf("walked %v, errors %v", ids, errs)
	}
}

func TestMoneyMinorUnits(t *testing.T) {
	for _, tt := range []struct {
		m    client.Money
		want int64
		ok   bool
	}{
		{client.EUR("12.34"), 1234, true},
		{client.EUR("12.3"), 1230, true},
		{client.EUR("12"), 1200, true},
		{client.EUR("-1.00"), -100, true},
		{client.NewMoney("1500", "JPY"), 1500, true},
		{client.NewMoney("1.234", "KWD"), 1234, true},
		{client.EUR("1.001"), 0, false},
		{client.EUR("1e3"), 0, false},
		{client.EUR(".5"), 0, false},
		{client.EUR(""), 0, false},
		{client.EUR("99999999999999999999"), 0, false},
	} {
		got, err := tt.m.MinorUnits()
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("%v.MinorUnits() = %d, %v", tt.m, got, err)
		}
		if tt.ok {
			back := client.FromMinorUnits(got, tt.m.Currency)
			if again, err := back.MinorUnits(); again != got || err != nil {
				t.Errorf("round trip of %v: %v is %d, %v", tt.m, back, again, err)
			}
		}
	}
	if got := client.FromMinorUnits(-5, "EUR"); got != client.EUR("-0.05") {
		t.Errorf("FromMinorUnits(-5) = %v", got)
	}
}
