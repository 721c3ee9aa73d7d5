-- +goose Up
-- A payment remembers the Idempotency-Key it was made with, in the same
-- row as the payment itself: a retry with the same key finds it, even when
-- the gateway's own record of the key was lost with a crashed node.
ALTER TABLE core_payments ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX core_payments_idempotency ON core_payments (app_id, idempotency_key);

-- +goose Down
DROP INDEX core_payments_idempotency;
ALTER TABLE core_payments DROP COLUMN idempotency_key;
