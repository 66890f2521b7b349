//! Helvetia's ACME accounts (credentials sealed by the server) and its certificates, one row
//! per subject — a custom domain's name, a generated hostname, a wildcard over generated
//! hostnames, the public URL's host: state, the CA's reason, when to order again, the chain and
//! its private key (sealed).
//!
//! A domain's row is made when the domain is routed (whole names only: a path prefix shares
//! its name's certificate), the others' by [`Store::sync_certificates`] from what the server
//! wants; a new row is `pending` and due at once.

use helvetia_core::certificate::{
    Certificate, CertificateKind, CertificateSource, CertificateState, CertificateSubject,
};
use jiff::Timestamp;

use crate::{Result, Store, StoreError, WritePool, now_millis, timestamp, with_pool};

mod uploads;

pub use uploads::Uploaded;

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

/// A certificate and what it is for (never its chain or key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    pub id: i64,
    pub subject: CertificateSubject,
    pub certificate: Certificate,
}

/// An issued certificate to serve: what it is for, its chain and its sealed key.
pub struct Served {
    pub id: i64,
    pub subject: CertificateSubject,
    pub chain_pem: String,
    pub sealed_key: String,
}

/// A certificate's columns (`c.state AS certificate_state`, `c.updated_at AS
/// certificate_updated_at`, the others by their names), as read beside what it is for: all
/// `NULL` for a domain without one.
#[derive(sqlx::FromRow)]
pub(crate) struct CertificateColumns {
    certificate_state: Option<String>,
    uploaded: Option<bool>,
    issuer: Option<String>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    reason: Option<String>,
    failures: Option<i64>,
    next_attempt_at: Option<i64>,
    certificate_updated_at: Option<i64>,
}

impl CertificateColumns {
    pub(crate) fn into_certificate(self) -> Result<Option<Certificate>> {
        let (Some(state), Some(updated_at)) = (self.certificate_state, self.certificate_updated_at)
        else {
            return Ok(None);
        };
        let not_after = self.not_after.map(timestamp).transpose()?;
        let stored = CertificateState::parse(&state)
            .ok_or_else(|| StoreError::corrupt("certificate state", format!("`{state}`")))?;
        Ok(Some(Certificate {
            state: stored.at(not_after, Timestamp::now()),
            source: if self.uploaded.unwrap_or_default() {
                CertificateSource::Uploaded
            } else {
                CertificateSource::Acme
            },
            issuer: self.issuer,
            not_before: self.not_before.map(timestamp).transpose()?,
            not_after,
            reason: self.reason,
            failures: u32::try_from(self.failures.unwrap_or_default()).unwrap_or(u32::MAX),
            next_attempt_at: self.next_attempt_at.map(timestamp).transpose()?,
            updated_at: timestamp(updated_at)?,
        }))
    }
}

#[derive(sqlx::FromRow)]
struct CertificateRow {
    id: i64,
    kind: String,
    names: String,
    domain_id: Option<i64>,
    #[sqlx(flatten)]
    certificate: CertificateColumns,
}

fn subject(kind: &str, names: &str, domain_id: Option<i64>) -> Result<CertificateSubject> {
    let kind = CertificateKind::parse(kind)
        .ok_or_else(|| StoreError::corrupt("certificate kind", format!("`{kind}`")))?;
    Ok(CertificateSubject {
        kind,
        names: names.split(' ').map(str::to_owned).collect(),
        domain_id,
    })
}

impl TryFrom<CertificateRow> for StoredCertificate {
    type Error = StoreError;
    fn try_from(row: CertificateRow) -> Result<StoredCertificate> {
        let certificate = (row.certificate.into_certificate()?)
            .ok_or_else(|| StoreError::corrupt("certificate", "no state"))?;
        Ok(StoredCertificate {
            id: row.id,
            subject: subject(&row.kind, &row.names, row.domain_id)?,
            certificate,
        })
    }
}

