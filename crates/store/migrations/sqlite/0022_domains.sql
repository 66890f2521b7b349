-- Custom domains of services. A domain (with a path prefix, or '' for every path) belongs to
-- one service across the installation. It is routed only once verified (`verification` set:
-- its DNS points here, a token came back through it, or an administrator forced it). An alias
-- answers with a permanent redirect to its service's primary domain.
CREATE TABLE domains (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    path_prefix TEXT NOT NULL DEFAULT '',
    is_primary BOOLEAN NOT NULL DEFAULT FALSE,
    redirect BOOLEAN NOT NULL DEFAULT FALSE,
    -- The token served at `/.well-known/helvetia/<token>` for the HTTP check (not a secret:
    -- it is published through the domain).
    token TEXT NOT NULL UNIQUE,
    verification TEXT,
    verified_at INTEGER,
    -- What the last check found, for the person who added the domain.
    last_check TEXT,
    checked_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX domains_name_path ON domains (name, path_prefix);
CREATE INDEX domains_service ON domains (service_id);
