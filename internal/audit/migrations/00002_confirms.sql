-- +goose Up
-- Four-eyes asks whether a change carrying out a proposal is in the trail
-- (audit.CarriedOut) when it finishes a confirmation that did not succeed.
CREATE INDEX audit_entries_confirms ON audit_entries (confirms) WHERE confirms <> '';

-- +goose Down
DROP INDEX audit_entries_confirms;
