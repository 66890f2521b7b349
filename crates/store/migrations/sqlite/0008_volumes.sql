-- Persistent volumes of services: kept across deployments, mounted into every container.

CREATE TABLE volumes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (service_id, name),
    UNIQUE (service_id, path)
);
