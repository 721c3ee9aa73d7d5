-- +goose Up
-- Logins in flight between Begin and Finish (login.go), so any node can
-- finish what another began. state_hash and browser_hash are the hex
-- SHA-256 of the login's state (sent to the provider and back) and of its
-- browser key (kept in the browser's cookie): neither is stored itself,
-- and the PKCE verifier, derived from the browser key, is not stored at
-- all. nonce is not secret (the authorization URL carries it). A login is
-- consumed by deleting its row, so a state works once, on whichever node;
-- the leader prunes expired rows.
CREATE TABLE sso_logins (
    state_hash   TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sso_logins_expires ON sso_logins (expires_at);

-- +goose Down
DROP TABLE sso_logins;
