-- +goose Up
-- outbox_events holds domain events written in the same transaction as the
-- state change they describe. The relay publishes unpublished rows to
-- JetStream in id order and then stamps published_at; published rows are
-- pruned after the retention period.
CREATE TABLE outbox_events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    source       TEXT NOT NULL,
    subject      TEXT NOT NULL DEFAULT '',
    time         BIGINT NOT NULL,
    data         TEXT NOT NULL DEFAULT '',
    app_id       TEXT NOT NULL DEFAULT '',
    customer_id  TEXT NOT NULL DEFAULT '',
    published_at BIGINT
);

-- The relay's backlog query: unpublished rows in id order. Partial, so it
-- stays as small as the backlog however large the table grows.
CREATE INDEX outbox_events_unpublished ON outbox_events (id) WHERE published_at IS NULL;

-- Pruning: published rows by age.
CREATE INDEX outbox_events_published_at ON outbox_events (published_at) WHERE published_at IS NOT NULL;

-- outbox_lease names the one relay allowed to publish at a time, so nodes
-- sharing a database do not publish the same rows side by side.
CREATE TABLE outbox_lease (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE outbox_lease;
DROP TABLE outbox_events;
