package events

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The built-in event types: what the sandbox bank emits (their data is the
// resource as the public API shows it), what the bank's branches and
// marketing publish, and what the platform itself says about data access
// and webhooks. Their schemas describe the data the sandbox bank really
// sends; TestBuiltinSchemasMatchWhatTheSandboxBankEmits holds them to it.
// Objects allow properties beyond those listed, so adding a field is not a
// breaking change.

// source is the CloudEvents source of the examples.
const exampleSource = "/causeway/sandbox-bank"

// builtinTypes lists the built-in catalog.
//
// It is long because it is the catalogue itself: one entry per type, read
// as one list.
func builtinTypes() []EventType {
	return []EventType{
		{
			Type:        "customer.created",
			Description: "A customer was onboarded. The data is the customer as GET /v1/customers/{id} shows it.",
			Schema:      schemaOf("customer.created", customerSchema()),
			Example:     example("customer.created", "cus_01jqz8r3k2m4n6p8q0s2t4v6w8", customerExample),
		},
		{
			Type:        "account.opened",
			Description: "An account was opened for a customer. The data is the account.",
			Schema:      schemaOf("account.opened", accountSchema()),
			Example:     example("account.opened", "acc_01jqz8r5a1b3c5d7e9f1g3h5j7", accountExample),
		},
		{
			Type:        "transaction.booked",
			Description: "A transaction was booked on an account (a payment, a deposit, a loan disbursement). The data is the transaction as the account's transaction list shows it.",
			Schema:      schemaOf("transaction.booked", transactionSchema()),
			Example:     example("transaction.booked", "txn_01jqz8s0c2d4e6f8g0h2j4k6m8", transactionExample),
		},
		{
			Type:        "payment.completed",
			Description: "A payment was executed: the money left the debtor account. The data is the payment.",
			Schema:      schemaOf("payment.completed", paymentSchema("completed")),
			Example:     example("payment.completed", "pay_01jqz8s0a8b0c2d4e6f8g0h2j4", paymentExample("completed", "")),
		},
		{
			Type:        "payment.rejected",
			Description: "A payment was refused (insufficient funds, fraud check, closed account, or a reviewer's decision). The data is the payment with its rejection.",
			Schema:      schemaOf("payment.rejected", paymentSchema("rejected")),
			Example: example("payment.rejected", "pay_01jqz8t4m6n8p0q2r4s6t8v0w2",
				paymentExample("rejected", `,"rejection":{"code":"insufficient_funds","reason":"the available balance is lower than the amount"}`)),
		},
		{
			Type:        "payment.held",
			Description: "A payment was held for review after its fraud check; a payment.completed or payment.rejected follows. The data is the payment.",
			Schema:      schemaOf("payment.held", paymentSchema("held")),
			Example:     example("payment.held", "pay_01jqz8v1x3y5z7a9b1c3d5e7f9", paymentExample("held", "")),
		},
		{
			Type:        "kyc.check.completed",
			Description: "A KYC check on a customer finished. The data is the check with its result and the individual checks.",
			Schema:      schemaOf("kyc.check.completed", kycSchema()),
			Example:     example("kyc.check.completed", "kyc_01jqz8r9h1j3k5m7n9p1q3r5s7", kycExample),
		},
		{
			Type:        "loan.application.decided",
			Description: "A loan application was decided: approved, declined or referred to a person. The data is the application with its decision.",
			Schema:      schemaOf("loan.application.decided", loanSchema(false)),
			Example:     example("loan.application.decided", "loa_01jqz8w2b4c6d8e0f2g4h6j8k0", loanDecidedExample),
		},
		{
			Type:        "loan.funded",
			Description: "An approved loan was paid out into an account. The data is the application with its repayment schedule.",
			Schema:      schemaOf("loan.funded", loanSchema(true)),
			Example:     example("loan.funded", "loa_01jqz8w2b4c6d8e0f2g4h6j8k0", loanFundedExample),
		},
		{
			Type: "branch.customer.arrived",
			Description: "A customer walked into a branch (recognized by the branch camera or checked in at the desk). " +
				"Published by the bank; it reaches the apps that may see the customer.",
			Schema:  schemaOf("branch.customer.arrived", branchArrivalSchema()),
			Example: exampleFrom("branch.customer.arrived", "/bank/branches/ams-centraal", "cus_01jqz8r3k2m4n6p8q0s2t4v6w8", branchArrivalExample),
		},
		{
			Type: "marketing.offer.created",
			Description: "The bank's marketing made an offer. With a customer_id it reaches the apps that may see that customer; " +
				"without one it is a bank-wide campaign that reaches every app.",
			Public:  true,
			Schema:  schemaOf("marketing.offer.created", offerEventSchema()),
			Example: exampleFrom("marketing.offer.created", "/bank/marketing", "off_3f9a1c0e7b2d4a6c8e0f", offerEventExample),
		},
		{
			Type:        "dataset.access.approved",
			Description: "The bank approved an app's request for a dataset; the content can be downloaded until expires_at.",
			Schema:      schemaOf("dataset.access.approved", datasetAccessSchema("approved")),
			Example:     exampleFrom("dataset.access.approved", "/causeway/datashare", "dar_01jqz9a0c2e4g6j8m0p2r4t6v8", datasetAccessExample("approved")),
		},
		{
			Type:        "dataset.access.rejected",
			Description: "The bank rejected an app's request for a dataset.",
			Schema:      schemaOf("dataset.access.rejected", datasetAccessSchema("rejected")),
			Example:     exampleFrom("dataset.access.rejected", "/causeway/datashare", "dar_01jqz9a0c2e4g6j8m0p2r4t6v8", datasetAccessExample("rejected")),
		},
		{
			Type:        "dataset.access.revoked",
			Description: "The bank revoked an app's approved access to a dataset before it expired.",
			Schema:      schemaOf("dataset.access.revoked", datasetAccessSchema("revoked")),
			Example:     exampleFrom("dataset.access.revoked", "/causeway/datashare", "dar_01jqz9a0c2e4g6j8m0p2r4t6v8", datasetAccessExample("revoked")),
		},
		{
			Type: "webhook.disabled",
			Description: "The platform disabled one of the app's webhook subscriptions (its endpoint answered 410 Gone, or failed for too long). " +
				"Re-enable it after fixing the endpoint; POST /v1/webhooks/{id}/recover re-sends what was missed.",
			Schema:  schemaOf("webhook.disabled", webhookDisabledSchema()),
			Example: exampleFrom("webhook.disabled", "/causeway/webhooks", "wh_01jqz9b3d5f7h9k1m3p5r7t9w1", webhookDisabledExample),
		},
	}
}

// JSON Schema building blocks. A schema is a map, marshalled with sorted
// keys, so the catalog's output is stable.
type schema = map[string]any

func object(doc string, props schema, required ...string) schema {
	s := described(schema{"type": "object", "properties": props}, doc)
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func str(doc string) schema { return described(schema{"type": "string"}, doc) }

// described adds a description, if there is one.
func described(s schema, doc string) schema {
	if doc != "" {
		s["description"] = doc
	}
	return s
}

func id(prefix, doc string) schema {
	return schema{"type": "string", "pattern": "^" + prefix + "_[0-9a-z]+$", "description": doc}
}

func enum(doc string, values ...string) schema {
	return described(schema{"type": "string", "enum": values}, doc)
}

func constant(doc, value string) schema { return schema{"const": value, "description": doc} }

func timestamp(doc string) schema {
	return schema{"type": "string", "format": "date-time", "description": doc}
}

func date(doc string) schema { return schema{"type": "string", "format": "date", "description": doc} }

func integer(doc string, min, max int) schema {
	return schema{"type": "integer", "minimum": min, "maximum": max, "description": doc}
}

func number(doc string, min, max float64) schema {
	return schema{"type": "number", "minimum": min, "maximum": max, "description": doc}
}

func boolean(doc string) schema { return schema{"type": "boolean", "description": doc} }

func array(doc string, items schema) schema {
	return schema{"type": "array", "items": items, "description": doc}
}

func money(doc string) schema {
	return object(doc, schema{
		"amount":   schema{"type": "string", "pattern": `^-?[0-9]+(\.[0-9]+)?$`, "description": "Decimal string, never a float", "examples": []string{"12.34"}},
		"currency": schema{"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code", "examples": []string{"EUR"}},
	}, "amount", "currency")
}

// schemaOf completes a data schema with the dialect and a title, and
// encodes it.
func schemaOf(typ string, s schema) json.RawMessage {
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["title"] = "Data of " + typ
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("events: schema of %s: %v", typ, err))
	}
	return b
}

