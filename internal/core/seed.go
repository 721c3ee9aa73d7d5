package core

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Account products.
const (
	AccountCurrent = "current"
	AccountSavings = "savings"
)

// Transaction directions, as seen from the account.
const (
	DirectionCredit = "credit"
	DirectionDebit  = "debit"
)

// Categories of generated sandbox transactions.
const (
	CategoryOpeningBalance  = "opening_balance"
	CategorySalary          = "salary"
	CategoryRent            = "rent"
	CategoryMortgage        = "mortgage"
	CategoryUtilities       = "utilities"
	CategoryGroceries       = "groceries"
	CategoryCardPayment     = "card_payment"
	CategorySavingsTransfer = "savings_transfer"
)

// SandboxData is a generated population of sandbox customers with their
// accounts and transaction history.
type SandboxData struct {
	Customers []SandboxCustomer
}

// SandboxCustomer is a generated person. The embedded KYCSubject carries the
// registration details and passes RunKYCRules.
type SandboxCustomer struct {
	KYCSubject
	IsHomeowner         bool
	Latitude, Longitude float64 // of the customer's city
	MonthlyIncome       Money   // net salary
	Accounts            []SandboxAccount
}

// SandboxAccount is a generated account: always one current account, and for
// some customers a savings account after it.
type SandboxAccount struct {
	Product      string // current or savings
	Currency     string
	Transactions []SandboxTransaction // oldest first
}

// SandboxTransaction is one booked transaction. Amount is positive; Direction
// says which way it moved. A transfer between a customer's own accounts
// appears as a debit on the current account and a credit on the savings
// account with the same BookedAt.
type SandboxTransaction struct {
	BookedAt         time.Time
	Amount           Money
	Direction        string
	Category         string
	Counterparty     string
	CounterpartyIBAN string // empty for card payments and own-account transfers
	Description      string
}

// Balance returns the account's booked balance after all its transactions.
func (a SandboxAccount) Balance() Money {
	balance := Money{Currency: a.Currency}
	for _, t := range a.Transactions {
		if t.Direction == DirectionCredit {
			balance.Minor += t.Amount.Minor
		} else {
			balance.Minor -= t.Amount.Minor
		}
	}
	return balance
}

// GenerateSandbox returns the given number of sandbox customers, each with
// days of history ending at end (in end's time zone). The same seed gives identical data, and
// customer i depends only on the seed and i, so asking for more customers
// extends the population without changing the ones before. Every customer
// lives in NL, DE, FR, ES or IT, holds a EUR current account opened with a
// credit and receives a monthly salary, pays rent or a mortgage, utilities,
// weekly groceries and frequent card payments; some save monthly into a
// savings account. No account ever goes below zero.
func GenerateSandbox(seed uint64, customers int, days int, end time.Time) SandboxData {
	var data SandboxData
	for i := range max(customers, 0) {
		rng := rand.New(rand.NewPCG(seed, splitmix64(uint64(i))))
		country := &sandboxCountries[rng.IntN(len(sandboxCountries))]
		c := newSandboxCustomer(rng, country, i, end)
		c.Accounts = newSandboxHistory(rng, country, c, days, end)
		data.Customers = append(data.Customers, c)
	}
	return data
}

// splitmix64 scrambles a customer index into a PCG stream seed, so that
// neighbouring customers get unrelated random streams.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

type sandboxCity struct {
	name           string
	lat, lon       float64
	postLo, postHi int // numeric part of the postcode
	postcodeDigits int
	dutchPostcode  bool // four digits, a space and two letters
}

type sandboxCountry struct {
	code          string
	cities        []sandboxCity
	firstNames    []string
	surnames      []string
	streets       []string
	numberFirst   bool // "12 rue Pasteur" rather than "Kerkstraat 12"
	phonePrefixes []string
	phoneDigits   int
	bankCode      string // for counterparty IBANs
	employers     []string
	supermarkets  []string
	energy        []string
	telecom       []string
	merchants     []sandboxMerchant
	mortgageBank  string
}

type sandboxMerchant struct {
	name     string
	min, max int64 // cents
}

