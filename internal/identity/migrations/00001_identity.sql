-- +goose Up
-- Identity: organizations, developers and their tokens, apps with their
-- client credentials, and the keys that sign access tokens. Secrets are
-- stored only as hashes; timestamps are BIGINT microseconds since the epoch
-- (UTC); a NULL *_at column means "not yet".

CREATE TABLE identity_organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE identity_developers (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES identity_organizations (id),
    email           TEXT NOT NULL,
    -- email_key is the lower-cased email: addresses are unique regardless
    -- of case, on both engines, without relying on collations.
    email_key       TEXT NOT NULL UNIQUE,
    -- password_hash is an argon2id PHC string carrying its own parameters.
    password_hash   TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX identity_developers_organization ON identity_developers (organization_id);

-- Developer tokens, by the hex SHA-256 of the token.
CREATE TABLE identity_developer_tokens (
    token_hash   TEXT PRIMARY KEY,
    developer_id TEXT NOT NULL REFERENCES identity_developers (id),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX identity_developer_tokens_developer ON identity_developer_tokens (developer_id);

CREATE TABLE identity_apps (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES identity_organizations (id),
    developer_id    TEXT NOT NULL REFERENCES identity_developers (id),
    name            TEXT NOT NULL,
    client_id       TEXT NOT NULL UNIQUE,
    -- secret_hash is the hex SHA-256 of the client secret: the secret is
    -- 256 random bits, so a slow hash would add nothing.
    secret_hash     TEXT NOT NULL,
    scopes          TEXT NOT NULL, -- space-separated
    status          TEXT NOT NULL, -- active | pending_approval | suspended
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    deleted_at      BIGINT
);
CREATE INDEX identity_apps_organization ON identity_apps (organization_id, id);
CREATE INDEX identity_apps_status ON identity_apps (status, id);

-- Keys that sign access tokens. The newest non-retired key signs; every
-- non-retired key verifies and is published in the JWKS.
CREATE TABLE identity_signing_keys (
    kid         TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key TEXT NOT NULL, -- base64 of the Ed25519 seed
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);

-- One-time facts, such as "the first signing key was created".
CREATE TABLE identity_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE identity_meta;
DROP TABLE identity_signing_keys;
DROP TABLE identity_apps;
DROP TABLE identity_developer_tokens;
DROP TABLE identity_developers;
DROP TABLE identity_organizations;
