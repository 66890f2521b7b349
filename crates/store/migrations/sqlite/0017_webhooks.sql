-- Deploys on push. A service's settings for them, and its own receiver: the unguessable
-- `hook_id` of its URL and the secret deliveries are signed with (sealed by the vault). No
-- row means the defaults: auto-deploy on, no watch paths, no receiver of its own.
CREATE TABLE service_hooks (
    service_id INTEGER PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
    hook_id TEXT UNIQUE,
    secret TEXT,
    auto_deploy BOOLEAN NOT NULL DEFAULT TRUE,
    -- A JSON array of globs; empty: every change deploys.
    watch_paths TEXT NOT NULL DEFAULT '[]',
    -- Cancel a running build of an older commit when a newer push arrives.
    cancel_running BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at INTEGER NOT NULL
);

-- Every webhook delivery received and what it did, kept 30 days. `service_id` is NULL for a
-- delivery that reached no service (the App's, refused before it named a repository).
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id INTEGER REFERENCES services (id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    event TEXT NOT NULL,
    delivery_id TEXT,
    signature TEXT NOT NULL,
    -- deployed | ignored | refused | duplicate | waiting | failed
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    deployment_id INTEGER REFERENCES deployments (id) ON DELETE SET NULL,
    git_ref TEXT,
    commit_sha TEXT,
    pusher TEXT,
    message TEXT,
    compare_url TEXT,
    received_at INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_by_service ON webhook_deliveries (service_id, id);
CREATE INDEX webhook_deliveries_by_delivery ON webhook_deliveries (service_id, source, delivery_id);
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (received_at);
