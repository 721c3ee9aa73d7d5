package core

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/ids"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
)

// KYCPending is the KYC status of a customer no check has run on yet; the
// others are the check results KYCPass, KYCFail and KYCRefer.
const KYCPending = "pending"

// Address is a postal address.
type Address struct {
	Line1    string `json:"line1" maxLength:"200"`
	City     string `json:"city" maxLength:"100"`
	Postcode string `json:"postcode" maxLength:"20"`
	Country  string `json:"country" maxLength:"2" doc:"ISO 3166-1 alpha-2"`
}

// Geo is where a customer lives, for offers that depend on it.
type Geo struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

// Customer is a person or business that banks with the sandbox bank.
type Customer struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	Name           string    `json:"name"`
	DateOfBirth    string    `json:"date_of_birth,omitempty"`
	Email          string    `json:"email"`
	Phone          string    `json:"phone,omitempty"`
	Address        Address   `json:"address"`
	DocumentNumber string    `json:"document_number,omitempty"`
	Homeowner      bool      `json:"homeowner"`
	Geo            *Geo      `json:"geo,omitempty"`
	MonthlyIncome  *Money    `json:"monthly_income,omitempty"`
	KYCStatus      string    `json:"kyc_status"`
	CreatedAt      time.Time `json:"created_at"`
}

// NewCustomer is what a caller gives to create a customer.
type NewCustomer struct {
	Type           string
	Name           string
	DateOfBirth    string
	Email          string
	Phone          string
	Address        Address
	DocumentNumber string
	Homeowner      bool
	Geo            *Geo
	MonthlyIncome  *Money
}

// Validate checks the fields every customer must have. KYC checks more.
func (n *NewCustomer) Validate() error {
	if n.Type != CustomerPerson && n.Type != CustomerBusiness {
		return causeway.Errorf(causeway.EINVALID, "invalid_customer_type", "type must be person or business")
	}
	n.Name = strings.TrimSpace(n.Name)
	if n.Name == "" || len(n.Name) > 200 {
		return causeway.Errorf(causeway.EINVALID, "invalid_name", "name is required (at most 200 characters)")
	}
	if n.Type == CustomerPerson {
		if _, err := time.Parse(time.DateOnly, n.DateOfBirth); err != nil {
			return causeway.Errorf(causeway.EINVALID, "invalid_date_of_birth", "date_of_birth must be YYYY-MM-DD")
		}
	} else if n.DateOfBirth != "" {
		if _, err := time.Parse(time.DateOnly, n.DateOfBirth); err != nil {
			return causeway.Errorf(causeway.EINVALID, "invalid_date_of_birth", "date_of_birth must be YYYY-MM-DD")
		}
	}
	if !ValidEmail(n.Email) {
		return causeway.Errorf(causeway.EINVALID, "invalid_email", "email %q is not a valid address", n.Email)
	}
	n.Address.Country = strings.ToUpper(strings.TrimSpace(n.Address.Country))
	if !IsCountryCode(n.Address.Country) {
		return causeway.Errorf(causeway.EINVALID, "invalid_country", "address.country must be an ISO 3166-1 alpha-2 code")
	}
	if n.Geo != nil && (n.Geo.Latitude < -90 || n.Geo.Latitude > 90 || n.Geo.Longitude < -180 || n.Geo.Longitude > 180) {
		return causeway.Errorf(causeway.EINVALID, "invalid_geo", "geo must be a latitude in [-90, 90] and a longitude in [-180, 180]")
	}
	if n.MonthlyIncome != nil && n.MonthlyIncome.Minor < 0 {
		return causeway.Errorf(causeway.EINVALID, "invalid_amount", "monthly_income must not be negative")
	}
	return nil
}

// Customer access sources.
const (
	AccessCreated = "created"
	AccessSeeded  = "seeded"
	AccessGranted = "granted"
)

