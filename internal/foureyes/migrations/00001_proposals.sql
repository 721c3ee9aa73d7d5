-- +goose Up
-- Four-eyes proposals (foureyes.go): a bank operation held back until a
-- second operator confirms it. The request is kept as it was made
-- (method, path, JSON body) and carried out as made when confirmed, so
-- what the second operator approves is exactly what runs. Bodies of the
-- guarded operations carry ids, limits and settings, never a secret.
-- Timestamps are BIGINT microseconds since the epoch (UTC).
CREATE TABLE foureyes_proposals (
    id            TEXT PRIMARY KEY,
    action        TEXT NOT NULL,   -- e.g. spi.activate
    operation_id  TEXT NOT NULL,   -- the /bank/v1 operation held back
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    body          TEXT NOT NULL,
    role          TEXT NOT NULL,   -- the role a confirmer must hold
    proposed_by   TEXT NOT NULL,   -- auth.Caller String of the proposer
    proposed_at   BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    -- status: pending_second_approval, executing (claimed by a
    -- confirmer), confirmed, failed (confirmed, but the operation
    -- refused), rejected.
    status        TEXT NOT NULL,
    decided_by    TEXT,
    decided_at    BIGINT,
    reason        TEXT,
    result_status INTEGER,
    result_body   TEXT
);
CREATE INDEX foureyes_proposals_status ON foureyes_proposals (status, proposed_at);

-- +goose Down
DROP TABLE foureyes_proposals;
