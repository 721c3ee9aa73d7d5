-- +goose Up
-- Extension points the bank defined (the built-in ones live in code),
-- fintech endpoints registered at extension points, and the audit of every
-- call made to them. Timestamps are BIGINT microseconds since the epoch.

CREATE TABLE spi_extension_points (
    name               TEXT PRIMARY KEY,
    description        TEXT NOT NULL DEFAULT '',
    request_schema     TEXT NOT NULL,
    response_schema    TEXT NOT NULL,
    default_timeout_ms INTEGER NOT NULL,
    max_timeout_ms     INTEGER NOT NULL,
    stand_in           TEXT NOT NULL,
    example            TEXT NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL
);

-- secret is the signing secret sealed with the platform key (package seal):
-- signing needs the secret itself, so it cannot be a hash.
CREATE TABLE spi_registrations (
    id              TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL,
    extension_point TEXT NOT NULL,
    url             TEXT NOT NULL,
    scope           TEXT NOT NULL,
    status          TEXT NOT NULL,
    timeout_ms      INTEGER NOT NULL,
    on_failure      TEXT NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    secret          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX spi_registrations_point ON spi_registrations (extension_point, status);
CREATE INDEX spi_registrations_app ON spi_registrations (app_id, id);

-- One row per attempt to reach a registration, including attempts the
-- circuit breaker skipped. id is also the webhook-id and body id the
-- endpoint received, so both sides can find the same call.
CREATE TABLE spi_invocations (
    id              TEXT PRIMARY KEY,
    registration_id TEXT NOT NULL,
    app_id          TEXT NOT NULL DEFAULT '',
    extension_point TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    latency_us      BIGINT NOT NULL,
    outcome         TEXT NOT NULL,
    failure_reason  TEXT NOT NULL DEFAULT '',
    stand_in        BOOLEAN NOT NULL DEFAULT FALSE,
    status_code     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX spi_invocations_registration ON spi_invocations (registration_id, id);

-- +goose Down
DROP TABLE spi_invocations;
DROP TABLE spi_registrations;
DROP TABLE spi_extension_points;
