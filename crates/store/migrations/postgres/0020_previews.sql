-- Preview deployments. A preview is a service of its own, marked as the preview of its parent
-- (gone with it); `previews` holds what it previews (a pull request or a branch), the head
-- commit, who approved which commit of a fork, and its pull-request comment.
ALTER TABLE services ADD COLUMN preview_of BIGINT REFERENCES services (id) ON DELETE CASCADE;
CREATE INDEX services_preview_of ON services (preview_of) WHERE preview_of IS NOT NULL;

CREATE TABLE preview_settings (
    service_id BIGINT PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
    settings TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE previews (
    service_id BIGINT PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    pull_request BIGINT,
    title TEXT NOT NULL,
    branch TEXT NOT NULL,
    head_sha TEXT,
    fork BOOLEAN NOT NULL,
    approved_sha TEXT,
    approved_by TEXT,
    comment_id BIGINT,
    created_at BIGINT NOT NULL
);

-- A service's variables for its previews only, over its own.
ALTER TABLE env_vars ADD COLUMN preview BOOLEAN NOT NULL DEFAULT FALSE;
DROP INDEX env_vars_service_name;
CREATE UNIQUE INDEX env_vars_service_name ON env_vars (service_id, preview, name)
    WHERE service_id IS NOT NULL;
