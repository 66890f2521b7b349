-- Deploys from CI without a stored secret: the OpenID Connect issuers a service trusts, and for
-- which claims (the `repository` and `ref` a token must carry, and its `environment` if set).
-- Nothing here is secret: a token proves itself by the issuer's signature.
CREATE TABLE oidc_trusts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    issuer TEXT NOT NULL,
    repository TEXT NOT NULL,
    -- GitHub's id of the repository, when the trust was made for the one the service is
    -- linked to: a repository made again under the same name has another.
    repository_id INTEGER,
    git_ref TEXT NOT NULL,
    environment TEXT,
    created_at INTEGER NOT NULL
);

CREATE INDEX oidc_trusts_service ON oidc_trusts (service_id);
