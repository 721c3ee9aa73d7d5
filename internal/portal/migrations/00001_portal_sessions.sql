-- +goose Up
-- Sessions of the developer portal and the bank console. The browser's
-- cookie holds a random session id; the table holds only its SHA-256, so
-- a copy of the database opens no session. Every node reads the same
-- rows: a logout on one node ends the session on all of them at once.
-- Timestamps are BIGINT microseconds since the epoch (UTC).
CREATE TABLE portal_sessions (
    id_hash      TEXT PRIMARY KEY, -- hex SHA-256 of the cookie's session id
    kind         TEXT NOT NULL,    -- console | developer
    -- developer_id is the developer a developer session is for ('' for
    -- the console).
    developer_id TEXT NOT NULL,
    -- admin_token is the fingerprint of the admin token a console session
    -- logged in with ('' for a developer): the session ends when that
    -- token is no longer accepted (a rotation dropped it).
    admin_token  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    -- last_seen_at is the last use, written at most once a minute; the
    -- session ends after the idle timeout without one.
    last_seen_at BIGINT NOT NULL,
    -- expires_at is the absolute end, however active the session is.
    expires_at   BIGINT NOT NULL
);
CREATE INDEX portal_sessions_expires ON portal_sessions (expires_at);
CREATE INDEX portal_sessions_last_seen ON portal_sessions (kind, last_seen_at);

-- +goose Down
DROP TABLE portal_sessions;
