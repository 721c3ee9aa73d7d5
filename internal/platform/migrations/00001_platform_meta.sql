-- +goose Up
-- platform_meta holds facts about this installation that every node shares,
-- such as its instance id and when its data was created.
CREATE TABLE platform_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE platform_meta;
