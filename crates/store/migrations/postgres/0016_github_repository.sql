-- The GitHub repository a service was created from (with `github_installation_id`, whose tokens
-- clone it): GitHub's id, which survives renames and routes webhook deliveries, and its
-- `owner/name` when linked. All three are set together or all NULL.
ALTER TABLE services ADD COLUMN github_repository_id BIGINT;
ALTER TABLE services ADD COLUMN github_repository TEXT;
CREATE INDEX services_github_repository ON services (github_repository_id);
