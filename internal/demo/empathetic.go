package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/causewayhq/causeway/client"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/dataclient"
)

// Empathetic runs the Empathetic-banking story. Before the visit the bank
// lets its branch officer's app see one of its sandbox customers, an
// outside intelligence provider's accounts.lookup SPI is activated by the
// bank, and a connected car and home assistant (two webhook subscribers of
// another app) are allowed to hear about the customer's offers. Then: a
// branch camera publishes branch.customer.arrived; the officer's app,
// subscribed to it, pulls the customer's history through the APIs; asks
// the accounts.lookup extension point for outside insights; trains a small
// model on the bank's pseudonymized-transactions dataset (requested,
// approved by the bank, downloaded encrypted to the app's own age key and
// decrypted locally) and scores the offers of /v1/offers with it; after the
// visit the bank's marketing.offer.created reaches the car and the home
// device, which call the offers API.
func Empathetic(ctx context.Context, t Target, o Options) error {
	s := &empathetic{run: begin(ctx, "Empathetic banking: a customer walks into the branch", t, o)}
	return s.steps(
		step{"before the visit: the officer's app, the outside intelligence provider and the customer's devices are set up", s.setUp},
		step{"the branch camera publishes branch.customer.arrived, and the officer's app, subscribed to it, is told", s.arrival},
		step{"the officer's app pulls the customer's history through the APIs: accounts, balances, transactions", s.history},
		step{"the accounts.lookup extension point gathers outside intelligence from the provider's SPI", s.lookup},
		step{"a model trained on partnered data scores the bank's offers for the customer", s.model},
		step{"after the visit, marketing.offer.created reaches the customer's car and home devices, which call the offers API", s.followUp},
	)
}

type empathetic struct {
	*run
	visitor  bankCustomer     // who will walk in
	customer *client.Customer // the visitor, as the officer's app sees it
	officer  *party
	provider *party
	devices  *party

	officerHook *receiver
	car, home   *receiver
	intel       *spiEndpoint
	intelReg    string

	bookings   []booking
	suggestion offer
}

// bankCustomer is a customer as the bank's API lists them.
type bankCustomer struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Address struct {
		City    string `json:"city"`
		Country string `json:"country"`
	} `json:"address"`
}

