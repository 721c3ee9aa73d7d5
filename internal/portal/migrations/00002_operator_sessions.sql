-- +goose Up
-- A console session is either an admin token's (admin_token set) or a
-- named operator's: operator_id, and the operator's generation at login.
-- Every change to the operator's password, roles, second factor or status
-- moves the generation, which ends the session on every node at once.
ALTER TABLE portal_sessions ADD COLUMN operator_id TEXT NOT NULL DEFAULT '';
ALTER TABLE portal_sessions ADD COLUMN operator_generation BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE portal_sessions DROP COLUMN operator_generation;
ALTER TABLE portal_sessions DROP COLUMN operator_id;