// europeanMerchants are card merchants found in every country.
var europeanMerchants = []sandboxMerchant{
	{"Starbucks", 300, 900}, {"McDonald's", 500, 2500}, {"IKEA", 1500, 25000},
	{"Zalando", 2000, 15000}, {"Amazon EU", 800, 12000}, {"H&M", 1000, 9000},
	{"Decathlon", 1000, 12000}, {"Shell", 3000, 9000}, {"Uber", 700, 3500},
	{"Booking.com", 8000, 45000}, {"Primark", 500, 6000}, {"Apple.com/bill", 99, 1299},
}

var sandboxCountries = []sandboxCountry{
	{
		code: "NL",
		cities: []sandboxCity{
			{name: "Amsterdam", lat: 52.3676, lon: 4.9041, postLo: 1011, postHi: 1109, postcodeDigits: 4, dutchPostcode: true},
			{name: "Rotterdam", lat: 51.9244, lon: 4.4777, postLo: 3011, postHi: 3089, postcodeDigits: 4, dutchPostcode: true},
			{name: "Utrecht", lat: 52.0907, lon: 5.1214, postLo: 3511, postHi: 3585, postcodeDigits: 4, dutchPostcode: true},
			{name: "Den Haag", lat: 52.0705, lon: 4.3007, postLo: 2491, postHi: 2597, postcodeDigits: 4, dutchPostcode: true},
			{name: "Eindhoven", lat: 51.4416, lon: 5.4697, postLo: 5611, postHi: 5658, postcodeDigits: 4, dutchPostcode: true},
		},
		firstNames:    []string{"Daan", "Sem", "Lucas", "Bram", "Thijs", "Jesse", "Maarten", "Ruben", "Emma", "Julia", "Sophie", "Lotte", "Fleur", "Sanne", "Anouk", "Eva"},
		surnames:      []string{"de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters"},
		streets:       []string{"Kerkstraat", "Dorpsstraat", "Stationsweg", "Molenstraat", "Schoolstraat", "Julianalaan", "Beatrixlaan", "Lindenlaan", "Parkweg", "Prinsengracht"},
		phonePrefixes: []string{"+316"},
		phoneDigits:   8,
		bankCode:      "INGB",
		employers:     []string{"Polder Logistics B.V.", "Tulip Software B.V.", "Dijkstra Bouw B.V.", "Gemeentelijke Diensten Noord", "Zorggroep De Linde"},
		supermarkets:  []string{"Albert Heijn", "Jumbo", "Lidl", "Plus"},
		energy:        []string{"Vattenfall", "Eneco", "Essent"},
		telecom:       []string{"KPN", "Odido", "Ziggo"},
		merchants:     []sandboxMerchant{{"Bol.com", 1000, 9000}, {"Thuisbezorgd.nl", 1800, 4500}, {"HEMA", 300, 3000}, {"NS", 300, 2800}, {"Kruidvat", 300, 2500}},
		mortgageBank:  "Hypotheekbank Nederland N.V.",
	},
	{
		code: "DE",
		cities: []sandboxCity{
			{name: "Berlin", lat: 52.5200, lon: 13.4050, postLo: 10115, postHi: 14199, postcodeDigits: 5},
			{name: "München", lat: 48.1351, lon: 11.5820, postLo: 80331, postHi: 81929, postcodeDigits: 5},
			{name: "Hamburg", lat: 53.5511, lon: 9.9937, postLo: 20095, postHi: 22769, postcodeDigits: 5},
			{name: "Köln", lat: 50.9375, lon: 6.9603, postLo: 50667, postHi: 51149, postcodeDigits: 5},
			{name: "Frankfurt am Main", lat: 50.1109, lon: 8.6821, postLo: 60306, postHi: 60599, postcodeDigits: 5},
		},
		firstNames:    []string{"Lukas", "Jonas", "Felix", "Maximilian", "Jürgen", "Stefan", "Tobias", "Uwe", "Anna", "Lena", "Sophie", "Katrin", "Mia", "Hannah", "Sabine", "Greta"},
		surnames:      []string{"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf"},
		streets:       []string{"Hauptstraße", "Schulstraße", "Gartenstraße", "Bahnhofstraße", "Dorfstraße", "Bergstraße", "Lindenstraße", "Goethestraße", "Schillerstraße", "Kirchstraße"},
		phonePrefixes: []string{"+49151", "+49160", "+49170", "+49176"},
		phoneDigits:   8,
		bankCode:      "37040044",
		employers:     []string{"Rhein Maschinenbau GmbH", "Spree Digital GmbH", "Nordlicht Versicherung AG", "Alpen Logistik GmbH", "Stadtwerke Mitte"},
		supermarkets:  []string{"REWE", "EDEKA", "Aldi Süd", "Lidl"},
		energy:        []string{"E.ON", "Vattenfall", "EnBW"},
		telecom:       []string{"Telekom", "Vodafone", "O2"},
		merchants:     []sandboxMerchant{{"Lieferando", 1800, 4500}, {"dm-drogerie markt", 300, 3000}, {"Deutsche Bahn", 1500, 12000}, {"MediaMarkt", 2000, 40000}, {"Rossmann", 300, 2500}},
		mortgageBank:  "Baufinanz Hypotheken AG",
	},
	{
		code: "FR",
		cities: []sandboxCity{
			{name: "Paris", lat: 48.8566, lon: 2.3522, postLo: 75001, postHi: 75020, postcodeDigits: 5},
			{name: "Lyon", lat: 45.7640, lon: 4.8357, postLo: 69001, postHi: 69009, postcodeDigits: 5},
			{name: "Marseille", lat: 43.2965, lon: 5.3698, postLo: 13001, postHi: 13016, postcodeDigits: 5},
		},
		firstNames:    []string{"Louis", "Hugo", "Théo", "Nathan", "Julien", "Mathieu", "François", "Antoine", "Léa", "Chloé", "Manon", "Camille", "Inès", "Élodie", "Amélie", "Céline"},
		surnames:      []string{"Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "Fontaine"},
		streets:       []string{"rue de la République", "rue Victor Hugo", "avenue Jean Jaurès", "rue Pasteur", "boulevard Voltaire", "rue de la Paix", "rue Gambetta", "place de la Mairie", "rue des Écoles", "avenue de la Liberté"},
		numberFirst:   true,
		phonePrefixes: []string{"+336", "+337"},
		phoneDigits:   8,
		bankCode:      "3000600001",
		employers:     []string{"Atelier Lumière SAS", "Boulangerie du Port SARL", "Transports Rhône-Alpes SA", "Logiciels de Provence SAS", "Mutuelle Santé Horizon"},
		supermarkets:  []string{"Carrefour", "Monoprix", "E.Leclerc", "Intermarché"},
		energy:        []string{"EDF", "Engie", "TotalEnergies"},
		telecom:       []string{"Orange", "SFR", "Free Mobile"},
		merchants:     []sandboxMerchant{{"Deliveroo", 1800, 4500}, {"SNCF Connect", 2000, 15000}, {"Fnac", 1500, 30000}, {"Boulangerie Paul", 200, 1500}, {"Pharmacie Centrale", 500, 4000}},
		mortgageBank:  "Crédit Immobilier Horizon",
	},
	{
		code: "ES",
		cities: []sandboxCity{
			{name: "Madrid", lat: 40.4168, lon: -3.7038, postLo: 28001, postHi: 28055, postcodeDigits: 5},
			{name: "Barcelona", lat: 41.3874, lon: 2.1686, postLo: 8001, postHi: 8042, postcodeDigits: 5},
			{name: "Sevilla", lat: 37.3891, lon: -5.9845, postLo: 41001, postHi: 41020, postcodeDigits: 5},
			{name: "Valencia", lat: 39.4699, lon: -0.3763, postLo: 46001, postHi: 46026, postcodeDigits: 5},
		},
		firstNames:    []string{"Alejandro", "Pablo", "Javier", "Álvaro", "Sergio", "José", "Andrés", "Raúl", "Lucía", "María", "Paula", "Carmen", "Sofía", "Marta", "Elena", "Nuria"},
		surnames:      []string{"García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz"},
		streets:       []string{"Calle Mayor", "Calle Real", "Avenida de la Constitución", "Calle del Sol", "Calle de la Iglesia", "Plaza de España", "Calle Nueva", "Calle San José", "Avenida de Andalucía", "Calle del Carmen"},
		phonePrefixes: []string{"+346"},
		phoneDigits:   8,
		bankCode:      "21000418",
		employers:     []string{"Soluciones Ibéricas S.L.", "Hostelería del Sol S.L.", "Construcciones Levante S.A.", "Clínica San Rafael S.L.", "Distribuciones Tajo S.A."},
		supermarkets:  []string{"Mercadona", "Carrefour", "Dia", "Eroski"},
		energy:        []string{"Iberdrola", "Endesa", "Naturgy"},
		telecom:       []string{"Movistar", "Vodafone", "Orange"},
		merchants:     []sandboxMerchant{{"Glovo", 1500, 4000}, {"Renfe", 1500, 9000}, {"El Corte Inglés", 2000, 25000}, {"Zara", 2000, 9000}, {"Farmacia Central", 400, 3500}},
		mortgageBank:  "Hipotecaria Peninsular S.A.",
	},
	{
		code: "IT",
		cities: []sandboxCity{
			{name: "Roma", lat: 41.9028, lon: 12.4964, postLo: 118, postHi: 199, postcodeDigits: 5},
			{name: "Milano", lat: 45.4642, lon: 9.1900, postLo: 20121, postHi: 20162, postcodeDigits: 5},
			{name: "Napoli", lat: 40.8518, lon: 14.2681, postLo: 80121, postHi: 80147, postcodeDigits: 5},
			{name: "Torino", lat: 45.0703, lon: 7.6869, postLo: 10121, postHi: 10156, postcodeDigits: 5},
		},
		firstNames:    []string{"Alessandro", "Lorenzo", "Matteo", "Luca", "Marco", "Niccolò", "Davide", "Andrea", "Giulia", "Francesca", "Chiara", "Sofia", "Martina", "Giorgia", "Federica", "Elena"},
		surnames:      []string{"Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Costa", "Giordano"},
		streets:       []string{"Via Roma", "Via Garibaldi", "Via Mazzini", "Via Dante Alighieri", "Corso Italia", "Via Verdi", "Via Cavour", "Piazza della Repubblica", "Via Marconi", "Via Venezia"},
		phonePrefixes: []string{"+393"},
		phoneDigits:   9,
		bankCode:      "X0542811101",
		employers:     []string{"Officine Lombarde S.p.A.", "Trattoria Fratelli S.r.l.", "Tessuti Toscani S.p.A.", "Logistica Adriatica S.r.l.", "Studio Tecnico Bellini"},
		supermarkets:  []string{"Esselunga", "Coop", "Conad", "Carrefour Market"},
		energy:        []string{"Enel Energia", "Edison", "A2A Energia"},
		telecom:       []string{"TIM", "WindTre", "Iliad"},
		merchants:     []sandboxMerchant{{"Glovo", 1500, 4000}, {"Trenitalia", 1500, 9000}, {"Feltrinelli", 1000, 6000}, {"Bar Centrale", 120, 800}, {"Farmacia Comunale", 400, 3500}},
		mortgageBank:  "Mutui Italia S.p.A.",
	},
}

var housingCompanies = map[string][]string{
	"NL": {"Grachtenhuis Verhuur B.V.", "Stadswonen Beheer B.V."},
	"DE": {"Hausverwaltung Lindenhof GmbH", "Wohnbau Nord GmbH"},
	"FR": {"Cabinet Immobilier Mercier", "Gestion Locative du Parc"},
	"ES": {"Inmobiliaria Alameda S.L.", "Alquileres Puerta del Sol S.L."},
	"IT": {"Immobiliare San Marco S.r.l.", "Gestioni Immobiliari Tevere S.r.l."},
}

// sandboxProfile is what a customer's history is generated from.
type sandboxProfile struct {
	country      *sandboxCountry
	employer     string
	landlord     string // the mortgage bank for homeowners
	housingCost  int64
	energy       string
	energyCost   int64
	telecom      string
	telecomCost  int64
	supermarket  string
	groceryDay   time.Weekday
	saves        bool
	savingsStart int64
	cardBudget   int64 // a month's card spending
	cardSpent    int64 // this month so far
}

func randPick[T any](rng *rand.Rand, items []T) T { return items[rng.IntN(len(items))] }

// randBetween returns a uniform random number in [lo, hi].
func randBetween(rng *rand.Rand, lo, hi int64) int64 { return lo + rng.Int64N(hi-lo+1) }

func eurCents(cents int64) Money { return Money{Minor: cents, Currency: "EUR"} }

func newSandboxCustomer(rng *rand.Rand, country *sandboxCountry, index int, end time.Time) SandboxCustomer {
	city := randPick(rng, country.cities)
	first, last := randPick(rng, country.firstNames), randPick(rng, country.surnames)

	age := int(randBetween(rng, 19, 79))
	dob := time.Date(end.Year()-age, end.Month(), end.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -rng.IntN(365))

	street := randPick(rng, country.streets)
	number := randBetween(rng, 1, 220)
	line1 := fmt.Sprintf("%s %d", street, number)
	if country.numberFirst {
		line1 = fmt.Sprintf("%d %s", number, street)
	}

	// The index keeps email addresses unique within one generated population.
	domains := []string{"example.com", "example.net", "example.org"}
	email := fmt.Sprintf("%s.%s%d@%s", asciiSlug(first), asciiSlug(last), index+1, randPick(rng, domains))

	phone := randPick(rng, country.phonePrefixes)
	for range country.phoneDigits {
		phone += fmt.Sprint(rng.IntN(10))
	}

	doc := string(rune('A'+rng.IntN(26))) + string(rune('A'+rng.IntN(26))) + fmt.Sprintf("%07d", rng.IntN(10_000_000))

	return SandboxCustomer{
		KYCSubject: KYCSubject{
			Type:           CustomerPerson,
			Name:           first + " " + last,
			DateOfBirth:    dob.Format(time.DateOnly),
			Email:          email,
			Phone:          phone,
			AddressLine1:   line1,
			City:           city.name,
			Postcode:       randomPostcode(rng, city),
			Country:        country.code,
			DocumentNumber: doc,
		},
		IsHomeowner:   rng.IntN(100) < 45,
		Latitude:      city.lat,
		Longitude:     city.lon,
		MonthlyIncome: eurCents(randBetween(rng, 1_800_00, 6_500_00)),
	}
}

func randomPostcode(rng *rand.Rand, city sandboxCity) string {
	code := fmt.Sprintf("%0*d", city.postcodeDigits, randBetween(rng, int64(city.postLo), int64(city.postHi)))
	if city.dutchPostcode {
		// Dutch postcodes never use F, I, O, Q, U or Y.
		const letters = "ABCDEGHJKLMNPRSTVWXZ"
		code += " " + string(letters[rng.IntN(len(letters))]) + string(letters[rng.IntN(len(letters))])
	}
	return code
}

// asciiSlug lower-cases s, folds accents and keeps only ASCII letters and
// digits: "van den Berg" becomes "vandenberg", "Müller" "muller".
func asciiSlug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r < 128 && (isDigit(byte(r)) || isASCIILetter(byte(r))):
			b.WriteRune(r)
		case accentFolds[r] != "":
			b.WriteString(accentFolds[r])
		}
	}
	return b.String()
}

