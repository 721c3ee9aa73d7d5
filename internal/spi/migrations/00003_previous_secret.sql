-- +goose Up
-- After a secret rotation the previous secret signs too, until it expires,
-- so the endpoint can switch without refusing a call.
ALTER TABLE spi_registrations ADD COLUMN previous_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE spi_registrations ADD COLUMN previous_expires_at BIGINT;

-- +goose Down
ALTER TABLE spi_registrations DROP COLUMN previous_expires_at;
ALTER TABLE spi_registrations DROP COLUMN previous_secret;
