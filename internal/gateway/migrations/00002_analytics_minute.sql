-- +goose Up
-- Retention deletes analytics by age.
CREATE INDEX gateway_analytics_minute ON gateway_analytics (minute);

-- +goose Down
DROP INDEX gateway_analytics_minute;