// CreateCustomer creates a customer, for an app (which may then see it) or
// the bank; any other caller is EFORBIDDEN.
func (b *Bank) CreateCustomer(ctx context.Context, caller auth.Caller, n NewCustomer) (*Customer, error) {
	appID, isApp := caller.App()
	if !isApp && !caller.IsBank() {
		return nil, causeway.Errorf(causeway.EFORBIDDEN, "forbidden", "customers are created by an app or the bank, not %s", caller)
	}
	if err := n.Validate(); err != nil {
		return nil, err
	}
	c := &Customer{
		ID: ids.New("cus"), Type: n.Type, Name: n.Name, DateOfBirth: n.DateOfBirth, Email: n.Email,
		Phone: n.Phone, Address: n.Address, DocumentNumber: n.DocumentNumber, Homeowner: n.Homeowner,
		Geo: n.Geo, MonthlyIncome: n.MonthlyIncome, KYCStatus: KYCPending, CreatedAt: b.now().UTC().Truncate(time.Microsecond),
	}
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := insertCustomer(ctx, tx, c, appID); err != nil {
			return err
		}
		if isApp {
			if err := grantAccess(ctx, tx, appID, c.ID, AccessCreated, c.CreatedAt); err != nil {
				return err
			}
		}
		return b.events.WriteEvents(ctx, tx, []Event{{
			Type: "customer.created", Subject: c.ID, Data: c, CustomerID: c.ID,
		}})
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func insertCustomer(ctx context.Context, tx *sql.Tx, c *Customer, appID string) error {
	var lat, lon string
	if c.Geo != nil {
		lat = strconv.FormatFloat(c.Geo.Latitude, 'f', -1, 64)
		lon = strconv.FormatFloat(c.Geo.Longitude, 'f', -1, 64)
	}
	var income int64
	if c.MonthlyIncome != nil {
		income = c.MonthlyIncome.Minor
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO core_customers
		(id, type, name, date_of_birth, email, phone, address_line1, city, postcode, country,
		 document_number, homeowner, latitude, longitude, monthly_income, kyc_status, created_by_app, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		c.ID, c.Type, c.Name, c.DateOfBirth, c.Email, c.Phone, c.Address.Line1, c.Address.City,
		c.Address.Postcode, c.Address.Country, c.DocumentNumber, c.Homeowner, lat, lon, income,
		c.KYCStatus, appID, store.Micros(c.CreatedAt))
	return err
}

func grantAccess(ctx context.Context, tx *sql.Tx, appID, customerID, source string, at time.Time) error {
	_, err := addAccess(ctx, tx, appID, customerID, source, at)
	return err
}

// addAccess is grantAccess that reports whether the access is new.
func addAccess(ctx context.Context, tx *sql.Tx, appID, customerID, source string, at time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO core_customer_access (app_id, customer_id, source, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (app_id, customer_id) DO NOTHING`,
		appID, customerID, source, store.Micros(at))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// GrantCustomer lets an app see a customer it did not create (the bank's
// decision, e.g. for a partner; anyone else is EFORBIDDEN bank_only). A
// grant that gives access the app did not have is recorded in the audit
// trail (grant.create, on the app).
func (b *Bank) GrantCustomer(ctx context.Context, caller auth.Caller, appID, customerID string) error {
	if err := caller.RequireBank(); err != nil {
		return err
	}
	if appID == "" {
		return causeway.Errorf(causeway.EINVALID, "invalid_app", "app_id is required")
	}
	return b.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := getCustomer(ctx, tx, asBank, customerID); err != nil {
			return err
		}
		added, err := addAccess(ctx, tx, appID, customerID, AccessGranted, b.now())
		if err != nil || !added {
			return err
		}
		return b.audit.RecordChange(ctx, tx, caller, Change{Action: "grant.create", TargetType: "app", TargetID: appID,
			After: accessSummary{CustomerID: customerID, Access: AccessGranted}})
	})
}

// accessSummary is an app's access to a customer in the audit trail.
type accessSummary struct {
	CustomerID string `json:"customer_id"`
	Access     string `json:"access"` // how the app has it: created, seeded or granted
}

// RevokeCustomer removes an app's access to a customer: the bank's
// decision, like GrantCustomer. Access removed is recorded in the audit
// trail (grant.delete, on the app, naming how the app had it).
func (b *Bank) RevokeCustomer(ctx context.Context, caller auth.Caller, appID, customerID string) error {
	if err := caller.RequireBank(); err != nil {
		return err
	}
	return b.db.Tx(ctx, func(tx *sql.Tx) error {
		var source string
		err := tx.QueryRowContext(ctx, `DELETE FROM core_customer_access WHERE app_id = $1 AND customer_id = $2 RETURNING source`,
			appID, customerID).Scan(&source)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // no access: nothing changes
		}
		if err != nil {
			return err
		}
		return b.audit.RecordChange(ctx, tx, caller, Change{Action: "grant.delete", TargetType: "app", TargetID: appID,
			Before: accessSummary{CustomerID: customerID, Access: source}})
	})
}

const customerColumns = `c.id, c.type, c.name, c.date_of_birth, c.email, c.phone, c.address_line1, c.city,
	c.postcode, c.country, c.document_number, c.homeowner, c.latitude, c.longitude, c.monthly_income,
	c.kyc_status, c.created_at`

func scanCustomer(row store.Scanner) (*Customer, error) {
	var c Customer
	var lat, lon string
	var income, created int64
	err := row.Scan(&c.ID, &c.Type, &c.Name, &c.DateOfBirth, &c.Email, &c.Phone, &c.Address.Line1,
		&c.Address.City, &c.Address.Postcode, &c.Address.Country, &c.DocumentNumber, &c.Homeowner,
		&lat, &lon, &income, &c.KYCStatus, &created)
	if err != nil {
		return nil, err
	}
	if lat != "" && lon != "" {
		la, _ := strconv.ParseFloat(lat, 64)
		lo, _ := strconv.ParseFloat(lon, 64)
		c.Geo = &Geo{Latitude: la, Longitude: lo}
	}
	if income > 0 {
		c.MonthlyIncome = &Money{Minor: income, Currency: "EUR"}
	}
	c.CreatedAt = store.FromMicros(created)
	return &c, nil
}

// visibleClause restricts customer alias c to those the caller may see
// (see accessClause).
func visibleClause(caller auth.Caller, argPos int) (string, []any) {
	return accessClause(caller, argPos, "c.id")
}

// accessClause is the one rule of what a caller may see, as a condition on
// the column customerID of the query it ends, with its argument at argPos:
// every customer's rows for the bank, for an app the rows of the customers
// it created, was seeded with or was granted (core_customer_access),
// nothing for anyone else. A row with no customer (the bank's internal
// accounts) is never an app's.
func accessClause(caller auth.Caller, argPos int, customerID string) (string, []any) {
	if caller.IsBank() {
		return "", nil
	}
	appID, ok := caller.App()
	if !ok {
		return " AND 1 = 0", nil
	}
	return " AND EXISTS (SELECT 1 FROM core_customer_access x WHERE x.customer_id = " + customerID + " AND x.app_id = $" +
		strconv.Itoa(argPos) + ")", []any{appID}
}

func getCustomer(ctx context.Context, q store.Querier, caller auth.Caller, id string) (*Customer, error) {
	clause, args := visibleClause(caller, 2)
	row := q.QueryRowContext(ctx, "SELECT "+customerColumns+" FROM core_customers c WHERE c.id = $1"+clause,
		append([]any{id}, args...)...)
	c, err := scanCustomer(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, causeway.Errorf(causeway.ENOTFOUND, "customer_not_found", "no customer %s", id)
	}
	return c, store.Classify(err)
}

// Customer returns one customer the caller may see; any other id is
// ENOTFOUND, never another tenant's data.
func (b *Bank) Customer(ctx context.Context, caller auth.Caller, id string) (*Customer, error) {
	return getCustomer(ctx, b.db, caller, id)
}

// Customers lists the customers the caller may see, oldest first.
func (b *Bank) Customers(ctx context.Context, caller auth.Caller, limit int, cursor string) (*page.Page[*Customer], error) {
	limit, after, err := page.Args(limit, cursor)
	if err != nil {
		return nil, err
	}
	clause, args := visibleClause(caller, 3)
	rows, err := b.db.QueryContext(ctx, "SELECT "+customerColumns+" FROM core_customers c WHERE c.id > $1"+clause+
		" ORDER BY c.id LIMIT $2", append([]any{after, limit + 1}, args...)...)
	if err != nil {
		return nil, store.Classify(err)
	}
	return page.Collect(rows, limit, scanCustomer, func(c *Customer) string { return c.ID })
}
