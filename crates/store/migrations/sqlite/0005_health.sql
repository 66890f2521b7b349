-- Health and history: why a deployment exists, how containers are doing, what happened.

-- What caused the deployment: deploy, rollback, restart, settings or start.
ALTER TABLE deployments ADD COLUMN cause TEXT NOT NULL DEFAULT 'deploy';

-- The last health state the monitor saw: healthy, unhealthy, restarting, stopped, oom_killed.
ALTER TABLE containers ADD COLUMN health TEXT;

CREATE TABLE service_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    container TEXT,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX service_events_by_service ON service_events (service_id, id);