func customerSchema() schema {
	return object("A customer of the bank.", schema{
		"id":              id("cus", "Customer id"),
		"type":            enum("A natural person or a business", "person", "business"),
		"name":            str("Full name, or the business's registered name"),
		"date_of_birth":   date("For persons"),
		"email":           schema{"type": "string", "format": "email", "description": "Contact email"},
		"phone":           str("Contact phone number"),
		"address":         addressSchema(),
		"document_number": str("Passport or ID card number"),
		"homeowner":       boolean("Whether the customer owns their home"),
		"geo": object("Where the customer lives", schema{
			"latitude":  number("Degrees north", -90, 90),
			"longitude": number("Degrees east", -180, 180),
		}, "latitude", "longitude"),
		"monthly_income": money("Net monthly income"),
		"kyc_status":     enum("Result of the latest KYC check, pending before the first", "pending", "pass", "fail", "refer"),
		"created_at":     timestamp("When the customer was onboarded"),
	}, "id", "type", "name", "email", "address", "kyc_status", "created_at")
}

func addressSchema() schema {
	return object("Postal address", schema{
		"line1":    str("Street and number"),
		"city":     str("City"),
		"postcode": str("Postal code"),
		"country":  schema{"type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO 3166-1 alpha-2"},
	}, "line1", "city", "postcode", "country")
}

