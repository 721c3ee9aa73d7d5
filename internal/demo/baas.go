package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/causewayhq/causeway/client"
)

// The SolarWorld story's fixed parts.
const (
	// installerIBAN is SolarWorld's partner installer in Seville: its
	// fraud check knows it.
	installerIBAN = "ES9121000418450200051332"
	installerName = "SolarWorld Instalaciones Sevilla SL"
	// strangerIBAN is an account in another country that the customer
	// never paid before.
	strangerIBAN = "LT121000011101001000"
	strangerName = "Baltic Quick Trade UAB"
	// fraudThreshold is the amount above which SolarWorld's fraud check
	// denies a payment to a new foreign IBAN.
	fraudThreshold = 1000_00 // minor units, EUR
)

// BaaS runs the Banking-as-a-Service story: SolarWorld, a solar-panel
// company, embeds financial services in its consumer app. Its developer
// signs up and gets an OAuth2 token; the app subscribes a webhook to loan,
// payment and offer events; it onboards a consumer with KYC and an
// account; originates a solar-panel loan decided at the
// loans.credit-decision extension point and funds it; plugs its own fraud
// detection into the bank's payments as an app-scope payments.fraud-check
// SPI, so the installer is paid and a suspicious payment is denied with
// SolarWorld's reason; and when the bank's marketing publishes an offer the
// app pops it up, tailored by the geo-location given at onboarding.
func BaaS(ctx context.Context, t Target, o Options) error {
	s := &baas{run: begin(ctx, "Banking as a Service: SolarWorld's app on Causeway", t, o)}
	return s.steps(
		step{"the platform, as the bank runs it", s.checkPlatform},
		step{"SolarWorld's developer signs up, creates an app and gets a token with a standard OAuth2 client; the app's back end subscribes to loan, payment and offer events", s.signUpAndSubscribe},
		step{"SolarWorld's app onboards a consumer, runs KYC and opens an account", s.onboard},
		step{"a solar-panel loan: applied for, decided at the loans.credit-decision extension point, funded into the account", s.loan},
		step{"SolarWorld's fraud detection plugs into the bank's payment process as an app-scope payments.fraud-check SPI", s.fraudCheck},
		step{"events reached the app as they happened; the bank's offer event makes the app pop up an offer tailored by geo-location", s.offerPopUp},
	)
}

type baas struct {
	*run
	solar    *party
	hook     *receiver
	customer *client.Customer
	account  *client.Account
	loanApp  *client.LoanApplication
	paid     *client.Payment
	denied   *client.Payment
}

func (s *baas) signUpAndSubscribe() error {
	var err error
	s.solar, err = s.signUp("SolarWorld", "dev", "solarworld.example", "SolarWorld Energy app", []string{
		client.ScopeAccountsRead, client.ScopeCustomersWrite, client.ScopePaymentsWrite, client.ScopeKYCWrite,
		client.ScopeLoansWrite, client.ScopeEventsRead, client.ScopeWebhooksWrite, client.ScopeSPIWrite})
	if err != nil {
		return err
	}
	// The app's back end: a webhook receiver that verifies each delivery.
	s.hook = newReceiver("SolarWorld webhook", s.log)
	s.hook.describe = describeEvent
	srv, err := s.listen(s.hook)
	if err != nil {
		return err
	}
	s.log.say("SolarWorld's back end listens for webhooks at %s", srv.URL)
	return s.subscribe(s.solar, s.hook, srv.URL, []string{"loan.*", "payment.*", "marketing.offer.created"}, "")
}

// describeEvent adds the interesting part of an event to its narration.
func describeEvent(e cloudevents.Event) string {
	var d struct {
		Status     string `json:"status"`
		Amount     struct{ Amount, Currency string }
		FraudCheck *struct {
			Decision string `json:"decision"`
			Reason   string `json:"reason"`
		} `json:"fraud_check"`
		Offer *offer `json:"offer"`
	}
	if json.Unmarshal(e.Data(), &d) != nil {
		return ""
	}
	switch {
	case d.Offer != nil:
		return fmt.Sprintf(": offer %q", d.Offer.Title)
	case d.FraudCheck != nil && d.FraudCheck.Decision == "deny":
		return fmt.Sprintf(": %s %s %s, fraud check %s (%s)", d.Status, d.Amount.Amount, d.Amount.Currency, d.FraudCheck.Decision, d.FraudCheck.Reason)
	case d.Status != "":
		return fmt.Sprintf(": %s %s %s", d.Status, d.Amount.Amount, d.Amount.Currency)
	}
	return ""
}

