-- Accounts: users, their memberships of teams, sessions, single-use links, device logins and
-- the keys that sign session tokens. Secrets (TOTP keys, signing keys) are sealed by the vault
-- before they reach a column; passwords, refresh tokens, recovery codes and links are stored
-- only as hashes.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Lower-cased; how a user signs in.
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- An argon2id PHC string; NULL until the user has set a password.
    password_hash TEXT,
    totp_secret TEXT,
    totp_enabled_at INTEGER,
    -- The last TOTP time step accepted: a code is good once.
    totp_last_step INTEGER,
    failed_signins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    -- May manage the instance's users and read every series of /metrics.
    instance_admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at INTEGER NOT NULL,
    disabled_at INTEGER
);

-- A team made for one user at sign-up; it cannot be left by that user.
ALTER TABLE teams ADD COLUMN personal_user_id INTEGER REFERENCES users (id) ON DELETE CASCADE;

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_by_user ON team_members (user_id);

-- Tokens now belong to a user (NULL: a server-administration token, which belongs to no one)
-- and may be limited to one team (NULL: every team of its user).
CREATE TABLE api_tokens_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    team_id INTEGER REFERENCES teams (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER
);
INSERT INTO api_tokens_new (id, user_id, team_id, name, token_hash, hint, scopes, created_at,
                            expires_at, last_used_at, revoked_at)
    SELECT id, NULL, team_id, name, token_hash, hint, scopes, created_at, expires_at,
           last_used_at, revoked_at
    FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

-- Entries about a user rather than a team (a failed sign-in) have no team; every entry says
-- from where it came.
CREATE TABLE audit_log_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id INTEGER REFERENCES teams (id) ON DELETE SET NULL,
    user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    client_addr TEXT,
    at INTEGER NOT NULL
);
INSERT INTO audit_log_new (id, team_id, actor, action, target, at)
    SELECT id, team_id, actor, action, target, at FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
CREATE INDEX audit_log_by_team ON audit_log (team_id, id);
CREATE INDEX audit_log_by_user ON audit_log (user_id, id);

CREATE TABLE recovery_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at INTEGER
);
CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id);

-- A session is a family of refresh tokens: each use of one makes the next; a used one coming
-- back means it was stolen, and the whole family is revoked.
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_reason TEXT,
    client_addr TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);

CREATE TABLE signing_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kid TEXT NOT NULL UNIQUE,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- Set when a newer key took over: tokens it signed verify until then.
    retires_at INTEGER
);

-- Single-use links: invitations to a team, sign-up links, password resets.
CREATE TABLE links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    team_id INTEGER REFERENCES teams (id) ON DELETE CASCADE,
    role TEXT,
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    revoked_at INTEGER
);

-- RFC 8628 device authorization requests (`helvetia login`).
CREATE TABLE device_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_code_hash TEXT NOT NULL UNIQUE,
    user_code TEXT NOT NULL UNIQUE,
    client_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    interval_secs INTEGER NOT NULL,
    last_polled_at INTEGER,
    approved_by INTEGER REFERENCES users (id) ON DELETE CASCADE,
    denied_at INTEGER,
    redeemed_at INTEGER
);