func accountSchema() schema {
	return object("A customer's account.", schema{
		"id":          id("acc", "Account id"),
		"customer_id": id("cus", "The customer who holds the account"),
		"iban":        schema{"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}$", "description": "IBAN, without spaces"},
		"currency":    schema{"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"},
		"product":     enum("Account product", "current", "savings", "loan"),
		"name":        str("A name the customer gave the account"),
		"status":      enum("Account status", "active", "closed"),
		"created_at":  timestamp("When the account was opened"),
	}, "id", "currency", "product", "status", "created_at")
}

func transactionSchema() schema {
	return object("A booked transaction, seen from the account.", schema{
		"id":                id("txn", "Transaction id"),
		"account_id":        id("acc", "The account it was booked on"),
		"amount":            money("Always positive; direction says which way it went"),
		"direction":         enum("Money in (credit) or out (debit)", "credit", "debit"),
		"description":       str("Booking text"),
		"counterparty_name": str("Who paid or was paid, when known"),
		"counterparty_iban": str("The counterparty's IBAN, when known"),
		"balance_after":     money("Booked balance after this transaction"),
		"booked_at":         timestamp("When it was booked"),
	}, "id", "account_id", "amount", "direction", "description", "balance_after", "booked_at")
}

func paymentSchema(status string) schema {
	required := []string{"id", "debtor_account_id", "creditor", "amount", "reference", "status", "created_at", "updated_at"}
	if status == "rejected" {
		required = append(required, "rejection")
	}
	return object("A payment.", schema{
		"id":                id("pay", "Payment id"),
		"debtor_account_id": id("acc", "The account the money comes from"),
		"creditor": object("Who is paid: an account in this bank, or an IBAN and name elsewhere", schema{
			"account_id": id("acc", "An account in this bank"),
			"iban":       str("The creditor's IBAN"),
			"name":       str("The creditor's name"),
		}),
		"amount":    money("The amount paid"),
		"reference": schema{"type": "string", "maxLength": 140, "description": "Payment reference"},
		"status":    constant("Payment status", status),
		"rejection": object("Why the payment was refused", schema{
			"code":   str("Machine code, e.g. insufficient_funds, fraud_denied, account_closed, rejected_after_review"),
			"reason": str("Human explanation"),
		}, "code", "reason"),
		"fraud_check": object("What the fraud check (payments.fraud-check SPI or the built-in rules) said", schema{
			"decision": enum("The provider's decision", "approve", "deny", "review"),
			"score":    integer("Risk score, higher is riskier", 0, 100),
			"reason":   str("The provider's reason"),
			"provider": str("Who decided"),
			"stand_in": boolean("True when the provider did not answer and the stand-in result was used"),
		}, "decision", "score", "provider", "stand_in"),
		"created_at": timestamp("When the payment was made"),
		"updated_at": timestamp("When its status last changed"),
	}, required...)
}