func (s *baas) onboard() error {
	income := client.EUR("3800.00")
	n := client.NewCustomer{
		Type: client.CustomerPerson, Name: "Lucía Romero Vidal", DateOfBirth: "1987-06-14",
		Email: "lucia.romero+" + s.suffix + "@example.es", Phone: "+34 955 010 203",
		Address:        client.Address{Line1: "Calle Betis 12", City: "Sevilla", Postcode: "41010", Country: "ES"},
		DocumentNumber: "ES7415926", Homeowner: true,
		Geo:           &client.Geo{Latitude: 37.3826, Longitude: -5.9963},
		MonthlyIncome: &income,
	}
	if err := s.via("POST", "/v1/customers", "SDK CreateCustomer", func() (err error) {
		s.customer, err = s.solar.api.CreateCustomer(s.ctx, n)
		return err
	}); err != nil {
		return err
	}
	c := s.customer
	s.log.say("customer %s %s, %s, homeowner %t, geo %.4f,%.4f, KYC %s", c.ID, c.Name, c.Address.City, c.Homeowner, geo(c).Latitude, geo(c).Longitude, c.KYCStatus)
	if err := s.check(strings.HasPrefix(c.ID, "cus_") && c.Geo != nil && c.Homeowner, "the customer with the geo-location and home ownership given", "%+v", c); err != nil {
		return err
	}

	var kyc *client.KYCVerification
	if err := s.via("POST", "/v1/kyc-checks", "SDK CreateKYCCheck", func() (err error) {
		kyc, err = s.solar.api.CreateKYCCheck(s.ctx, c.ID)
		return err
	}); err != nil {
		return err
	}
	var checks []string
	for _, ch := range kyc.Checks {
		checks = append(checks, ch.Name+" "+ch.Result)
	}
	s.log.say("KYC %s: %s (provider %s)", kyc.ID, kyc.Result, kyc.Provider)
	s.log.say("checks: %s", strings.Join(checks, ", "))
	if err := s.check(kyc.Result == client.KYCPass, "KYC result pass", "%s: %s", kyc.Result, strings.Join(checks, ", ")); err != nil {
		return err
	}

	if err := s.via("POST", "/v1/accounts", "SDK OpenAccount", func() (err error) {
		s.account, err = s.solar.api.OpenAccount(s.ctx, client.NewAccount{CustomerID: c.ID, Product: client.ProductCurrent, Currency: "EUR", Name: "Solar"})
		return err
	}); err != nil {
		return err
	}
	s.log.say("account %s: %s %s, IBAN %s, %s", s.account.ID, s.account.Product, s.account.Currency, s.account.IBAN, s.account.Status)
	return s.check(s.account.IBAN != "" && s.account.Status == "active", "an active account with an IBAN", "%+v", s.account)
}

func geo(c *client.Customer) client.Geo {
	if c.Geo == nil {
		return client.Geo{}
	}
	return *c.Geo
}

func (s *baas) loan() error {
	if err := s.via("POST", "/v1/loan-applications", "SDK ApplyForLoan", func() (err error) {
		s.loanApp, err = s.solar.api.ApplyForLoan(s.ctx, client.NewLoanApplication{
			CustomerID: s.customer.ID, Amount: client.EUR("12000.00"), TermMonths: 60,
			Purpose: "solar panels: 6 kWp rooftop installation", MonthlyIncome: client.EUR("3800.00"),
		})
		return err
	}); err != nil {
		return err
	}
	l := s.loanApp
	d := l.Decision
	s.log.say("application %s for %s over %d months: %s", l.ID, l.Amount, l.TermMonths, l.Status)
	s.log.say("decision at loans.credit-decision: provider %s, rate %s%%, limit %s, score %d: %s", d.Provider, d.Rate, d.Limit, d.Score, d.Reason)
	if d.Provider == "builtin" {
		s.log.say("(no outside credit provider is registered at the extension point, so the bank's own scorecard answered)")
	}
	if err := s.check(l.Status == client.LoanApproved && d.Provider != "", "the loan approved with a credit decision", "status %s, decision %+v", l.Status, d); err != nil {
		return err
	}
	if _, err := s.awaitEvent(s.hook, "loan.application.decided", l.ID); err != nil {
		return err
	}

	var funded *client.LoanApplication
	if err := s.via("POST", "/v1/loan-applications/"+l.ID+"/funding", "SDK FundLoan", func() (err error) {
		funded, err = s.solar.api.FundLoan(s.ctx, l.ID, s.account.ID)
		return err
	}); err != nil {
		return err
	}
	if err := s.check(funded.Status == client.LoanFunded && len(funded.Schedule) == 60, "the loan funded with 60 monthly instalments", "status %s with %d instalments", funded.Status, len(funded.Schedule)); err != nil {
		return err
	}
	first := funded.Schedule[0]
	s.log.say("funded into %s; first instalment due %s: principal %s + interest %s", funded.FundedAccountID, first.DueDate, first.Principal, first.Interest)
	var bal *client.Balances
	if err := s.via("GET", "/v1/accounts/"+s.account.ID+"/balances", "SDK Balances", func() (err error) {
		bal, err = s.solar.api.Balances(s.ctx, s.account.ID)
		return err
	}); err != nil {
		return err
	}
	s.log.say("balance: booked %s, available %s", bal.Booked, bal.Available)
	if err := s.check(bal.Booked.Amount == "12000.00", "a booked balance of 12000.00 EUR", "%s", bal.Booked); err != nil {
		return err
	}
	_, err := s.awaitEvent(s.hook, "loan.funded", l.ID)
	return err
}

