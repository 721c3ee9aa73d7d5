-- +goose Up
-- Event streams (Server-Sent Events) last as long as their client stays:
-- they are counted in calls, but not in the latency histogram, which they
-- would swamp. streams counts the calls answered with a stream, stream_ms
-- the milliseconds they stayed open; a stream counts in the minute it ends.
ALTER TABLE gateway_analytics ADD COLUMN streams BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gateway_analytics ADD COLUMN stream_ms BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE gateway_analytics DROP COLUMN stream_ms;
ALTER TABLE gateway_analytics DROP COLUMN streams;