// setUp finds the visitor and sets up the three apps of the story: the
// branch officer's, the outside intelligence provider's SPI, and the
// customer's devices.
func (s *empathetic) setUp() error {
	if err := s.checkPlatform(); err != nil {
		return err
	}
	for _, step := range []func() error{s.pickVisitor, s.setUpOfficer, s.setUpProvider, s.setUpDevices} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// pickVisitor takes the first of the bank's own sandbox customers, seeded
// when the node first started (the oldest ids).
func (s *empathetic) pickVisitor() error {
	var page struct {
		Data []bankCustomer `json:"data"`
	}
	if err := s.call("GET", "/bank/v1/customers?limit=8", s.admin(), nil, http.StatusOK, &page); err != nil {
		return err
	}
	if err := s.check(len(page.Data) > 0, "the sandbox bank's customers", "none"); err != nil {
		return err
	}
	s.visitor = page.Data[0]
	visitor := s.visitor
	s.log.say("the visitor will be %s (%s), a customer of the bank from %s, %s", visitor.Name, visitor.ID, visitor.Address.City, visitor.Address.Country)
	return nil
}

// setUpOfficer makes the officer's app, built by the bank's own developers
// on the platform like any fintech's, and subscribes it to arrivals.
func (s *empathetic) setUpOfficer() error {
	visitor := s.visitor
	var err error
	s.officer, err = s.signUp("Causeway Bank branch systems", "officer-app", "bank.example", "Branch officer app",
		[]string{client.ScopeAccountsRead, client.ScopeEventsRead, client.ScopeWebhooksWrite, client.ScopeDataRead})
	if err != nil {
		return err
	}
	if err := s.grant(s.officer, visitor.ID); err != nil {
		return err
	}
	s.log.say("the bank granted the officer's app the customer %s", visitor.ID)
	s.officerHook = newReceiver("officer app webhook", s.log)
	s.officerHook.describe = func(e cloudevents.Event) string {
		var d struct {
			BranchName string  `json:"branch_name"`
			DetectedBy string  `json:"detected_by"`
			Confidence float64 `json:"confidence"`
		}
		if e.DataAs(&d) != nil || d.BranchName == "" {
			return ""
		}
		return fmt.Sprintf(": at %s, by %s (confidence %.2f)", d.BranchName, d.DetectedBy, d.Confidence)
	}
	srv, err := s.listen(s.officerHook)
	if err != nil {
		return err
	}
	return s.subscribe(s.officer, s.officerHook, srv.URL, []string{"branch.customer.arrived"}, "")
}

// setUpProvider makes the outside intelligence provider: a developer with
// an SPI at accounts.lookup for every bank process, which the bank
// activates.
func (s *empathetic) setUpProvider() error {
	var err error
	s.provider, err = s.signUp("Insight Partners", "dev", "insight.example", "Customer insights", []string{client.ScopeSPIWrite})
	if err != nil {
		return err
	}
	s.intel = &spiEndpoint{name: "Insight Partners accounts.lookup SPI", log: s.log, answer: s.insights}
	intelSrv, err := s.listen(s.intel)
	if err != nil {
		return err
	}
	tok, err := s.token(s.provider)
	if err != nil {
		return err
	}
	var reg struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
		Status string `json:"status"`
	}
	if err := s.call("POST", "/v1/spi-registrations", tok, map[string]any{
		"extension_point": "accounts.lookup", "url": intelSrv.URL, "scope": "bank",
	}, http.StatusCreated, &reg); err != nil {
		return err
	}
	if err := s.intel.setSecret(reg.Secret); err != nil {
		return s.fail("a Standard Webhooks secret for the SPI", "%v", err)
	}
	s.intelReg = reg.ID
	s.log.say("registration %s at accounts.lookup, scope bank: %s until the bank activates it", reg.ID, reg.Status)
	if err := s.check(reg.Status == "pending_activation", "a bank-scope registration waiting for activation", "status %q", reg.Status); err != nil {
		return err
	}
	var active struct {
		Status    string `json:"status"`
		OnFailure string `json:"on_failure"`
		TimeoutMS int    `json:"timeout_ms"`
	}
	if err := s.call("POST", "/bank/v1/spi-registrations/"+reg.ID+"/activate", s.admin(),
		map[string]any{"timeout_ms": 2000, "on_failure": "next", "priority": 10}, http.StatusOK, &active); err != nil {
		return err
	}
	s.cleanup(func(ctx context.Context) {
		// Leave no active registration behind on a shared node.
		req, _ := http.NewRequestWithContext(ctx, "POST", s.target.URL+"/bank/v1/spi-registrations/"+reg.ID+"/deactivate", nil)
		req.Header.Set("Authorization", "Bearer "+s.admin())
		if res, err := s.hc.Do(req); err == nil {
			res.Body.Close()
		}
	})
	s.log.say("the bank activated it: %s, deadline %d ms, on failure %s", active.Status, active.TimeoutMS, active.OnFailure)
	return s.check(active.Status == "active", "the registration active", "status %q", active.Status)
}

// setUpDevices makes the customer's devices: a car and a home assistant,
// two webhook subscribers of a connected-devices app the customer uses.
func (s *empathetic) setUpDevices() error {
	visitor := s.visitor
	var err error
	s.devices, err = s.signUp("HomeCar Connect", "dev", "homecar.example", "Car and home assistant",
		[]string{client.ScopeAccountsRead, client.ScopeEventsRead, client.ScopeWebhooksWrite})
	if err != nil {
		return err
	}
	if err := s.grant(s.devices, visitor.ID); err != nil {
		return err
	}
	s.log.say("the bank granted the devices app the customer %s (the customer linked their devices)", visitor.ID)
	s.car, s.home = newReceiver("car dashboard", s.log), newReceiver("home assistant", s.log)
	for _, dev := range []*receiver{s.car, s.home} {
		dev.describe = describeEvent
		srv, err := s.listen(dev)
		if err != nil {
			return err
		}
		// Each device hears only about its own customer.
		filter := fmt.Sprintf("data.customer_id == %q", visitor.ID)
		if err := s.subscribe(s.devices, dev, srv.URL, []string{"marketing.offer.created"}, filter); err != nil {
			return err
		}
	}
	return nil
}

