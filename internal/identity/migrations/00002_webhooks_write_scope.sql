-- +goose Up
-- webhooks:write (issue 15): managing webhook subscriptions used to need
-- only events:read. Every app that held events:read is granted
-- webhooks:write, so an upgrade takes nothing away from anyone. Scopes are
-- kept in the order of auth.AllScopes, where webhooks:write follows
-- events:read; no other scope contains the text "events:read".
UPDATE identity_apps SET scopes = REPLACE(scopes, 'events:read', 'events:read webhooks:write')
WHERE ' ' || scopes || ' ' LIKE '% events:read %' AND ' ' || scopes || ' ' NOT LIKE '% webhooks:write %';

-- +goose Down
UPDATE identity_apps SET scopes = REPLACE(scopes, ' webhooks:write', '');
