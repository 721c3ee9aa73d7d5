-- +goose Up
CREATE TABLE notes (
    id      TEXT PRIMARY KEY,
    body    TEXT NOT NULL,
    pinned  BOOLEAN NOT NULL DEFAULT FALSE
);

-- +goose Down
DROP TABLE notes;
