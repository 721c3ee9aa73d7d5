-- +goose Up
-- Webhook subscriptions and the record of every delivery attempt.
-- Timestamps are BIGINT microseconds since the epoch (UTC), as everywhere in
-- Causeway.

-- One row per subscription. event_types is a JSON array of patterns
-- ("payment.completed", "payment.*", "*"). secret and previous_secret are
-- sealed (package seal), never plain text: an HMAC needs the secret itself.
-- previous_secret keeps signing until previous_expires_at after a rotation.
-- failing_since is when the current run of failed attempts began (NULL
-- while deliveries succeed).
CREATE TABLE webhook_subscriptions (
    id                   TEXT PRIMARY KEY,
    app_id               TEXT NOT NULL,
    url                  TEXT NOT NULL,
    event_types          TEXT NOT NULL,
    filter               TEXT NOT NULL DEFAULT '',
    ordered              BOOLEAN NOT NULL DEFAULT FALSE,
    status               TEXT NOT NULL,
    disabled_reason      TEXT NOT NULL DEFAULT '',
    secret               TEXT NOT NULL,
    previous_secret      TEXT NOT NULL DEFAULT '',
    previous_expires_at  BIGINT,
    failing_since        BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX webhook_subscriptions_app ON webhook_subscriptions (app_id, id);
CREATE INDEX webhook_subscriptions_status ON webhook_subscriptions (status, id);

-- One row per delivery attempt. Ids sort by time, so "newest first" is
-- ORDER BY id DESC. origin says what caused the attempt: the stream
-- (automatic delivery and its retries), a recover, or a manual retry.
-- response_snippet holds at most the first KiB of the response body.
CREATE TABLE webhook_deliveries (
    id                TEXT PRIMARY KEY,
    subscription_id   TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    stream_seq        BIGINT NOT NULL,
    attempt           INTEGER NOT NULL,
    origin            TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    status_code       INTEGER NOT NULL DEFAULT 0,
    latency_us        BIGINT NOT NULL DEFAULT 0,
    error             TEXT NOT NULL DEFAULT '',
    response_snippet  TEXT NOT NULL DEFAULT '',
    created_at        BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, id);
CREATE INDEX webhook_deliveries_outcome ON webhook_deliveries (subscription_id, outcome, id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE webhook_subscriptions;