// fraudAnswer is the payments.fraud-check answer.
type fraudAnswer struct {
	Decision string `json:"decision"`
	Score    int    `json:"score"`
	Reason   string `json:"reason"`
}

// solarWorldFraudCheck is SolarWorld's own fraud rule: its partner
// installers are trusted; a payment to a new IBAN in another country than
// the customer's, above the threshold, is denied.
func solarWorldFraudCheck(call spiCall) (fraudAnswer, string, error) {
	var p struct {
		Payment struct {
			ID       string `json:"id"`
			Creditor struct {
				IBAN string `json:"iban"`
				Name string `json:"name"`
			} `json:"creditor"`
			Amount client.Money `json:"amount"`
		} `json:"payment"`
		Debtor struct {
			Address struct {
				Country string `json:"country"`
			} `json:"address"`
		} `json:"debtor"`
	}
	if err := json.Unmarshal(call.Payload, &p); err != nil {
		return fraudAnswer{}, "", err
	}
	minor, err := p.Payment.Amount.MinorUnits()
	if err != nil {
		return fraudAnswer{}, "", err
	}
	iban, home := p.Payment.Creditor.IBAN, p.Debtor.Address.Country
	what := fmt.Sprintf("%s to %s %s", p.Payment.Amount, p.Payment.Creditor.Name, iban)
	switch {
	case iban == installerIBAN:
		return fraudAnswer{"approve", 4, "payee is a SolarWorld partner installer"}, what, nil
	case len(iban) >= 2 && iban[:2] != home && minor > fraudThreshold:
		return fraudAnswer{"deny", 93, fmt.Sprintf("new foreign IBAN (%s) above %s EUR", iban[:2], client.FromMinorUnits(fraudThreshold, "EUR").Amount)}, what, nil
	}
	return fraudAnswer{"approve", 20, "within SolarWorld's limits"}, what, nil
}

// fraudCheck plugs SolarWorld's fraud detection into the bank's payments
// as an SPI, then pays the installer (approved by it) and a stranger
// (denied by it), and reads the registration's audit.
func (s *baas) fraudCheck() error {
	fraud, regID, tok, err := s.registerFraudSPI()
	if err != nil {
		return err
	}
	if err := s.payInstaller(regID); err != nil {
		return err
	}
	if err := s.payStranger(fraud); err != nil {
		return err
	}
	return s.fraudAudit(tok, regID)
}

