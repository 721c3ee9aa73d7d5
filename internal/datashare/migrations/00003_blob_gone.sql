-- +goose Up
-- A retired content's ciphertext is deleted after the transaction that
-- retired it; blob_gone records that the delete succeeded, so the sweep
-- retries the ones that failed (the ciphertext of a revoked or expired
-- request must not stay).
ALTER TABLE datashare_contents ADD COLUMN blob_gone BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX datashare_contents_retired ON datashare_contents (status, blob_gone);

-- +goose Down
DROP INDEX datashare_contents_retired;
ALTER TABLE datashare_contents DROP COLUMN blob_gone;
