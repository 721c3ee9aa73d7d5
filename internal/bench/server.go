package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/netguard"
)

// server is the running node of Options.Server as a benchmark found it,
// and what the benchmark made on it (apps, webhooks, SPI registrations,
// access requests), undone at Close. Everything goes through the public
// contract: the /v1 API as a developer's app, the /bank/v1 API with the
// admin token.
type server struct {
	*api
	// Runtime is what the server runs on, as GET /bank/v1/status says.
	Runtime Runtime
	// Version is the server's version.
	Version string
	closers undo
}

// CheckServer checks that opts.Server is a Causeway node in sandbox mode
// that takes opts.AdminToken, so that a run against a wrong URL or with a
// wrong token fails once, with one clear error, before any benchmark.
func CheckServer(ctx context.Context, opts Options) error {
	s, err := connectServer(ctx, opts, 1)
	if err != nil {
		return err
	}
	return s.Close()
}

// connectServer checks opts.Server (see CheckServer) and returns it, with
// a client keeping up to idleConns idle connections.
func connectServer(ctx context.Context, opts Options, idleConns int) (*server, error) {
	base := strings.TrimRight(opts.Server, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want the base URL of a running node, such as http://127.0.0.1:8080", opts.Server)
	}
	if opts.AdminToken == "" {
		return nil, fmt.Errorf("server %s: the benchmarks need its bank admin token (to lift their apps' rate limits, and more): give --admin-token", base)
	}
	s := &server{api: newAPI(base, opts.AdminToken, idleConns)}
	var st struct {
		Version  string `json:"version"`
		Mode     string `json:"mode"`
		Database struct {
			Engine string `json:"engine"`
		} `json:"database"`
		Bus struct {
			Kind string `json:"kind"`
		} `json:"bus"`
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = s.call(ctx, http.MethodGet, "/bank/v1/status", s.Admin, nil, http.StatusOK, &st)
	var answer *apiError
	switch {
	case errors.As(err, &answer) && answer.Status == http.StatusUnauthorized:
		return nil, fmt.Errorf("server %s refused the admin token (GET /bank/v1/status answered 401): give that server's bank admin token with --admin-token (serve reads it from --admin-token or keeps it in <data-dir>/admin-token)", base)
	case errors.As(err, &answer):
		return nil, fmt.Errorf("server %s: GET /bank/v1/status answered %d, want 200: is it a Causeway node? (%w)", base, answer.Status, err)
	case err != nil:
		return nil, fmt.Errorf("server %s is not reachable: %w", base, err)
	case st.Mode != "sandbox":
		return nil, fmt.Errorf("server %s runs in %s mode: the benchmarks sign up apps and use their seeded accounts, which needs a node in sandbox mode (serve --mode sandbox, the default)", base, st.Mode)
	}
	s.Runtime = Runtime{Database: st.Database.Engine, Bus: st.Bus.Kind}
	s.Version = st.Version
	return s, nil
}

// report returns an empty report of the named benchmark, measured on s.
func (s *server) report(benchmark string) *Report {
	r := NewReport(benchmark, s.Runtime)
	r.Target = s.URL
	return r
}

// signUp signs up an app (see api.signUpApp) that Close deletes.
func (s *server) signUp(ctx context.Context, name string, scopes []string) (benchApp, error) {
	app, err := s.signUpApp(ctx, name, scopes)
	if err != nil {
		return app, err
	}
	s.closers = append(s.closers, func() error { return s.deleteApp(ctx, app) })
	return app, nil
}

// refusedTarget explains the server's refusal of a URL of this process
// (a webhook receiver or an SPI endpoint listening on loopback), or
// returns err as it is.
func refusedTarget(err error, target string) error {
	if problemCode(err) != netguard.CodeNotAllowed {
		return err
	}
	return fmt.Errorf("the server refused %s, where this benchmark listens: run it on this machine with --allow-private-targets 127.0.0.0/8 (%w)", target, err)
}

// Close undoes what the benchmark made on the server, in reverse order,
// even after ctx is done.
func (s *server) Close() error {
	err := s.closers.Close()
	s.client.CloseIdleConnections()
	return err
}

// fundedAccounts lists an app's active current and savings accounts in EUR
// whose available balance carries the largest run's payments of amount
// minor units out of it, as the app sees them (GET /v1/accounts and each
// one's balances). The sandbox seeds every new app with such accounts.
func (a *api) fundedAccounts(ctx context.Context, token string, amount int64) ([]string, error) {
	var page struct {
		Data []core.Account `json:"data"`
	}
	if err := a.call(ctx, http.MethodGet, "/v1/accounts?limit=100", token, nil, http.StatusOK, &page); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	var funded []string
	for _, acc := range page.Data {
		if acc.Status != core.AccountActive || acc.Currency != "EUR" ||
			(acc.Product != core.ProductCurrent && acc.Product != core.ProductSavings) {
			continue
		}
		var b core.Balances
		if err := a.call(ctx, http.MethodGet, "/v1/accounts/"+acc.ID+"/balances", token, nil, http.StatusOK, &b); err != nil {
			return nil, fmt.Errorf("balances: %w", err)
		}
		if b.Available.Minor >= 100_000*amount {
			funded = append(funded, acc.ID)
		}
	}
	if len(funded) < 2 {
		return nil, fmt.Errorf("the app has %d funded EUR accounts, want at least 2", len(funded))
	}
	return funded, nil
}

// apiPayer makes payments between an app's accounts as the app does:
// POST /v1/payments, each under an Idempotency-Key of its own.
type apiPayer struct {
	api       *api
	tokens    oauth2.TokenSource
	accounts  []string
	amount    core.Money
	reference string
	// keys makes the Idempotency-Keys: a prefix new to each payer (the
	// seeded random sources of the load repeat from run to run, and a
	// repeated key would replay a payment a server already made) and a
	// count.
	keyPrefix string
	keys      atomic.Int64
}

func newAPIPayer(a *api, tokens oauth2.TokenSource, accounts []string, minor int64, reference string) *apiPayer {
	return &apiPayer{api: a, tokens: tokens, accounts: accounts, amount: core.Money{Minor: minor, Currency: "EUR"},
		reference: reference, keyPrefix: randomToken("bench-")}
}

// pay makes one payment between two random accounts, and fails unless it
// completed.
func (p *apiPayer) pay(ctx context.Context, rng *rand.Rand) error {
	from := rng.IntN(len(p.accounts))
	to := rng.IntN(len(p.accounts) - 1)
	if to >= from {
		to++
	}
	tok, err := p.tokens.Token()
	if err != nil {
		return err
	}
	body := map[string]any{
		"debtor_account_id": p.accounts[from],
		"creditor":          map[string]string{"account_id": p.accounts[to]},
		"amount":            p.amount,
		"reference":         p.reference,
	}
	req, err := jsonRequest(ctx, http.MethodPost, p.api.URL+"/v1/payments", body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Idempotency-Key", p.keyPrefix+"-"+strconv.FormatInt(p.keys.Add(1), 10))
	var pay core.Payment
	if err := p.api.do(req, http.StatusCreated, &pay); err != nil {
		return err
	}
	if pay.Status != core.PaymentCompleted {
		return fmt.Errorf("payment %s is %s, not completed: %+v", pay.ID, pay.Status, pay.Rejection)
	}
	return nil
}
