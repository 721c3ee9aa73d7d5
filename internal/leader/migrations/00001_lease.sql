-- +goose Up
-- The leases nodes compete for (package leader). The table keeps the name
-- it had when the outbox relay's lease was the only one, and the outbox's
-- first migration may have made it already: nodes of that version and this
-- one then compete for the same row during a rolling upgrade.
CREATE TABLE IF NOT EXISTS outbox_lease (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- +goose Down
-- The outbox's migration owns the table's removal.
SELECT 1;