// registerFraudSPI starts SolarWorld's fraud service and registers it at
// payments.fraud-check for the app's own payments.
func (s *baas) registerFraudSPI() (fraud *spiEndpoint, regID, tok string, err error) {
	fraud = &spiEndpoint{name: "SolarWorld fraud-check SPI", log: s.log}
	fraud.answer = func(call spiCall) (any, error) {
		a, what, err := solarWorldFraudCheck(call)
		if err == nil {
			s.log.event("%s ⇐ %s call %s (signature verified): %s → %s, score %d: %s", fraud.name, call.ExtensionPoint, call.ID, what, a.Decision, a.Score, a.Reason)
		}
		return a, err
	}
	srv, err := s.listen(fraud)
	if err != nil {
		return nil, "", "", err
	}
	s.log.say("SolarWorld's fraud service listens at %s", srv.URL)
	tok, err = s.token(s.solar)
	if err != nil {
		return nil, "", "", err
	}
	var reg struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
		Status string `json:"status"`
		Scope  string `json:"scope"`
	}
	if err := s.call("POST", "/v1/spi-registrations", tok, map[string]any{
		"extension_point": "payments.fraud-check", "url": srv.URL, "scope": "app", "timeout_ms": 1500, "on_failure": "stand_in",
	}, http.StatusCreated, &reg); err != nil {
		return nil, "", "", err
	}
	if err := fraud.setSecret(reg.Secret); err != nil {
		return nil, "", "", s.fail("a Standard Webhooks secret for the SPI", "%v", err)
	}
	s.cleanup(func(ctx context.Context) {
		if tok, err := s.solar.tokens.Token(); err == nil {
			req, _ := http.NewRequestWithContext(ctx, "DELETE", s.target.URL+"/v1/spi-registrations/"+reg.ID, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			if res, err := s.hc.Do(req); err == nil {
				res.Body.Close()
			}
		}
	})
	s.log.say("registration %s: scope %s, status %s (an app-scope registration is active at once for the app's own payments)", reg.ID, reg.Scope, reg.Status)
	err = s.check(reg.Status == "active", "the app-scope registration active at once", "status %q", reg.Status)
	return fraud, reg.ID, tok, err
}

// payInstaller pays SolarWorld's installer, which its SPI approves.
func (s *baas) payInstaller(regID string) error {
	if err := s.via("POST", "/v1/payments", "SDK CreatePayment", func() (err error) {
		s.paid, err = s.solar.api.CreatePayment(s.ctx, client.NewPayment{
			DebtorAccountID: s.account.ID, Creditor: client.Creditor{IBAN: installerIBAN, Name: installerName},
			Amount: client.EUR("8500.00"), Reference: "SolarWorld order 6kWp, installation",
		}, client.WithIdempotencyKey("solar-installer-"+s.suffix))
		return err
	}); err != nil {
		return err
	}
	p := s.paid
	s.log.say("payment %s: 8500.00 EUR to the installer: %s; fraud check %s by %s (score %d): %s", p.ID, p.Status, fc(p).Decision, fc(p).Provider, fc(p).Score, fc(p).Reason)
	return s.check(p.Status == client.PaymentCompleted && fc(p).Provider == regID && !fc(p).StandIn,
		"the installer payment completed, checked by SolarWorld's SPI ("+regID+")", "status %s, fraud check %+v", p.Status, fc(p))
}

// payStranger pays a new foreign IBAN, which SolarWorld's SPI denies.
func (s *baas) payStranger(fraud *spiEndpoint) error {
	if err := s.via("POST", "/v1/payments", "SDK CreatePayment", func() (err error) {
		s.denied, err = s.solar.api.CreatePayment(s.ctx, client.NewPayment{
			DebtorAccountID: s.account.ID, Creditor: client.Creditor{IBAN: strangerIBAN, Name: strangerName},
			Amount: client.EUR("2000.00"), Reference: "urgent invoice",
		}, client.WithIdempotencyKey("solar-stranger-"+s.suffix))
		return err
	}); err != nil {
		return err
	}
	p := s.denied
	rejection := ""
	if p.Rejection != nil {
		rejection = p.Rejection.Code + ": " + p.Rejection.Reason
	}
	s.log.say("payment %s: 2000.00 EUR to a new Lithuanian IBAN: %s (%s); fraud check %s by %s (score %d)", p.ID, p.Status, rejection, fc(p).Decision, fc(p).Provider, fc(p).Score)
	want := "new foreign IBAN (LT) above 1000.00 EUR"
	if err := s.check(p.Status == client.PaymentRejected && fc(p).Decision == "deny" && fc(p).Reason == want,
		"the suspicious payment rejected with SolarWorld's reason "+fmt.Sprintf("%q", want), "status %s, fraud check %+v", p.Status, fc(p)); err != nil {
		return err
	}
	return s.check(fraud.hits() >= 2, "SolarWorld's SPI called for both payments", "%d calls", fraud.hits())
}

