//! A domain's own certificate, uploaded by its team (served as it is, never ordered), and the
//! warnings of served certificates' coming expiry.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Actor;
use helvetia_core::certificate::EXPIRING_WITHIN;
use helvetia_core::domain::Domain;
use helvetia_core::service::Service;
use jiff::Timestamp;

use super::{CertificateRow, ROUTED, SELECT_CERTIFICATES, StoredCertificate, millis};
use crate::audit::audit;
use crate::services::domain_target;
use crate::{Result, Store, WritePool, now_millis, with_pool};

/// A certificate a user uploaded for a domain: its chain, its key (sealed by the server) and
/// what its leaf says.
pub struct Uploaded<'a> {
    pub chain_pem: &'a str,
    pub sealed_key: &'a str,
    pub issuer: &'a str,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

impl Store {
    /// Serves `uploaded` for `domain` of `service` from now on, in place of any certificate it
    /// had: never ordered or renewed while it stays.
    pub async fn upload_certificate(
        &self,
        actor: &Actor,
        service: &Service,
        domain: &Domain,
        uploaded: &Uploaded<'_>,
    ) -> Result<()> {
        let entry = format!(
            "{}: certificate uploaded (issued by {}, valid until {})",
            domain_target(service, domain.name.as_str()),
            uploaded.issuer,
            uploaded.not_after
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM certificates WHERE domain_id = $1")
                .bind(domain.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO certificates (kind, names, domain_id, state, uploaded, issuer,
                                           not_before, not_after, failures, chain_pem,
                                           sealed_key, updated_at)
                 VALUES ('domain', $1, $2, 'issued', TRUE, $3, $4, $5, 0, $6, $7, $8)",
            )
            .bind(domain.name.as_str())
            .bind(domain.id)
            .bind(uploaded.issuer)
            .bind(millis(uploaded.not_before))
            .bind(millis(uploaded.not_after))
            .bind(uploaded.chain_pem)
            .bind(uploaded.sealed_key)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
            audit!(tx, actor, AuditAction::DomainSettings, entry.clone());
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stops serving `domain`'s uploaded certificate; answers whether it had one. (Helvetia
    /// orders one for it again, when it is the ACME client.)
    pub async fn remove_uploaded_certificate(
        &self,
        actor: &Actor,
        service: &Service,
        domain: &Domain,
    ) -> Result<bool> {
        let entry = format!(
            "{}: uploaded certificate removed",
            domain_target(service, domain.name.as_str())
        );
        let removed = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let removed = sqlx::query("DELETE FROM certificates WHERE domain_id = $1 AND uploaded")
                .bind(domain.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if removed > 0 {
                audit!(tx, actor, AuditAction::DomainSettings, entry.clone());
            }
            tx.commit().await?;
            removed
        });
        Ok(removed > 0)
    }

    /// The certificates still served that end within [`EXPIRING_WITHIN`] of `now` and whose
    /// coming expiry was not notified yet (a renewed certificate's is notified again).
    pub async fn certificates_to_warn_of(&self, now: Timestamp) -> Result<Vec<StoredCertificate>> {
        let query = format!(
            "{SELECT_CERTIFICATES}
             WHERE {ROUTED} AND c.chain_pem IS NOT NULL AND c.not_after < $1
               AND (c.expiry_notified_for IS NULL OR c.expiry_notified_for <> c.not_after)
             ORDER BY c.id"
        );
        let horizon = now
            .saturating_add(EXPIRING_WITHIN)
            .unwrap_or(Timestamp::MAX);
        let rows: Vec<CertificateRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(query.clone()))
                .bind(millis(horizon))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(StoredCertificate::try_from).collect()
    }

    /// Records that certificate `id`'s expiry at `not_after` was notified.
    pub async fn record_expiry_warning(&self, id: i64, not_after: Timestamp) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE certificates SET expiry_notified_for = $1 WHERE id = $2")
                .bind(millis(not_after))
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
