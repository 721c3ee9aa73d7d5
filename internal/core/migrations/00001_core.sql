-- +goose Up
-- The sandbox bank's tables. Money is BIGINT minor units beside a currency
-- code; timestamps are BIGINT microseconds since the epoch (UTC).

CREATE TABLE core_customers (
    id               TEXT PRIMARY KEY,
    type             TEXT NOT NULL,
    name             TEXT NOT NULL,
    date_of_birth    TEXT NOT NULL DEFAULT '',
    email            TEXT NOT NULL DEFAULT '',
    phone            TEXT NOT NULL DEFAULT '',
    address_line1    TEXT NOT NULL DEFAULT '',
    city             TEXT NOT NULL DEFAULT '',
    postcode         TEXT NOT NULL DEFAULT '',
    country          TEXT NOT NULL DEFAULT '',
    document_number  TEXT NOT NULL DEFAULT '',
    homeowner        BOOLEAN NOT NULL DEFAULT FALSE,
    latitude         TEXT NOT NULL DEFAULT '',
    longitude        TEXT NOT NULL DEFAULT '',
    monthly_income   BIGINT NOT NULL DEFAULT 0,
    kyc_status       TEXT NOT NULL,
    created_by_app   TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL
);

-- Which apps may see which customers: the ones they created, the sandbox
-- customers seeded for them, and those the bank granted them.
CREATE TABLE core_customer_access (
    app_id      TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES core_customers (id),
    source      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, customer_id)
);
CREATE INDEX core_customer_access_customer ON core_customer_access (customer_id);

-- Accounts: customers' (current, savings) and the bank's own internal
-- accounts (cash, clearing, loans receivable, interest income, suspense).
-- booked is the running sum of the account's postings, written in the same
-- transaction as every posting; CheckLedger proves it equals the sum.
CREATE TABLE core_accounts (
    id           TEXT PRIMARY KEY,
    customer_id  TEXT REFERENCES core_customers (id),
    iban         TEXT UNIQUE,
    currency     TEXT NOT NULL,
    product      TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL,
    booked       BIGINT NOT NULL DEFAULT 0,
    held         BIGINT NOT NULL DEFAULT 0,
    internal_purpose TEXT,
    created_at   BIGINT NOT NULL,
    UNIQUE (internal_purpose, currency)
);
CREATE INDEX core_accounts_customer ON core_accounts (customer_id);

CREATE TABLE core_entries (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    reference   TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);

-- Postings: amount is signed from the account holder's side: positive is a
-- credit (money in) on a customer account. Every entry's postings sum to
-- zero per currency.
CREATE TABLE core_postings (
    id                TEXT PRIMARY KEY,
    entry_id          TEXT NOT NULL REFERENCES core_entries (id),
    account_id        TEXT NOT NULL REFERENCES core_accounts (id),
    amount            BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    balance_after     BIGINT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    counterparty_name TEXT NOT NULL DEFAULT '',
    counterparty_iban TEXT NOT NULL DEFAULT '',
    booked_at         BIGINT NOT NULL
);
CREATE INDEX core_postings_account ON core_postings (account_id, booked_at, id);
CREATE INDEX core_postings_entry ON core_postings (entry_id);

CREATE TABLE core_payments (
    id                  TEXT PRIMARY KEY,
    app_id              TEXT NOT NULL DEFAULT '',
    debtor_account_id   TEXT NOT NULL REFERENCES core_accounts (id),
    creditor_account_id TEXT,
    creditor_iban       TEXT NOT NULL DEFAULT '',
    creditor_name       TEXT NOT NULL DEFAULT '',
    amount              BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    reference           TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL,
    rejection_code      TEXT NOT NULL DEFAULT '',
    rejection_reason    TEXT NOT NULL DEFAULT '',
    fraud_decision      TEXT NOT NULL DEFAULT '',
    fraud_score         INTEGER NOT NULL DEFAULT 0,
    fraud_reason        TEXT NOT NULL DEFAULT '',
    fraud_provider      TEXT NOT NULL DEFAULT '',
    fraud_stand_in      BOOLEAN NOT NULL DEFAULT FALSE,
    entry_id            TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX core_payments_debtor ON core_payments (debtor_account_id, id);

CREATE TABLE core_kyc_checks (
    id           TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL REFERENCES core_customers (id),
    app_id       TEXT NOT NULL DEFAULT '',
    result       TEXT NOT NULL,
    checks       TEXT NOT NULL,
    provider     TEXT NOT NULL,
    stand_in     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL
);

CREATE TABLE core_loans (
    id                 TEXT PRIMARY KEY,
    customer_id        TEXT NOT NULL REFERENCES core_customers (id),
    app_id             TEXT NOT NULL DEFAULT '',
    amount             BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    term_months        INTEGER NOT NULL,
    purpose            TEXT NOT NULL,
    monthly_income     BIGINT NOT NULL,
    status             TEXT NOT NULL,
    decision_provider  TEXT NOT NULL,
    decision_reason    TEXT NOT NULL,
    decision_stand_in  BOOLEAN NOT NULL DEFAULT FALSE,
    rate_bp            INTEGER NOT NULL DEFAULT 0,
    monthly_payment    BIGINT NOT NULL DEFAULT 0,
    limit_minor        BIGINT NOT NULL DEFAULT 0,
    score              INTEGER NOT NULL DEFAULT 0,
    funded_account_id  TEXT,
    schedule           TEXT NOT NULL DEFAULT '',
    entry_id           TEXT,
    created_at         BIGINT NOT NULL,
    funded_at          BIGINT
);
CREATE INDEX core_loans_customer ON core_loans (customer_id);

CREATE TABLE core_sequences (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

-- +goose Down
DROP TABLE core_sequences;
DROP TABLE core_loans;
DROP TABLE core_kyc_checks;
DROP TABLE core_payments;
DROP TABLE core_postings;
DROP TABLE core_entries;
DROP TABLE core_accounts;
DROP TABLE core_customer_access;
DROP TABLE core_customers;
