-- +goose Up
-- event_types holds the event types the bank registered beside the built-in
-- catalog (which lives in code). schema is the JSON Schema of the data;
-- example a whole CloudEvent, or '' for none.
CREATE TABLE event_types (
    type        TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    version     TEXT NOT NULL,
    public      BOOLEAN NOT NULL DEFAULT FALSE,
    schema      TEXT NOT NULL,
    example     TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE event_types;