// counterpartyIBAN gives every counterparty name one IBAN in its country,
// the same across customers.
func counterpartyIBAN(country *sandboxCountry, name string) string {
	h := fnv.New64a()
	h.Write([]byte(name))
	return NewIBAN(country.code, country.bankCode, h.Sum64()%10_000_000_000)
}

// newSandboxProfile draws a customer's costs and habits: employer,
// housing, energy, telecom, groceries, savings and what goes on the card.
func newSandboxProfile(rng *rand.Rand, country *sandboxCountry, c SandboxCustomer, income int64) sandboxProfile {
	p := sandboxProfile{
		country:     country,
		employer:    randPick(rng, country.employers),
		energy:      randPick(rng, country.energy),
		energyCost:  randBetween(rng, 60_00, 180_00),
		telecom:     randPick(rng, country.telecom),
		telecomCost: randBetween(rng, 25_00, 75_00),
		supermarket: randPick(rng, country.supermarkets),
		groceryDay:  time.Weekday(rng.IntN(7)),
		saves:       rng.IntN(2) == 0,
	}
	if c.IsHomeowner {
		p.landlord = country.mortgageBank
		p.housingCost = income * randBetween(rng, 20, 30) / 100
	} else {
		p.landlord = randPick(rng, housingCompanies[country.code])
		p.housingCost = income * randBetween(rng, 28, 38) / 100
	}
	if p.saves && rng.IntN(3) > 0 {
		p.savingsStart = randBetween(rng, 500_00, 25_000_00)
	}
	// What is left after the fixed costs, about 430 of groceries, the savings
	// and a 5% margin goes on the card, so that the balance drifts upwards.
	p.cardBudget = income - p.housingCost - p.energyCost - p.telecomCost - 430_00 - income/20
	if p.saves {
		p.cardBudget -= income / 10
	}
	p.cardBudget = max(p.cardBudget, 150_00)
	return p
}

