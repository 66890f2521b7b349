-- Notifications. A project's channels: where it hears about deploys (and later certificates
-- and backups). `settings` is the channel's non-secret configuration as JSON; `secret` is
-- sealed by the vault: a Slack or Discord URL (its path is the token), a generic webhook's
-- signing secret, an SMTP password. `destination` is what views show (masked).
CREATE TABLE notification_channels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- A JSON array of event kinds.
    events TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    settings TEXT NOT NULL,
    secret TEXT,
    destination TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

-- The outbox: one message per channel and event, sent by the server's notifier and tried
-- again with back-off until a receiver accepts it or the attempts run out.
CREATE TABLE notification_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id INTEGER NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    -- The event as JSON (core::notification::NotificationEvent).
    event TEXT NOT NULL,
    -- The same on every attempt, so a receiver can drop copies.
    delivery_id TEXT NOT NULL UNIQUE,
    -- pending | delivered | failed
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX notification_messages_due ON notification_messages (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX notification_messages_by_channel ON notification_messages (channel_id, id);

-- Every attempt at a message and what came of it (the error text is redacted).
CREATE TABLE notification_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL REFERENCES notification_messages (id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    ok BOOLEAN NOT NULL,
    http_status INTEGER,
    error TEXT
);
CREATE INDEX notification_attempts_by_message ON notification_attempts (message_id, id);
