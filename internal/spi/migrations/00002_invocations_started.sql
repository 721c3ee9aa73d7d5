-- +goose Up
-- Retention deletes invocations by age.
CREATE INDEX spi_invocations_started ON spi_invocations (started_at);

-- +goose Down
DROP INDEX spi_invocations_started;
