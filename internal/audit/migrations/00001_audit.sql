-- +goose Up
-- The bank's audit trail: one row per bank-side change, appended in the
-- transaction of the change, never updated or deleted. Timestamps are
-- BIGINT microseconds since the epoch (UTC), as everywhere in Causeway.
--
-- seq numbers the entries 1, 2, 3… without gaps. hash is the hex SHA-256
-- of prev_hash (the hash of entry seq-1, '' for the first) and of every
-- other column (see audit.Entry.ComputeHash), so editing, deleting or
-- re-ordering a row breaks the chain that GET /bank/v1/audit/verify walks.
-- before and after are small JSON summaries of what changed, or NULL.
CREATE TABLE audit_entries (
    seq          BIGINT PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    -- bank_id is the bank whose decision this is (auth.HomeBank today): a
    -- platform serving several banks keeps each one's trail apart by it.
    bank_id      TEXT NOT NULL DEFAULT 'bank',
    action       TEXT NOT NULL,
    target_type  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    before       TEXT,
    after        TEXT,
    proposal_id  TEXT NOT NULL DEFAULT '',
    confirms     TEXT NOT NULL DEFAULT '',
    request_id   TEXT NOT NULL DEFAULT '',
    client_addr  TEXT NOT NULL DEFAULT '',
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);

-- The filters of GET /bank/v1/audit, each read newest first by seq.
CREATE INDEX audit_entries_actor ON audit_entries (actor, seq);
CREATE INDEX audit_entries_target ON audit_entries (target_id, seq);
CREATE INDEX audit_entries_action ON audit_entries (action, seq);
CREATE INDEX audit_entries_at ON audit_entries (at);

-- The head of the chain: the last entry's seq and hash. Every append
-- updates this one row first, in the transaction of its change, so on
-- PostgreSQL the row lock orders concurrent appends (one waits for the
-- other to commit and then continues from its entry) and the chain never
-- forks; SQLite has one writer anyway.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY,
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');
