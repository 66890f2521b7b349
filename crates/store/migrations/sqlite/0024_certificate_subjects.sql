-- A certificate is for a set of names (usually one) of a kind: a custom domain's (its
-- domain_id), a service's generated hostname, a wildcard over generated hostnames, or
-- Helvetia's own public URL host. Existing rows are the domains' certificates.
CREATE TABLE certificates_by_subject (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    -- Separated by spaces.
    names TEXT NOT NULL,
    domain_id INTEGER UNIQUE REFERENCES domains (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    issuer TEXT,
    not_before INTEGER,
    not_after INTEGER,
    reason TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    chain_pem TEXT,
    sealed_key TEXT,
    updated_at INTEGER NOT NULL,
    UNIQUE (kind, names)
);

INSERT INTO certificates_by_subject (kind, names, domain_id, state, issuer, not_before,
                                     not_after, reason, failures, next_attempt_at, chain_pem,
                                     sealed_key, updated_at)
    SELECT 'domain', d.name, c.domain_id, c.state, c.issuer, c.not_before, c.not_after,
           c.reason, c.failures, c.next_attempt_at, c.chain_pem, c.sealed_key, c.updated_at
    FROM certificates c JOIN domains d ON d.id = c.domain_id;

DROP TABLE certificates;
ALTER TABLE certificates_by_subject RENAME TO certificates;