// newSandboxHistory returns the customer's accounts with days of history up
// to end.

func newSandboxHistory(rng *rand.Rand, country *sandboxCountry, c SandboxCustomer, days int, end time.Time) []SandboxAccount {
	income := c.MonthlyIncome.Minor
	p := newSandboxProfile(rng, country, c, income)

	current := SandboxAccount{Product: AccountCurrent, Currency: "EUR"}
	savings := SandboxAccount{Product: AccountSavings, Currency: "EUR"}
	if days <= 0 {
		return accountsOf(p, current, savings)
	}

	loc := end.Location()
	ey, em, ed := end.Date()
	first := time.Date(ey, em, ed-(days-1), 0, 0, 0, 0, loc)

	var currentBal, savingsBal int64
	book := func(acc *SandboxAccount, bal *int64, t SandboxTransaction) bool {
		if t.BookedAt.After(end) || (t.Direction == DirectionDebit && t.Amount.Minor > *bal) {
			return false
		}
		if t.Direction == DirectionCredit {
			*bal += t.Amount.Minor
		} else {
			*bal -= t.Amount.Minor
		}
		acc.Transactions = append(acc.Transactions, t)
		return true
	}

	book(&current, &currentBal, SandboxTransaction{
		BookedAt: first, Amount: eurCents(income * randBetween(rng, 100, 300) / 100), Direction: DirectionCredit,
		Category: CategoryOpeningBalance, Counterparty: c.Name, Description: "Opening balance",
	})
	if p.savingsStart > 0 {
		book(&savings, &savingsBal, SandboxTransaction{
			BookedAt: first, Amount: eurCents(p.savingsStart), Direction: DirectionCredit,
			Category: CategoryOpeningBalance, Counterparty: c.Name, Description: "Opening balance",
		})
	}

	for d := range days {
		day := time.Date(ey, em, ed-(days-1)+d, 0, 0, 0, 0, loc)
		for _, t := range sandboxDay(rng, c, &p, day) {
			if t.Category != CategorySavingsTransfer {
				book(&current, &currentBal, t)
				continue
			}
			// Keep a buffer on the current account; skip the month otherwise.
			if currentBal-t.Amount.Minor < income/2 {
				continue
			}
			if book(&current, &currentBal, t) {
				credit := t
				credit.Direction = DirectionCredit
				credit.Description = "Transfer from current account"
				book(&savings, &savingsBal, credit)
			}
		}
	}
	return accountsOf(p, current, savings)
}

