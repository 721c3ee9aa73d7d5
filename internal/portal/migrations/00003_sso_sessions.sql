-- +goose Up
-- via_sso marks a console session begun at the bank's identity provider
-- (single sign-on): the provider asked for the second factor, so the
-- console's own (TOTP) is not required of it in production mode. A
-- session begun with a password is held to that rule, whoever holds it.
ALTER TABLE portal_sessions ADD COLUMN via_sso BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE portal_sessions DROP COLUMN via_sso;
