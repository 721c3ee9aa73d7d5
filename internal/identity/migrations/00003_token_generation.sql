-- +goose Up
-- token_generation is carried by every access token (claim "gen") and
-- raised by every suspension: a token whose generation is not the app's
-- is refused, so a token issued before a suspension never works again,
-- also after the bank reinstates the app. Tokens from before this column
-- have no claim and count as generation 0; an app suspended now starts at
-- 1, so its old tokens stay dead when it is reinstated.
ALTER TABLE identity_apps ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
UPDATE identity_apps SET token_generation = 1 WHERE status = 'suspended';

-- +goose Down
ALTER TABLE identity_apps DROP COLUMN token_generation;
