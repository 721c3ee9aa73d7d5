-- +goose Up
-- How the replies at a bank-defined point combine (a Combination as JSON);
-- '' is the rule "first", which every point defined before had.
ALTER TABLE spi_extension_points ADD COLUMN combine TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE spi_extension_points DROP COLUMN combine;
