-- Helvetia as the ACME client: its account per CA directory (credentials sealed), and each
-- routed domain's certificate — its state, what the CA said, when to order again, and the
-- chain with its private key (sealed).
CREATE TABLE acme_accounts (
    directory TEXT PRIMARY KEY,
    sealed_credentials TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE certificates (
    domain_id BIGINT PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    issuer TEXT,
    not_before BIGINT,
    not_after BIGINT,
    reason TEXT,
    failures BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    chain_pem TEXT,
    sealed_key TEXT,
    updated_at BIGINT NOT NULL
);