func kycSchema() schema {
	return object("A KYC check on a customer.", schema{
		"id":          id("kyc", "Check id"),
		"customer_id": id("cus", "The customer checked"),
		"result":      enum("The overall result; refer means a person must look", "pass", "fail", "refer"),
		"checks": array("The individual checks", object("", schema{
			"name":   str("What was checked, e.g. sanctions, age, document_number"),
			"result": str("pass, fail or refer"),
			"detail": str("Why"),
		}, "name", "result")),
		"provider":   str("Who checked: builtin, or the kyc.verify SPI provider"),
		"stand_in":   boolean("True when the provider did not answer and the stand-in result was used"),
		"created_at": timestamp("When the check ran"),
	}, "id", "customer_id", "result", "checks", "provider", "created_at")
}

func loanSchema(funded bool) schema {
	status := enum("Decision", "approved", "declined", "referred")
	required := []string{"id", "customer_id", "amount", "term_months", "purpose", "monthly_income", "status", "decision", "created_at"}
	if funded {
		status = constant("Status", "funded")
		required = append(required, "funded_account_id", "schedule", "funded_at")
	}
	return object("A loan application.", schema{
		"id":             id("loa", "Loan application id"),
		"customer_id":    id("cus", "The applicant"),
		"amount":         money("Amount applied for"),
		"term_months":    integer("Term", 1, 480),
		"purpose":        str("What the loan is for"),
		"monthly_income": money("The applicant's stated net monthly income"),
		"status":         status,
		"decision": object("The credit decision", schema{
			"provider": str("Who decided: builtin, or the loans.credit-decision SPI provider"),
			"reason":   str("Why"),
			"rate":     schema{"type": "string", "pattern": `^[0-9]+\.[0-9]{2}$`, "description": "Nominal annual rate in percent, e.g. 4.50"},
			"rate_bp":  schema{"type": "integer", "minimum": 0, "description": "The rate in basis points"},
			"limit":    money("The most the bank would lend"),
			"score":    schema{"type": "integer", "description": "Credit score behind the decision"},
			"stand_in": boolean("True when the provider did not answer and the stand-in result was used"),
		}, "provider", "reason", "rate", "rate_bp"),
		"funded_account_id": id("acc", "The account the loan was paid into"),
		"schedule": array("Repayment schedule, one instalment per month", object("", schema{
			"due_date":  date("When it is due"),
			"principal": money("Principal part"),
			"interest":  money("Interest part"),
		}, "due_date", "principal", "interest")),
		"created_at": timestamp("When the application was made"),
		"funded_at":  timestamp("When the loan was paid out"),
	}, required...)
}

func branchArrivalSchema() schema {
	return object("A customer's arrival at a branch.", schema{
		"customer_id":  id("cus", "Who arrived"),
		"branch_id":    str("The branch, in the bank's own naming"),
		"branch_name":  str("The branch's display name"),
		"arrived_at":   timestamp("When the customer came in"),
		"detected_by":  enum("How the arrival was noticed", "camera", "check_in", "staff"),
		"camera_id":    str("The camera that recognized the customer"),
		"confidence":   number("How sure the recognition is, 0 to 1", 0, 1),
		"visit_reason": str("Why the customer came, when they said so at the desk"),
	}, "customer_id", "branch_id", "arrived_at")
}

func offerEventSchema() schema {
	return object("An offer from the bank's marketing.", schema{
		"customer_id": id("cus", "The customer the offer is for; absent for a bank-wide campaign"),
		"campaign_id": str("The marketing campaign"),
		"offer": object("The offer, as GET /v1/offers shows it", schema{
			"id":      str("Offer id, stable per customer and product"),
			"product": str("The product offered, e.g. solar_loan, savings_deposit"),
			"title":   str("Headline to show"),
			"reason":  str("Why it fits"),
			"score":   integer("How well it fits, higher is better", 0, 100),
		}, "id", "product", "title"),
		"channels":    array("Where to show it", enum("", "app", "push", "email", "branch")),
		"valid_until": timestamp("When the offer ends"),
	}, "offer")
}

func datasetAccessSchema(status string) schema {
	return object("An app's request for access to a dataset.", schema{
		"id":            id("dar", "Access request id"),
		"dataset_id":    id("ds", "The dataset"),
		"status":        constant("Request status", status),
		"purpose":       str("What the app said it needs the data for"),
		"duration_days": schema{"type": "integer", "minimum": 1, "description": "Access asked for, in days"},
		"recipient":     schema{"type": "string", "pattern": "^age1[0-9a-z]+$", "description": "The age X25519 public key downloads are encrypted to"},
		"expires_at":    timestamp("When approved access ends"),
		"reason":        str("The bank's reason, if it gave one"),
		"decided_at":    timestamp("When the bank decided"),
	}, "id", "dataset_id", "status")
}

