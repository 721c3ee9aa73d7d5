-- +goose Up
-- A stored response can carry a secret shown once (an app's client secret,
-- a webhook or SPI signing secret), so the body is kept sealed under
-- --secret-key (package seal) in sealed_body. body, which older versions
-- filled with the body in the clear (standard base64), is left empty; a
-- node seals what an older one left there when it starts. The column is
-- added, not changed, so an older node in a rolling upgrade reads an empty
-- body and replays the status alone instead of failing.
ALTER TABLE gateway_idempotency ADD COLUMN sealed_body TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE gateway_idempotency DROP COLUMN sealed_body;