func accountsOf(p sandboxProfile, current, savings SandboxAccount) []SandboxAccount {
	if p.saves {
		return []SandboxAccount{current, savings}
	}
	return []SandboxAccount{current}
}

// sandboxDay returns one day's transactions on the current account, in time
// order; savings transfers are included as debits.
func sandboxDay(rng *rand.Rand, c SandboxCustomer, p *sandboxProfile, day time.Time) []SandboxTransaction {
	var txns []SandboxTransaction
	at := func(hour, minute int) time.Time {
		return time.Date(day.Year(), day.Month(), day.Day(), hour, minute, 0, 0, day.Location())
	}
	transfer := func(t time.Time, dir, category, counterparty, description string, cents int64) {
		txns = append(txns, SandboxTransaction{
			BookedAt: t, Amount: eurCents(cents), Direction: dir, Category: category,
			Counterparty: counterparty, CounterpartyIBAN: counterpartyIBAN(p.country, counterparty),
			Description: description,
		})
	}
	card := func(t time.Time, category, merchant string, cents int64) {
		txns = append(txns, SandboxTransaction{
			BookedAt: t, Amount: eurCents(cents), Direction: DirectionDebit, Category: category,
			Counterparty: merchant, Description: fmt.Sprintf("Card payment %s %s", merchant, c.City),
		})
	}
	month := day.Format("January 2006")

	if day.Day() == 1 {
		if c.IsHomeowner {
			transfer(at(7, 0), DirectionDebit, CategoryMortgage, p.landlord, "Mortgage instalment "+month, p.housingCost)
		} else {
			transfer(at(7, 0), DirectionDebit, CategoryRent, p.landlord, "Rent "+month, p.housingCost)
		}
	}
	if day.Day() == 5 {
		// Energy use, and so the bill, varies a little month to month.
		transfer(at(7, 30), DirectionDebit, CategoryUtilities, p.energy, "Energy "+month, p.energyCost+randBetween(rng, -15_00, 15_00))
	}
	if day.Day() == 20 {
		transfer(at(7, 30), DirectionDebit, CategoryUtilities, p.telecom, "Mobile and internet "+month, p.telecomCost)
	}
	if isPayday(day) {
		transfer(at(6, 0), DirectionCredit, CategorySalary, p.employer, "Salary "+month, c.MonthlyIncome.Minor)
	}
	if p.saves && day.Day() == 27 && rng.IntN(10) < 7 {
		amount := c.MonthlyIncome.Minor * randBetween(rng, 5, 15) / 100 / 10_00 * 10_00
		txns = append(txns, SandboxTransaction{
			BookedAt: at(9, 0), Amount: eurCents(amount), Direction: DirectionDebit, Category: CategorySavingsTransfer,
			Counterparty: c.Name, Description: "Transfer to savings",
		})
	}
	if day.Weekday() == p.groceryDay {
		card(at(int(randBetween(rng, 17, 19)), rng.IntN(60)), CategoryGroceries, p.supermarket, randBetween(rng, 40_00, 160_00))
	}
	if day.Day() == 1 {
		p.cardSpent = 0
	}
	// Spread the month's card budget: a payment that would run ahead of the
	// pro-rata share (plus some slack) is not made.
	daysInMonth := int64(time.Date(day.Year(), day.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day())
	allowed := p.cardBudget*int64(day.Day())/daysInMonth + p.cardBudget*15/100
	for range rng.IntN(4) {
		var m sandboxMerchant
		if rng.IntN(2) == 0 {
			m = randPick(rng, p.country.merchants)
		} else {
			m = randPick(rng, europeanMerchants)
		}
		amount := randBetween(rng, m.min, m.max)
		if p.cardSpent+amount > allowed {
			continue
		}
		p.cardSpent += amount
		card(at(int(randBetween(rng, 8, 22)), rng.IntN(60)), CategoryCardPayment, m.name, amount)
	}

	slices.SortStableFunc(txns, func(a, b SandboxTransaction) int { return a.BookedAt.Compare(b.BookedAt) })
	return txns
}

// isPayday reports whether salary is paid on day: the 25th, or the Friday
// before when the 25th falls on a weekend.
func isPayday(day time.Time) bool {
	payday := time.Date(day.Year(), day.Month(), 25, 0, 0, 0, 0, day.Location())
	switch payday.Weekday() {
	case time.Saturday:
		payday = payday.AddDate(0, 0, -1)
	case time.Sunday:
		payday = payday.AddDate(0, 0, -2)
	}
	return day.Day() == payday.Day()
}
