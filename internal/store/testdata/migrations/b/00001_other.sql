-- +goose Up
CREATE TABLE others (id TEXT PRIMARY KEY);

-- +goose Down
DROP TABLE others;
