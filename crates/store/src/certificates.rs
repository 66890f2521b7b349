//! Helvetia's ACME accounts (credentials sealed by the server) and the domains' certificates:
//! state, the CA's reason, when to order again, the chain and its private key (sealed).

use helvetia_core::domain::Domain;
use jiff::Timestamp;

use crate::{Result, Store, now_millis, with_pool};

/// What an order answered, to record.
pub enum Ordered<'a> {
    Issued {
        chain_pem: &'a str,
        sealed_key: &'a str,
        issuer: &'a str,
        not_before: Timestamp,
        not_after: Timestamp,
        renew_at: Timestamp,
    },
    Failed {
        reason: &'a str,
        next_attempt_at: Timestamp,
    },
}

/// An issued certificate to serve: the domain, its chain and its sealed key.
pub struct Served {
    pub domain_id: i64,
    pub name: String,
    pub chain_pem: String,
    pub sealed_key: String,
}

fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

impl Store {
    /// The sealed credentials of Helvetia's account at the CA `directory`.
    pub async fn acme_account(&self, directory: &str) -> Result<Option<String>> {
        let sealed = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT sealed_credentials FROM acme_accounts WHERE directory = $1")
                .bind(directory)
                .fetch_optional(pool)
                .await?
        });
        Ok(sealed)
    }

    pub async fn save_acme_account(&self, directory: &str, sealed: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO acme_accounts (directory, sealed_credentials, created_at)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (directory) DO UPDATE SET sealed_credentials = excluded.sealed_credentials",
            )
            .bind(directory)
            .bind(sealed)
            .bind(now_millis())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The routed domains whose certificate is due at `now`: never ordered, failed and past
    /// their wait, issued and past their renewal time, or left `pending` by a crash (an order
    /// takes minutes at most). Whole names only: a wildcard needs DNS-01, a path prefix shares
    /// its name's certificate.
    pub async fn domains_due_for_certificates(&self, now: Timestamp) -> Result<Vec<Domain>> {
        let stale_pending = millis(now) - 10 * 60 * 1000;
        let ids: Vec<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT d.id FROM domains d LEFT JOIN certificates c ON c.domain_id = d.id
                 WHERE d.verification IS NOT NULL AND d.path_prefix = ''
                   AND d.name NOT LIKE '*.%'
                   AND (c.domain_id IS NULL
                        OR c.next_attempt_at <= $1
                        OR (c.state IN ('pending', 'renewing') AND c.updated_at < $2))
                 ORDER BY d.id",
            )
            .bind(millis(now))
            .bind(stale_pending)
            .fetch_all(pool)
            .await?
        });
        let mut due = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(domain) = self.domain(id).await? {
                due.push(domain);
            }
        }
        Ok(due)
    }

    /// Marks `domain`'s certificate as being ordered: `renewing` when one was issued (it is
    /// served meanwhile), else `pending`.
    pub async fn start_certificate_order(&self, domain: &Domain) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO certificates (domain_id, state, updated_at) VALUES ($1, 'pending', $2)
                 ON CONFLICT (domain_id) DO UPDATE SET
                     state = CASE WHEN certificates.chain_pem IS NULL THEN 'pending'
                                  ELSE 'renewing' END,
                     next_attempt_at = NULL, updated_at = excluded.updated_at",
            )
            .bind(domain.id)
            .bind(now_millis())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records what an order of `domain`'s certificate answered.
    pub async fn record_certificate_order(
        &self,
        domain: &Domain,
        ordered: &Ordered<'_>,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            match ordered {
                Ordered::Issued {
                    chain_pem,
                    sealed_key,
                    issuer,
                    not_before,
                    not_after,
                    renew_at,
                } => {
                    sqlx::query(
                        "UPDATE certificates SET state = 'issued', chain_pem = $1, sealed_key = $2,
                                issuer = $3, not_before = $4, not_after = $5, next_attempt_at = $6,
                                reason = NULL, failures = 0, updated_at = $7
                         WHERE domain_id = $8",
                    )
                    .bind(*chain_pem)
                    .bind(*sealed_key)
                    .bind(*issuer)
                    .bind(millis(*not_before))
                    .bind(millis(*not_after))
                    .bind(millis(*renew_at))
                    .bind(now_millis())
                    .bind(domain.id)
                    .execute(pool)
                    .await?;
                }
                Ordered::Failed {
                    reason,
                    next_attempt_at,
                } => {
                    // A renewal that failed keeps serving what was issued: back to `issued`.
                    sqlx::query(
                        "UPDATE certificates SET
                                state = CASE WHEN chain_pem IS NULL THEN 'failed' ELSE 'issued' END,
                                reason = $1, failures = failures + 1, next_attempt_at = $2,
                                updated_at = $3
                         WHERE domain_id = $4",
                    )
                    .bind(*reason)
                    .bind(millis(*next_attempt_at))
                    .bind(now_millis())
                    .bind(domain.id)
                    .execute(pool)
                    .await?;
                }
            }
        });
        Ok(())
    }

    /// Every ACME account's sealed credentials, by directory (for a master key rotation).
    pub async fn sealed_acme_accounts(&self) -> Result<Vec<(String, String)>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT directory, sealed_credentials FROM acme_accounts ORDER BY directory",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Every certificate's sealed private key, by domain id (for a master key rotation).
    pub async fn sealed_certificate_keys(&self) -> Result<Vec<(i64, String)>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT domain_id, sealed_key FROM certificates WHERE sealed_key IS NOT NULL
                 ORDER BY domain_id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Every issued certificate of a routed domain, to serve.
    pub async fn served_certificates(&self) -> Result<Vec<Served>> {
        let rows: Vec<(i64, String, String, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT d.id, d.name, c.chain_pem, c.sealed_key
                 FROM certificates c JOIN domains d ON d.id = c.domain_id
                 WHERE d.verification IS NOT NULL
                   AND c.chain_pem IS NOT NULL AND c.sealed_key IS NOT NULL
                 ORDER BY d.id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(domain_id, name, chain_pem, sealed_key)| Served {
                domain_id,
                name,
                chain_pem,
                sealed_key,
            })
            .collect())
    }
}
