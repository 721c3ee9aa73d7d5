-- +goose Up
-- The gateway's tables. Timestamps are BIGINT microseconds since the epoch
-- (UTC), as everywhere in Causeway.

-- Per-app rate limits and daily quotas set by the bank. An app without a row
-- gets the platform defaults. The rate is stored in thousandths of a request
-- per second so the column stays an integer on both engines.
CREATE TABLE gateway_limits (
    app_id          TEXT PRIMARY KEY,
    rate_milli      BIGINT NOT NULL,
    burst           BIGINT NOT NULL,
    daily_quota     BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Idempotency keys. A request claims (principal, idem_key) with an INSERT;
-- the primary key makes exactly one request win across goroutines and
-- nodes. claim identifies the winning request, so only it can complete or
-- release the row. state is 'running' until the response is stored
-- ('done'); body is the response body in standard base64.
CREATE TABLE gateway_idempotency (
    principal     TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    claim         TEXT NOT NULL,
    state         TEXT NOT NULL,
    status        INTEGER NOT NULL DEFAULT 0,
    content_type  TEXT NOT NULL DEFAULT '',
    body          TEXT NOT NULL DEFAULT '',
    body_omitted  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (principal, idem_key)
);
CREATE INDEX gateway_idempotency_expires ON gateway_idempotency (expires_at);

-- API analytics: one row per app, minute and route pattern. Nodes add their
-- in-memory counts with an upsert. lat_* count calls whose latency was at
-- most the named bound (exclusive of the previous bound); lat_inf is the
-- rest.
CREATE TABLE gateway_analytics (
    app_id         TEXT NOT NULL,
    minute         BIGINT NOT NULL,
    route          TEXT NOT NULL,
    calls          BIGINT NOT NULL DEFAULT 0,
    client_errors  BIGINT NOT NULL DEFAULT 0,
    server_errors  BIGINT NOT NULL DEFAULT 0,
    lat_1ms        BIGINT NOT NULL DEFAULT 0,
    lat_2_5ms      BIGINT NOT NULL DEFAULT 0,
    lat_5ms        BIGINT NOT NULL DEFAULT 0,
    lat_10ms       BIGINT NOT NULL DEFAULT 0,
    lat_25ms       BIGINT NOT NULL DEFAULT 0,
    lat_50ms       BIGINT NOT NULL DEFAULT 0,
    lat_100ms      BIGINT NOT NULL DEFAULT 0,
    lat_250ms      BIGINT NOT NULL DEFAULT 0,
    lat_500ms      BIGINT NOT NULL DEFAULT 0,
    lat_1s         BIGINT NOT NULL DEFAULT 0,
    lat_2_5s       BIGINT NOT NULL DEFAULT 0,
    lat_5s         BIGINT NOT NULL DEFAULT 0,
    lat_10s        BIGINT NOT NULL DEFAULT 0,
    lat_inf        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, minute, route)
);

-- Upstream APIs the bank publishes through the gateway under
-- /v1/ext/{path_prefix}/. signing_secret signs every forwarded request.
CREATE TABLE gateway_upstreams (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    base_url        TEXT NOT NULL,
    path_prefix     TEXT NOT NULL UNIQUE,
    scope           TEXT NOT NULL,
    signing_secret  TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- +goose Down
DROP TABLE gateway_upstreams;
DROP TABLE gateway_analytics;
DROP TABLE gateway_idempotency;
DROP TABLE gateway_limits;
