-- +goose Up
-- A recover claims its subscription in the database, so that only one runs
-- at a time across every node: recover_lease is the running recover's id
-- ('' when none), recover_until when its claim lapses unless renewed (0
-- when none), in microseconds since the epoch.
ALTER TABLE webhook_subscriptions ADD COLUMN recover_lease TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_subscriptions ADD COLUMN recover_until BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE webhook_subscriptions DROP COLUMN recover_until;
ALTER TABLE webhook_subscriptions DROP COLUMN recover_lease;