// insights is the outside intelligence provider's answer to accounts.lookup.
func (s *empathetic) insights(call spiCall) (any, error) {
	var p struct {
		Customer struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			DateOfBirth string `json:"date_of_birth"`
			Homeowner   bool   `json:"homeowner"`
			Address     struct {
				City    string `json:"city"`
				Country string `json:"country"`
			} `json:"address"`
		} `json:"customer"`
		Context string `json:"context"`
	}
	if err := json.Unmarshal(call.Payload, &p); err != nil {
		return nil, err
	}
	c := p.Customer
	type insight struct {
		Kind       string  `json:"kind"`
		Title      string  `json:"title"`
		Detail     string  `json:"detail"`
		Confidence float64 `json:"confidence"`
	}
	var out []insight
	if c.Homeowner {
		out = append(out, insight{"property", "Owns their home in " + c.Address.City, "land registry: owner-occupied since before the account opened", 0.9})
	} else {
		out = append(out, insight{"property", "Rents in " + c.Address.City, "no property registered in their name", 0.8})
	}
	if dob, err := time.Parse(time.DateOnly, c.DateOfBirth); err == nil {
		age := time.Now().Year() - dob.Year()
		switch {
		case age >= 45:
			out = append(out, insight{"life_stage", fmt.Sprintf("About %d: pension planning age", age), "people of this age often review retirement savings", 0.7})
		case age <= 30:
			out = append(out, insight{"life_stage", fmt.Sprintf("About %d: early career", age), "first savings goals are typical", 0.7})
		default:
			out = append(out, insight{"life_stage", fmt.Sprintf("About %d: family years", age), "larger purchases and saving for education are typical", 0.6})
		}
	}
	out = append(out, insight{"local_economy", "Energy prices in " + c.Address.Country + " rose this year", "households with a buffer cope better with the winter bills", 0.6})
	s.log.event("%s ⇐ %s call %s (signature verified) for %s, context %s: %d insights", s.intel.name, call.ExtensionPoint, call.ID, c.ID, p.Context, len(out))
	return map[string]any{"insights": out}, nil
}

func (s *empathetic) arrival() error {
	v := s.visitor
	// The customer's home branch, in the bank's own naming.
	branch := strings.ToLower(strings.Join(strings.Fields(v.Address.City), "-")) + "-centre"
	branchName := v.Address.City + " Centre"
	id, err := s.publish(map[string]any{
		"specversion":        "1.0",
		"type":               "branch.customer.arrived",
		"source":             "/bank/branches/" + branch + "/cameras/entrance-1",
		"subject":            v.ID,
		"causewaycustomerid": v.ID,
		"data": map[string]any{
			"customer_id": v.ID, "branch_id": branch, "branch_name": branchName,
			"arrived_at": time.Now().UTC().Format(time.RFC3339Nano), "detected_by": "camera",
			"camera_id": branch + "-entrance-1", "confidence": 0.97,
		},
	})
	if err != nil {
		return err
	}
	s.log.say("the camera system published event %s: %s came into %s", id, v.ID, branchName)
	ev, err := s.awaitEvent(s.officerHook, "branch.customer.arrived", v.ID)
	if err != nil {
		return err
	}
	var data struct {
		CustomerID string `json:"customer_id"`
	}
	if err := ev.DataAs(&data); err != nil || data.CustomerID != v.ID {
		return s.fail("the arrival event naming "+v.ID, "%v %s", err, ev.Data())
	}
	s.log.ok("the officer's app knows %s is at the desk, %.1f s after the camera saw them", data.CustomerID, time.Since(ev.Time()).Seconds())
	return nil
}

