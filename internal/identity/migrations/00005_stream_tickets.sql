-- +goose Up
-- Stream tickets: short-lived, single-use credentials for the event
-- stream, which browsers' EventSource cannot send a token to
-- (tickets.go). hash is the hex SHA-256 of the ticket: the ticket itself
-- is never stored. A ticket is consumed by deleting its row, so it works
-- once, on whichever node; the leader prunes expired rows.
CREATE TABLE identity_stream_tickets (
    hash        TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    generation  BIGINT NOT NULL, -- the app's token_generation at issue
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX identity_stream_tickets_expires ON identity_stream_tickets (expires_at);

-- +goose Down
DROP TABLE identity_stream_tickets;