const SELECT_CERTIFICATES: &str = "SELECT c.id, c.kind, c.names, c.domain_id, \
     c.state AS certificate_state, c.uploaded, c.issuer, c.not_before, c.not_after, c.reason, \
     c.failures, c.next_attempt_at, c.updated_at AS certificate_updated_at \
     FROM certificates c LEFT JOIN domains d ON d.id = c.domain_id";

/// Only the certificates of routed domains, and those of other kinds.
const ROUTED: &str = "(c.domain_id IS NULL OR d.verification IS NOT NULL)";

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

    /// Makes the certificates the server wants at `now`: one for each routed whole-name
    /// domain, and `others` (generated hostnames, wildcards, the public URL's host — not
    /// domains). Rows of other kinds no longer wanted are deleted; returns whether one of
    /// them was issued (the edge router must stop serving it).
    pub async fn sync_certificates(
        &self,
        others: &[CertificateSubject],
        now: Timestamp,
    ) -> Result<bool> {
        let now = millis(now);
        let removed_issued = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO certificates (kind, names, domain_id, state, next_attempt_at,
                                           updated_at)
                 SELECT 'domain', d.name, d.id, 'pending', $1, $1 FROM domains d
                 WHERE d.verification IS NOT NULL AND d.path_prefix = ''
                   AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.domain_id = d.id)",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let existing: Vec<(i64, String, String, bool)> = sqlx::query_as(
                "SELECT id, kind, names, chain_pem IS NOT NULL FROM certificates
                 WHERE domain_id IS NULL",
            )
            .fetch_all(&mut *tx)
            .await?;
            let mut removed_issued = false;
            for (id, kind, names, issued) in existing {
                let wanted = others
                    .iter()
                    .any(|other| other.kind.as_str() == kind && other.joined_names() == names);
                if !wanted {
                    sqlx::query("DELETE FROM certificates WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    removed_issued |= issued;
                }
            }
            for other in others.iter().filter(|other| other.domain_id.is_none()) {
                sqlx::query(
                    "INSERT INTO certificates (kind, names, state, next_attempt_at, updated_at)
                     VALUES ($1, $2, 'pending', $3, $3)
                     ON CONFLICT (kind, names) DO NOTHING",
                )
                .bind(other.kind.as_str())
                .bind(other.joined_names())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            removed_issued
        });
        Ok(removed_issued)
    }

    /// The certificates due at `now`: new, failed and past their wait, issued and past their
    /// renewal time, or left `pending` by a crash (an order takes minutes at most); a domain's
    /// only while it is routed, and never an uploaded one.
    pub async fn certificates_due(&self, now: Timestamp) -> Result<Vec<StoredCertificate>> {
        let stale_pending = millis(now) - 10 * 60 * 1000;
        let query = format!(
            "{SELECT_CERTIFICATES}
             WHERE {ROUTED} AND NOT c.uploaded
               AND (c.next_attempt_at <= $1
                    OR (c.state IN ('pending', 'renewing') AND c.updated_at < $2))
             ORDER BY c.id"
        );
        let rows: Vec<CertificateRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .bind(millis(now))
                .bind(stale_pending)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(StoredCertificate::try_from).collect()
    }

    /// Every certificate (a domain's only while it is routed), for the API and expiry.
    pub async fn certificates(&self) -> Result<Vec<StoredCertificate>> {
        let query = format!("{SELECT_CERTIFICATES} WHERE {ROUTED} ORDER BY c.id");
        let rows: Vec<CertificateRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(StoredCertificate::try_from).collect()
    }

    /// When the next certificate is due after `now` (for the ordering task to wake then), if
    /// one will be.
    pub async fn next_certificate_due(&self) -> Result<Option<Timestamp>> {
        let query = format!(
            "SELECT MIN(c.next_attempt_at) FROM certificates c
             LEFT JOIN domains d ON d.id = c.domain_id WHERE {ROUTED} AND NOT c.uploaded"
        );
        let next: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(query.clone()))
                .fetch_one(pool)
                .await?
        });
        next.map(timestamp).transpose()
    }

    /// Marks certificate `id` as being ordered: `renewing` when one was issued (it is served
    /// meanwhile), else `pending`.
    pub async fn start_certificate_order(&self, id: i64) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE certificates SET
                     state = CASE WHEN chain_pem IS NULL THEN 'pending' ELSE 'renewing' END,
                     next_attempt_at = NULL, updated_at = $1
                 WHERE id = $2",
            )
            .bind(now_millis())
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records what an order of certificate `id` answered.
    pub async fn record_certificate_order(&self, id: i64, ordered: &Ordered<'_>) -> Result<()> {
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
                         WHERE id = $8",
                    )
                    .bind(*chain_pem)
                    .bind(*sealed_key)
                    .bind(*issuer)
                    .bind(millis(*not_before))
                    .bind(millis(*not_after))
                    .bind(millis(*renew_at))
                    .bind(now_millis())
                    .bind(id)
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
                         WHERE id = $4",
                    )
                    .bind(*reason)
                    .bind(millis(*next_attempt_at))
                    .bind(now_millis())
                    .bind(id)
                    .execute(pool)
                    .await?;
                }
            }
        });
        Ok(())
    }

    /// Makes the certificates that failed for `reason` due at `now` (the setting they lacked
    /// is there now), their failures kept.
    pub async fn retry_failed_certificates(&self, reason: &str, now: Timestamp) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE certificates SET next_attempt_at = $1
                 WHERE state = 'failed' AND reason = $2",
            )
            .bind(millis(now))
            .bind(reason)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The generated hostnames of services with a route (a worker has none), previews' too:
    /// what generated certificates are for.
    pub async fn generated_hostnames(&self) -> Result<Vec<String>> {
        let names = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT h.hostname FROM hostnames h JOIN services s ON s.id = h.service_id
                 WHERE h.generated AND s.port IS NOT NULL ORDER BY h.hostname",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(names)
    }

    /// The service whose generated hostname `host` is.
    pub async fn service_of_hostname(&self, host: &str) -> Result<Option<i64>> {
        let id = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT service_id FROM hostnames WHERE hostname = $1")
                .bind(host)
                .fetch_optional(pool)
                .await?
        });
        Ok(id)
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

    /// Every certificate's sealed private key, with its id and subject (which the key is
    /// sealed to), for a master key rotation.
    pub async fn sealed_certificate_keys(&self) -> Result<Vec<(i64, CertificateSubject, String)>> {
        let rows: Vec<(i64, String, String, Option<i64>, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, kind, names, domain_id, sealed_key FROM certificates
                 WHERE sealed_key IS NOT NULL ORDER BY id",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, kind, names, domain_id, sealed)| {
                Ok((id, subject(&kind, &names, domain_id)?, sealed))
            })
            .collect()
    }

    /// Every issued certificate to serve (a domain's only while it is routed).
    pub async fn served_certificates(&self) -> Result<Vec<Served>> {
        let query = format!(
            "SELECT c.id, c.kind, c.names, c.domain_id, c.chain_pem, c.sealed_key
             FROM certificates c LEFT JOIN domains d ON d.id = c.domain_id
             WHERE {ROUTED} AND c.chain_pem IS NOT NULL AND c.sealed_key IS NOT NULL
             ORDER BY c.id"
        );
        let rows: Vec<(i64, String, String, Option<i64>, String, String)> =
            with_pool!(self, |pool| {
                sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                    .fetch_all(pool)
                    .await?
            });
        rows.into_iter()
            .map(|(id, kind, names, domain_id, chain_pem, sealed_key)| {
                Ok(Served {
                    id,
                    subject: subject(&kind, &names, domain_id)?,
                    chain_pem,
                    sealed_key,
                })
            })
            .collect()
    }
}
