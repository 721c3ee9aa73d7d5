-- +goose Up
-- The bank's operators: named staff who use the console and the bank API
-- (operators.go). password_hash is argon2id like developers' (NULL for an
-- operator who signs in through the bank's identity provider only);
-- totp_secret is sealed with --secret-key. generation is raised by every
-- change of password, roles, second factor or status: a console session
-- remembers the generation it began in and ends when it moves.
CREATE TABLE identity_operators (
    id            TEXT PRIMARY KEY,
    -- bank_id is the bank the operator works for: one today
    -- (auth.HomeBank); a platform serving several banks keeps each bank's
    -- operators, approvals and audit apart by it.
    bank_id       TEXT NOT NULL DEFAULT 'bank',
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT,
    totp_secret   TEXT,
    totp_enabled  BOOLEAN NOT NULL DEFAULT FALSE,
    totp_last_step BIGINT NOT NULL DEFAULT 0, -- the last code step used: a code works once
    roles         TEXT NOT NULL,
    status        TEXT NOT NULL,
    generation    BIGINT NOT NULL DEFAULT 1,
    sso_issuer    TEXT,
    sso_subject   TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX identity_operators_sso ON identity_operators (sso_issuer, sso_subject);

-- Recovery codes stand in for the second factor once each; only their
-- SHA-256 is kept.
CREATE TABLE identity_operator_recovery_codes (
    operator_id TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (operator_id, code_hash)
);

-- Operators' personal API tokens, for scripts: only the SHA-256 is kept.
-- A token's roles are fixed at issue and narrowed at every call to what
-- its operator still holds.
CREATE TABLE identity_operator_tokens (
    id          TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    roles       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    last_used_at BIGINT
);
CREATE INDEX identity_operator_tokens_operator ON identity_operator_tokens (operator_id);

-- +goose Down
DROP TABLE identity_operator_tokens;
DROP TABLE identity_operator_recovery_codes;
DROP TABLE identity_operators;
