-- +goose Up
-- Ciphertext in the database (DBBlobs, the blob store on PostgreSQL), so
-- that every node sharing the database sees the same blobs. One row per
-- blob version: a key's partial upload, its committed blob, and the staged
-- chunks of a long append on their way in. The bytes live in chunks of at
-- most 1 MiB, keyed by where each starts. BYTEA is PostgreSQL's binary
-- type; SQLite stores the blobs as they are under it.
CREATE TABLE datashare_blobs (
    id          TEXT PRIMARY KEY,
    blob_key    TEXT NOT NULL,      -- <request id>.<format>
    state       TEXT NOT NULL,      -- partial | committed | staged
    size        BIGINT NOT NULL,    -- bytes visible to readers
    modified_at BIGINT NOT NULL
);
CREATE INDEX datashare_blobs_key ON datashare_blobs (blob_key, state);
CREATE UNIQUE INDEX datashare_blobs_one ON datashare_blobs (blob_key, state) WHERE state <> 'staged';

CREATE TABLE datashare_blob_chunks (
    blob_id TEXT NOT NULL REFERENCES datashare_blobs (id) ON DELETE CASCADE,
    pos     BIGINT NOT NULL,        -- where the chunk starts in the blob
    data    BYTEA NOT NULL,
    PRIMARY KEY (blob_id, pos)
);

-- The running SHA-256 of a job's upload, so that any node can take the
-- next part (and the completion) without hashing the upload again:
-- upload_hash is the hash's state (base64) after the first upload_size
-- bytes; when it falls behind the upload, the completion hashes it once.
ALTER TABLE datashare_contents ADD COLUMN upload_size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE datashare_contents ADD COLUMN upload_hash TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE datashare_contents DROP COLUMN upload_hash;
ALTER TABLE datashare_contents DROP COLUMN upload_size;
DROP TABLE datashare_blob_chunks;
DROP TABLE datashare_blobs;