func webhookDisabledSchema() schema {
	return object("A webhook subscription the platform disabled.", schema{
		"id":               id("wh", "The subscription"),
		"url":              schema{"type": "string", "format": "uri", "description": "Its endpoint"},
		"reason":           str("Why it was disabled"),
		"last_status_code": schema{"type": "integer", "description": "The endpoint's last HTTP status, if it answered"},
		"disabled_at":      timestamp("When it was disabled"),
	}, "id", "reason")
}

// example builds a whole CloudEvent of typ from the sandbox bank.
func example(typ, subject, data string) json.RawMessage {
	return exampleFrom(typ, exampleSource, subject, data)
}

func exampleFrom(typ, source, subject, data string) json.RawMessage {
	ce := map[string]any{
		"specversion":     "1.0",
		"id":              "evt_01jqz8s0d6e8f0g2h4j6k8m0n2",
		"type":            typ,
		"source":          source,
		"subject":         subject,
		"time":            "2026-03-14T09:26:53.589793Z",
		"datacontenttype": "application/json",
		"data":            json.RawMessage(data),
	}
	b, err := json.Marshal(ce)
	if err != nil {
		panic(fmt.Sprintf("events: example of %s: %v", typ, err))
	}
	return b
}

const customerExample = `{
	"id": "cus_01jqz8r3k2m4n6p8q0s2t4v6w8", "type": "person", "name": "Ada Lovelace",
	"date_of_birth": "1985-04-12", "email": "ada@example.com", "phone": "+31 20 555 0100",
	"address": {"line1": "Keizersgracht 1", "city": "Amsterdam", "postcode": "1015 CJ", "country": "NL"},
	"document_number": "NX12345678", "homeowner": true,
	"geo": {"latitude": 52.3676, "longitude": 4.9041},
	"monthly_income": {"amount": "4200.00", "currency": "EUR"},
	"kyc_status": "pending", "created_at": "2026-03-14T09:26:53.589793Z"
}`

const accountExample = `{
	"id": "acc_01jqz8r5a1b3c5d7e9f1g3h5j7", "customer_id": "cus_01jqz8r3k2m4n6p8q0s2t4v6w8",
	"iban": "NL91CWAY0417164300", "currency": "EUR", "product": "current", "status": "active",
	"created_at": "2026-03-14T09:26:53.589793Z"
}`

const transactionExample = `{
	"id": "txn_01jqz8s0c2d4e6f8g0h2j4k6m8", "account_id": "acc_01jqz8r5a1b3c5d7e9f1g3h5j7",
	"amount": {"amount": "42.50", "currency": "EUR"}, "direction": "debit",
	"description": "Invoice 2026-031", "counterparty_name": "Solar World BV",
	"counterparty_iban": "DE89370400440532013000",
	"balance_after": {"amount": "1957.50", "currency": "EUR"},
	"booked_at": "2026-03-14T09:26:53.589793Z"
}`

func paymentExample(status, extra string) string {
	fraud := `"fraud_check": {"decision": "approve", "score": 12, "reason": "known payee", "provider": "builtin", "stand_in": false}`
	if status == "held" {
		fraud = `"fraud_check": {"decision": "review", "score": 71, "reason": "new payee, amount above the usual", "provider": "solarworld-fraud", "stand_in": false}`
	}
	return strings.NewReplacer("STATUS", status, "EXTRA", extra, "FRAUD", fraud).Replace(`{
	"id": "pay_01jqz8s0a8b0c2d4e6f8g0h2j4", "debtor_account_id": "acc_01jqz8r5a1b3c5d7e9f1g3h5j7",
	"creditor": {"iban": "DE89370400440532013000", "name": "Solar World BV"},
	"amount": {"amount": "42.50", "currency": "EUR"}, "reference": "Invoice 2026-031",
	"status": "STATUS"EXTRA, FRAUD,
	"created_at": "2026-03-14T09:26:53.589793Z", "updated_at": "2026-03-14T09:26:53.589793Z"
}`)
}