// fraudAudit reads the registration's audit of the two calls.
func (s *baas) fraudAudit(tok, regID string) error {
	var audit struct {
		Data []struct {
			Outcome   string  `json:"outcome"`
			LatencyMS float64 `json:"latency_ms"`
			StandIn   bool    `json:"stand_in"`
		} `json:"data"`
	}
	if err := s.call("GET", "/v1/spi-registrations/"+regID+"/invocations", tok, nil, http.StatusOK, &audit); err != nil {
		return err
	}
	var outcomes []string
	for _, a := range audit.Data {
		outcomes = append(outcomes, fmt.Sprintf("%s in %.1f ms", a.Outcome, a.LatencyMS))
	}
	s.log.say("the registration's audit: %s", strings.Join(outcomes, "; "))
	return s.check(len(audit.Data) == 2, "two audited invocations", "%d: %s", len(audit.Data), strings.Join(outcomes, "; "))
}

func fc(p *client.Payment) client.FraudCheck {
	if p.FraudCheck == nil {
		return client.FraudCheck{}
	}
	return *p.FraudCheck
}

func (s *baas) offerPopUp() error {
	// Every event of the story so far reached the app, signed.
	for _, want := range []struct{ typ, subject string }{
		{"payment.completed", s.paid.ID},
		{"payment.rejected", s.denied.ID},
	} {
		if _, err := s.awaitEvent(s.hook, want.typ, want.subject); err != nil {
			return err
		}
	}
	var types []string
	for _, a := range s.hook.received() {
		types = append(types, a.Event.Type())
	}
	s.log.ok("SolarWorld's webhook verified and accepted %d events: %s", len(types), strings.Join(types, ", "))
	if t := s.hook.troubles(); len(t) > 0 {
		return s.fail("every delivery correctly signed", "%s", strings.Join(t, "; "))
	}

	// The bank's marketing follows the funded loan up with its best offer
	// for this customer, which the bank's offer engine tailors to the
	// customer's home and location.
	var offers struct {
		Data []offer `json:"data"`
	}
	if err := s.call("GET", "/bank/v1/customers/"+s.customer.ID+"/offers", s.admin(), nil, http.StatusOK, &offers); err != nil {
		return err
	}
	if err := s.check(len(offers.Data) > 0, "the bank's offer engine to have an offer for the customer", "none"); err != nil {
		return err
	}
	best := offers.Data[0]
	s.log.say("the bank's best offer for %s: %s (score %d): %s", s.customer.ID, best.Title, best.Score, best.Reason)
	evID, err := s.publishOffer(s.customer.ID, "solarworld-followup", best, []string{"app", "push"})
	if err != nil {
		return err
	}
	s.log.say("the bank's marketing published marketing.offer.created %s for %s (causewaycustomerid)", evID, s.customer.ID)

	ev, err := s.awaitEvent(s.hook, "marketing.offer.created", s.customer.ID)
	if err != nil {
		return err
	}
	var data offerEvent
	if err := ev.DataAs(&data); err != nil {
		return s.fail("the offer event's data", "%v", err)
	}
	// The app reacts: it asks the offers API for the customer's current
	// offers and pops up the one the event announced.
	var current []client.Offer
	if err := s.via("GET", "/v1/offers?customer_id="+s.customer.ID, "SDK Offers", func() (err error) {
		current, err = s.solar.api.Offers(s.ctx, s.customer.ID)
		return err
	}); err != nil {
		return err
	}
	i := slices.IndexFunc(current, func(o client.Offer) bool { return o.ID == data.Offer.ID })
	if err := s.check(i >= 0, "offer "+data.Offer.ID+" among the customer's offers", "%+v", current); err != nil {
		return err
	}
	pop := current[i]
	lat := fmt.Sprintf("latitude %.1f", geo(s.customer).Latitude)
	if err := s.check(strings.Contains(pop.Reason, lat), "an offer tailored to the customer's geo-location ("+lat+")", "%q", pop.Reason); err != nil {
		return err
	}
	s.popUp("SolarWorld app · for "+s.customer.Name, pop.Title+fmt.Sprintf("  (fit %d/100)", pop.Score), pop.Reason)
	return nil
}

// popUp draws what the app shows.
func (r *run) popUp(header string, lines ...string) {
	width := len([]rune(header))
	for _, l := range lines {
		width = max(width, len([]rune(l)))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", width-len([]rune(s))) }
	var b strings.Builder
	b.WriteString("      ┌─" + strings.Repeat("─", width) + "─┐\n")
	b.WriteString("      │ " + pad(header) + " │\n")
	b.WriteString("      ├─" + strings.Repeat("─", width) + "─┤\n")
	for _, l := range lines {
		b.WriteString("      │ " + pad(l) + " │\n")
	}
	b.WriteString("      └─" + strings.Repeat("─", width) + "─┘\n")
	r.log.raw(b.String())
}
