-- What runs: service runtime settings, hostnames, project networks and app containers.

ALTER TABLE services ADD COLUMN runtime TEXT NOT NULL DEFAULT '{}';

CREATE TABLE hostnames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    hostname TEXT NOT NULL UNIQUE,
    generated BOOLEAN NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX hostnames_by_service ON hostnames (service_id);

CREATE TABLE networks (
    project_id INTEGER PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    subnet TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- One row per app container, written before the engine creates it (so reconciliation never
-- mistakes a container being started for an orphan). `state` is one of: starting, ready,
-- serving, draining, stopped, failed.
CREATE TABLE containers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    engine_id TEXT UNIQUE,
    address TEXT,
    port INTEGER,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX containers_by_service ON containers (service_id, state);
CREATE INDEX containers_by_deployment ON containers (deployment_id);
