-- Domain extras. HTTP basic auth per domain: the user and a bcrypt hash of the password (never
-- the password), which the edge router checks on the domain's hosts. HSTS, opt-in: the
-- header's max-age (NULL: off) and its flags, sent only over HTTPS once a certificate is served.
-- The automatic re-check of an unverified domain: when it runs next (NULL: none — verified, or
-- given up) and how many automatic checks failed since the last manual one, for growing waits.
ALTER TABLE domains ADD COLUMN basic_auth_user TEXT;
ALTER TABLE domains ADD COLUMN basic_auth_hash TEXT;
ALTER TABLE domains ADD COLUMN hsts_max_age BIGINT;
ALTER TABLE domains ADD COLUMN hsts_include_subdomains BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE domains ADD COLUMN hsts_preload BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE domains ADD COLUMN next_check_at BIGINT;
ALTER TABLE domains ADD COLUMN rechecks BIGINT NOT NULL DEFAULT 0;
-- Domains left unverified before re-checks existed are checked again from now on.
UPDATE domains SET next_check_at = created_at WHERE verification IS NULL;
