-- +goose Up
-- The cap on apps per developer counts a developer's apps at every
-- creation.
CREATE INDEX identity_apps_developer ON identity_apps (developer_id, deleted_at);

-- +goose Down
DROP INDEX identity_apps_developer;