func (s *empathetic) history() error {
	api := s.officer.api
	id := s.visitor.ID
	if err := s.via("GET", "/v1/customers/"+id, "SDK Customer", func() (err error) {
		s.customer, err = api.Customer(s.ctx, id)
		return err
	}); err != nil {
		return err
	}
	c := s.customer
	s.log.say("%s, born %s, %s %s, %s, homeowner %t, KYC %s", c.Name, c.DateOfBirth, c.Address.Postcode, c.Address.City, c.Address.Country, c.Homeowner, c.KYCStatus)
	var accounts []client.Account
	if err := s.via("GET", "/v1/accounts?customer_id="+id, "SDK AllAccounts", func() error {
		for a, err := range api.AllAccounts(s.ctx, client.AccountFilter{CustomerID: id}) {
			if err != nil {
				return err
			}
			accounts = append(accounts, a)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := s.check(len(accounts) > 0, "the customer's accounts", "none"); err != nil {
		return err
	}
	total := 0
	for _, a := range accounts {
		var bal *client.Balances
		if err := s.via("GET", "/v1/accounts/"+a.ID+"/balances", "SDK Balances", func() (err error) {
			bal, err = api.Balances(s.ctx, a.ID)
			return err
		}); err != nil {
			return err
		}
		var txns []client.Transaction
		if err := s.via("GET", "/v1/accounts/"+a.ID+"/transactions", "SDK AllTransactions", func() error {
			for t, err := range api.AllTransactions(s.ctx, a.ID, client.TransactionFilter{Limit: 200}) {
				if err != nil {
					return err
				}
				txns = append(txns, t)
			}
			return nil
		}); err != nil {
			return err
		}
		s.log.say("%s account %s (%s): booked %s, %d transactions in the history", a.Product, a.ID, a.IBAN, bal.Booked, len(txns))
		for _, t := range txns[:min(3, len(txns))] {
			s.log.say("   %s  %-6s %10s  %s", t.BookedAt.Format(time.DateOnly), t.Direction, t.Amount, t.Description)
		}
		for _, t := range txns {
			amount, err := t.Amount.MinorUnits()
			if err != nil {
				return s.fail("transaction amounts in minor units", "%v", err)
			}
			s.bookings = append(s.bookings, booking{accountType: a.Product, amount: float64(amount) / 100,
				credit: t.Direction == "credit", category: categoryOf(t.Description)})
		}
		total += len(txns)
	}
	return s.check(total > 0, "the customer's transaction history", "no transactions")
}

func (s *empathetic) lookup() error {
	s.log.say("extension points are called by bank processes: the officer's app asks the bank's branch system, which")
	s.log.say("invokes accounts.lookup on the app's behalf (app_id), so the app's own registrations would be asked too,")
	s.log.say("beside the bank-scope ones the bank activated; every answer's insights are merged, each with its provider")
	var res struct {
		Answered bool   `json:"answered"`
		Failed   bool   `json:"failed"`
		Provider string `json:"provider"`
		StandIn  bool   `json:"stand_in"`
		Reason   string `json:"reason"`
		Body     struct {
			Insights []struct {
				Kind       string  `json:"kind"`
				Title      string  `json:"title"`
				Detail     string  `json:"detail"`
				Confidence float64 `json:"confidence"`
			} `json:"insights"`
		} `json:"body"`
	}
	if err := s.call("POST", "/bank/v1/extension-points/accounts.lookup/invoke", s.admin(), map[string]any{
		"app_id":  s.officer.app.ID,
		"payload": map[string]any{"customer": s.customer, "context": "branch.customer.arrived"},
	}, http.StatusOK, &res); err != nil {
		return err
	}
	s.log.say("answered %t by %s, stand-in %t", res.Answered, res.Provider, res.StandIn)
	for _, in := range res.Body.Insights {
		s.log.say("   [%s] %s: %s (confidence %.1f)", in.Kind, in.Title, in.Detail, in.Confidence)
	}
	return s.check(res.Answered && !res.StandIn && res.Provider == s.intelReg && len(res.Body.Insights) > 0,
		"insights answered by the provider's registration "+s.intelReg,
		"answered %t, provider %q, stand-in %t (%s), %d insights", res.Answered, res.Provider, res.StandIn, res.Reason, len(res.Body.Insights))
}

func (s *empathetic) model() error {
	data, err := s.pullDataset()
	if err != nil {
		return err
	}
	m, err := s.train(data)
	if err != nil {
		return err
	}
	return s.scoreOffers(m)
}

// pullDataset is the data scientist's part: find the dataset, make an age
// key, ask for access; the bank's part: see the request and approve it;
// then the download, decrypted locally. It returns the plaintext's path.
func (s *empathetic) pullDataset() (string, error) {
	dc, err := dataclient.New(s.ctx, s.target.URL, dataclient.Credentials{ClientID: s.officer.app.ClientID, ClientSecret: s.officer.app.ClientSecret})
	if err != nil {
		return "", s.fail("a data client", "%v", err)
	}
	var datasets []*datashare.Dataset
	if err := s.via("GET", "/v1/datasets", "dataclient Datasets", func() (err error) {
		datasets, err = dc.Datasets(s.ctx)
		return err
	}); err != nil {
		return "", err
	}
	i := slices.IndexFunc(datasets, func(d *datashare.Dataset) bool { return d.Name == datashare.GenPseudonymizedTransactions })
	if err := s.check(i >= 0, "the pseudonymized-transactions dataset in the catalog", "%d datasets", len(datasets)); err != nil {
		return "", err
	}
	ds := datasets[i]
	var cols []string
	for _, c := range ds.Columns {
		cols = append(cols, c.Name)
	}
	s.log.say("dataset %s %q: %d rows, columns %s", ds.ID, ds.Name, ds.RowCount, strings.Join(cols, ", "))

	// The data scientist's key: only its holder can read the download.
	key, err := age.GenerateX25519Identity()
	if err != nil {
		return "", s.fail("an age key", "%v", err)
	}
	s.log.say("generated an age X25519 key in memory; recipient %s", key.Recipient())
	var req *datashare.AccessRequest
	if err := s.via("POST", "/v1/dataset-access-requests", "dataclient Request", func() (err error) {
		req, err = dc.Request(s.ctx, datashare.NewAccessRequest{
			DatasetID: ds.ID, DurationDays: 7, Recipient: key.Recipient().String(),
			Purpose: "branch product suggestions: which customers hold savings worth a fixed-term deposit, predicted from how they spend",
		})
		return err
	}); err != nil {
		return "", err
	}
	s.log.say("access request %s: %s", req.ID, req.Status)
	if err := s.check(req.Status == "awaiting_approval", "the request awaiting the bank's approval", "%q", req.Status); err != nil {
		return "", err
	}

	if err := s.bankApproves(req.ID); err != nil {
		return "", err
	}

	dir, err := os.MkdirTemp("", "causeway-demo-data-*")
	if err != nil {
		return "", s.fail("a temporary directory for the download", "%v", err)
	}
	s.cleanup(func(context.Context) { os.RemoveAll(dir) })
	out := filepath.Join(dir, "transactions.csv")
	var pulled *dataclient.PullResult
	if err := s.via("GET", "/v1/dataset-access-requests/"+req.ID+"/content", "dataclient Pull", func() (err error) {
		pulled, err = dc.Pull(s.ctx, req.ID, dataclient.PullOptions{
			Output: out, Identities: []age.Identity{key}, Wait: s.wait,
			OnWait: func(d time.Duration) {
				s.log.say("the bank's data agent is preparing the encrypted content; retrying in %s", d.Round(time.Second))
			},
		})
		return err
	}); err != nil {
		return "", err
	}
	s.log.say("downloaded %d bytes of age ciphertext (ETag %s), decrypted locally to %d bytes of CSV", pulled.CiphertextBytes, pulled.ETag, pulled.PlaintextBytes)
	return out, nil
}

// bankApproves is the bank's part: it sees access request id among those
// awaiting approval, and approves it.
func (s *empathetic) bankApproves(id string) error {
	var pending struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := s.call("GET", "/bank/v1/dataset-access-requests?status=awaiting_approval&limit=200", s.admin(), nil, http.StatusOK, &pending); err != nil {
		return err
	}
	seen := false
	for _, p := range pending.Data {
		seen = seen || p.ID == id
	}
	if err := s.check(seen, "the bank to see request "+id+" awaiting approval", "%d other requests", len(pending.Data)); err != nil {
		return err
	}
	var approved struct {
		Status    string    `json:"status"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := s.call("POST", "/bank/v1/dataset-access-requests/"+id+"/approve", s.admin(),
		map[string]any{"reason": "model for branch product suggestions; pseudonymized data only"}, http.StatusOK, &approved); err != nil {
		return err
	}
	s.log.say("the bank approved it until %s", approved.ExpiresAt.Format(time.RFC3339))
	return nil
}

// train fits the saver model on the dataset at path: one example per
// pseudonymous customer with a salary.
func (s *empathetic) train(path string) (*logistic, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, s.fail("the decrypted dataset", "%v", err)
	}
	profiles, rows, err := readTransactionsCSV(f)
	f.Close()
	if err != nil {
		return nil, s.fail("the dataset as CSV", "%v", err)
	}
	var x [][]float64
	var y []bool
	savers := 0
	for _, p := range profiles {
		if p.salaries == 0 {
			continue // no salary seen: not a retail customer the model is for
		}
		x = append(x, p.features())
		y = append(y, p.saver())
		if p.saver() {
			savers++
		}
	}
	s.log.say("%d rows, %d pseudonymous customers, %d with a salary: %d savers (≥ %d EUR held), %d not", rows, len(profiles), len(x), savers, saverThreshold, len(x)-savers)
	if err := s.check(len(x) >= 4 && savers > 0 && savers < len(x), "customers of both kinds to learn from", "%d customers, %d savers", len(x), savers); err != nil {
		return nil, err
	}
	m, err := trainLogistic(x, y)
	if err != nil {
		return nil, s.fail("a trained model", "%v", err)
	}
	var ws []string
	for j, w := range m.weights {
		ws = append(ws, fmt.Sprintf("%s %+.2f", featureNames[j], w))
	}
	s.log.say("logistic regression trained in-process: %s; training accuracy %.0f%%", strings.Join(ws, ", "), 100*m.accuracy(x, y))
	return m, nil
}

// scoreOffers applies the model to the visitor's own history (read through
// the API in step 2) and ranks the bank's offers by the bank's score and
// the model's fit together.
func (s *empathetic) scoreOffers(m *logistic) error {
	var me profile
	for _, b := range s.bookings {
		me.add(b)
	}
	feats := me.features()
	p := m.predict(feats)
	s.log.say("the visitor's features from the API history: income %.2fk EUR/month, savings rate %.2f, card %.2f, housing %.2f, mortgage %t, savings account %t",
		feats[0], feats[1], feats[2], feats[3], me.mortgage, me.hasSavings)
	s.log.say("model: probability the visitor is a saver %.2f", p)

	var offers []client.Offer
	if err := s.via("GET", "/v1/offers?customer_id="+s.customer.ID, "SDK Offers", func() (err error) {
		offers, err = s.officer.api.Offers(s.ctx, s.customer.ID)
		return err
	}); err != nil {
		return err
	}
	if err := s.check(len(offers) > 0, "offers for the customer", "none"); err != nil {
		return err
	}
	type scored struct {
		client.Offer
		fit      float64
		combined int
	}
	var list []scored
	for _, o := range offers {
		f := fit(o.Product, p)
		list = append(list, scored{o, f, int(float64(o.Score)/2 + 50*f + 0.5)})
	}
	slices.SortStableFunc(list, func(a, b scored) int { return b.combined - a.combined })
	s.log.say("%-22s %10s %10s %10s", "offer", "bank score", "model fit", "combined")
	for _, o := range list {
		s.log.say("%-22s %10d %10.2f %10d", o.Title, o.Score, o.fit, o.combined)
	}
	best := list[0]
	s.suggestion = offer{ID: best.ID, Product: best.Product, Title: best.Title, Score: best.combined,
		Reason: fmt.Sprintf("%s; the branch model gives a fit of %.2f", best.Reason, best.fit)}
	s.popUp("Branch officer app · suggest to "+s.customer.Name, fmt.Sprintf("%s  (combined score %d/100)", best.Title, best.combined), best.Reason)
	return nil
}

func (s *empathetic) followUp() error {
	id, err := s.publishOffer(s.customer.ID, "branch-visit-followup", s.suggestion, []string{"push"})
	if err != nil {
		return err
	}
	s.log.say("the bank's marketing published marketing.offer.created %s for %s: %s", id, s.customer.ID, s.suggestion.Title)
	for _, dev := range []*receiver{s.car, s.home} {
		ev, err := s.awaitEvent(dev, "marketing.offer.created", s.customer.ID)
		if err != nil {
			return err
		}
		var data offerEvent
		if err := ev.DataAs(&data); err != nil {
			return s.fail("the offer event's data", "%v", err)
		}
		// The device reacts by asking the offers API what to show.
		var offers []client.Offer
		if err := s.via("GET", "/v1/offers?customer_id="+s.customer.ID, "SDK Offers, as the "+dev.name, func() (err error) {
			offers, err = s.devices.api.Offers(s.ctx, s.customer.ID)
			return err
		}); err != nil {
			return err
		}
		i := slices.IndexFunc(offers, func(o client.Offer) bool { return o.ID == data.Offer.ID })
		if err := s.check(i >= 0, "offer "+data.Offer.ID+" among the offers the "+dev.name+" reads", "%+v", offers); err != nil {
			return err
		}
		s.popUp(dev.name+" · for "+s.customer.Name, offers[i].Title, offers[i].Reason)
	}
	for _, h := range []*receiver{s.officerHook, s.car, s.home} {
		if t := h.troubles(); len(t) > 0 {
			return s.fail("every delivery to the "+h.name+" correctly signed", "%s", strings.Join(t, "; "))
		}
	}
	return nil
}
