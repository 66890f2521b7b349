-- Helvetia accounts are linked to GitHub accounts by GitHub's numeric user id, never by
-- e-mail address: an address can change hands, the id cannot.
ALTER TABLE users ADD COLUMN github_id BIGINT;
CREATE UNIQUE INDEX users_github_id ON users (github_id);
-- The user's GitHub token (sealed by the vault) and when it expires, kept to list the App
-- installations and repositories the user reaches.
ALTER TABLE users ADD COLUMN github_token_sealed TEXT;
ALTER TABLE users ADD COLUMN github_token_expires_at BIGINT;

-- A sign-in with GitHub (or the linking of an account) in progress. The `state` and the
-- browser's cookie are stored as SHA-256 hashes, the PKCE verifier sealed; a row is used once
-- (`used_at`) and only until `expires_at`.
CREATE TABLE github_authorizations (
    state_hash TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    verifier_sealed TEXT NOT NULL,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
