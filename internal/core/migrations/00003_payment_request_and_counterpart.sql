-- +goose Up
-- request_hash fingerprints what a payment was asked to do (debtor,
-- creditor, amount, reference), so a reused Idempotency-Key with a
-- different request is refused instead of answered with the first payment.
-- counterpart_account_id is the account the payment credits when it is
-- booked (the creditor's account at this bank, or the clearing account),
-- resolved once when the payment is made; it is the bank's business and
-- never shown to the payer.
ALTER TABLE core_payments ADD COLUMN request_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE core_payments ADD COLUMN counterpart_account_id TEXT;

-- +goose Down
ALTER TABLE core_payments DROP COLUMN counterpart_account_id;
ALTER TABLE core_payments DROP COLUMN request_hash;
