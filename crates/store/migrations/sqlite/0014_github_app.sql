-- The GitHub App of this instance: at most one row (id = 1). Its private key, client secret and
-- webhook secret are sealed by the vault before they reach a column.
CREATE TABLE github_app (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    app_id INTEGER NOT NULL,
    -- Known when the App was made through the manifest flow; NULL when entered by hand.
    slug TEXT,
    client_id TEXT NOT NULL,
    private_key TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    webhook_secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Manifest flows an instance administrator started: the `state` GitHub hands back, stored as a
-- hash, good once and until it expires. `user_id` is NULL for the server's own admin token.
CREATE TABLE github_manifest_states (
    state_hash TEXT PRIMARY KEY,
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);

-- The App installation whose token clones a service's (private) repository.
ALTER TABLE services ADD COLUMN github_installation_id INTEGER;