const kycExample = `{
	"id": "kyc_01jqz8r9h1j3k5m7n9p1q3r5s7", "customer_id": "cus_01jqz8r3k2m4n6p8q0s2t4v6w8",
	"result": "pass",
	"checks": [
		{"name": "required_fields", "result": "pass", "detail": "all present"},
		{"name": "age", "result": "pass", "detail": "adult"},
		{"name": "sanctions", "result": "pass", "detail": "no match on the sanctions list"}
	],
	"provider": "builtin", "stand_in": false, "created_at": "2026-03-14T09:26:53.589793Z"
}`

const loanDecidedExample = `{
	"id": "loa_01jqz8w2b4c6d8e0f2g4h6j8k0", "customer_id": "cus_01jqz8r3k2m4n6p8q0s2t4v6w8",
	"amount": {"amount": "12000.00", "currency": "EUR"}, "term_months": 60, "purpose": "solar panels",
	"monthly_income": {"amount": "4200.00", "currency": "EUR"}, "status": "approved",
	"decision": {"provider": "builtin", "reason": "affordable: instalment is 6% of income", "rate": "4.50", "rate_bp": 450,
		"limit": {"amount": "25000.00", "currency": "EUR"}, "score": 742, "stand_in": false},
	"created_at": "2026-03-14T09:26:53.589793Z"
}`

const loanFundedExample = `{
	"id": "loa_01jqz8w2b4c6d8e0f2g4h6j8k0", "customer_id": "cus_01jqz8r3k2m4n6p8q0s2t4v6w8",
	"amount": {"amount": "12000.00", "currency": "EUR"}, "term_months": 2, "purpose": "solar panels",
	"monthly_income": {"amount": "4200.00", "currency": "EUR"}, "status": "funded",
	"decision": {"provider": "builtin", "reason": "affordable: instalment is 6% of income", "rate": "4.50", "rate_bp": 450,
		"limit": {"amount": "25000.00", "currency": "EUR"}, "score": 742, "stand_in": false},
	"funded_account_id": "acc_01jqz8r5a1b3c5d7e9f1g3h5j7",
	"schedule": [
		{"due_date": "2026-04-14", "principal": {"amount": "5988.77", "currency": "EUR"}, "interest": {"amount": "45.00", "currency": "EUR"}},
		{"due_date": "2026-05-14", "principal": {"amount": "6011.23", "currency": "EUR"}, "interest": {"amount": "22.54", "currency": "EUR"}}
	],
	"created_at": "2026-03-14T09:26:53.589793Z", "funded_at": "2026-03-14T09:31:07.120000Z"
}`

const branchArrivalExample = `{
	"customer_id": "cus_01jqz8r3k2m4n6p8q0s2t4v6w8", "branch_id": "ams-centraal",
	"branch_name": "Amsterdam Centraal", "arrived_at": "2026-03-14T09:26:53.589793Z",
	"detected_by": "camera", "camera_id": "ams-centraal-entrance-2", "confidence": 0.97
}`

const offerEventExample = `{
	"customer_id": "cus_01jqz8r3k2m4n6p8q0s2t4v6w8", "campaign_id": "spring-solar-2026",
	"offer": {"id": "off_3f9a1c0e7b2d4a6c8e0f", "product": "solar_loan", "title": "Solar panels at 3.9%",
		"reason": "homeowner in a sunny region", "score": 88},
	"channels": ["app", "push"], "valid_until": "2026-04-30T23:59:59Z"
}`

func datasetAccessExample(status string) string {
	decision := `"expires_at": "2026-06-12T00:00:00Z"`
	if status != "approved" {
		decision = `"reason": "purpose too broad for this dataset"`
	}
	return `{
	"id": "dar_01jqz9a0c2e4g6j8m0p2r4t6v8", "dataset_id": "ds_01jqz6k8m0p2r4t6v8w0y2a4c6", "status": "` + status + `",
	"purpose": "train a product-recommendation model", "duration_days": 90,
	"recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
	` + decision + `, "decided_at": "2026-03-14T09:26:53.589793Z"
}`
}

const webhookDisabledExample = `{
	"id": "wh_01jqz9b3d5f7h9k1m3p5r7t9w1", "url": "https://hooks.solarworld.example/causeway",
	"reason": "the endpoint answered 410 Gone", "last_status_code": 410,
	"disabled_at": "2026-03-14T09:26:53.589793Z"
}`
