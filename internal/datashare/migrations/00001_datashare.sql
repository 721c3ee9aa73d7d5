-- +goose Up
-- Data partnering: the catalog, access requests with the bank's decisions,
-- the encrypted content prepared for them, and the audit trail. Timestamps
-- are BIGINT microseconds since the epoch (UTC). No table ever holds a row
-- of a dataset: content lives as age ciphertext in the blob store.

CREATE TABLE datashare_datasets (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    columns     TEXT NOT NULL,  -- JSON array of {name, type, description}
    sample      TEXT NOT NULL,  -- JSON array of illustrative rows
    formats     TEXT NOT NULL,  -- JSON array
    row_count   BIGINT NOT NULL,
    licence     TEXT NOT NULL,
    version     TEXT NOT NULL,
    source      TEXT NOT NULL,  -- JSON {kind, generator, path, rows, seed}; bank and agent only
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE datashare_requests (
    id              TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL,
    dataset_id      TEXT NOT NULL REFERENCES datashare_datasets (id),
    dataset_version TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    duration_days   INTEGER NOT NULL,
    recipient       TEXT NOT NULL,
    format          TEXT NOT NULL,
    status          TEXT NOT NULL,
    decided_at      BIGINT,
    decided_by      TEXT NOT NULL DEFAULT '',
    reason          TEXT NOT NULL DEFAULT '',
    expires_at      BIGINT,
    revoked_at      BIGINT,
    revoked_by      TEXT NOT NULL DEFAULT '',
    revoke_reason   TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL
);
CREATE INDEX datashare_requests_app ON datashare_requests (app_id, id);
CREATE INDEX datashare_requests_status ON datashare_requests (status, id);

-- One row per (request, format): the job an agent fills, then the stored
-- ciphertext's size and SHA-256.
CREATE TABLE datashare_contents (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL REFERENCES datashare_requests (id),
    format      TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    not_before  BIGINT NOT NULL DEFAULT 0,
    lease_id    TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0,
    size        BIGINT NOT NULL DEFAULT 0,
    sha256      TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    ready_at    BIGINT,
    UNIQUE (request_id, format)
);
CREATE INDEX datashare_contents_status ON datashare_contents (status, not_before);

CREATE TABLE datashare_audit (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX datashare_audit_request ON datashare_audit (request_id, id);

-- +goose Down
DROP TABLE datashare_audit;
DROP TABLE datashare_contents;
DROP TABLE datashare_requests;
DROP TABLE datashare_datasets;
