-- Environment variables of projects (service_id NULL) and services.

CREATE TABLE env_vars (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    service_id INTEGER REFERENCES services (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- The value of a plain variable; for a secret, its sealed form (never the plaintext).
    value TEXT NOT NULL,
    secret BOOLEAN NOT NULL,
    build BOOLEAN NOT NULL,
    -- The master key that sealed a secret.
    key_id TEXT,
    -- Raised on every change; build variables' versions are part of the image-reuse key.
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX env_vars_project_name ON env_vars (project_id, name) WHERE service_id IS NULL;
CREATE UNIQUE INDEX env_vars_service_name ON env_vars (service_id, name) WHERE service_id IS NOT NULL;

-- A digest of the environment a deployment started with, to tell when it changed since.
ALTER TABLE deployments ADD COLUMN env_digest TEXT;
