//! The OpenID Connect issuers each service trusts for deploys from CI, and for which claims.
//! A trust holds no secret: the token a CI job presents proves itself by its issuer's
//! signature, checked by the server.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Actor;
use helvetia_core::oidc::{Trust, TrustRules};
use helvetia_core::service::Service;

use crate::audit::audit;
use crate::services::target;
use crate::{Result, Store, StoreError, WritePool, now_millis, timestamp, with_pool};

#[derive(sqlx::FromRow)]
struct TrustRow {
    id: i64,
    issuer: String,
    repository: String,
    repository_id: Option<i64>,
    git_ref: String,
    environment: Option<String>,
    created_at: i64,
}

impl TrustRow {
    fn into_trust(self) -> Result<Trust> {
        Ok(Trust {
            id: self.id,
            issuer: self.issuer,
            repository: self.repository,
            repository_id: self.repository_id,
            git_ref: self.git_ref,
            environment: self.environment,
            created_at: timestamp(self.created_at)?,
        })
    }
}

/// How the audit log names a trust: the service, the trust and what it allows.
fn trust_target(service: &Service, id: i64, rules: &TrustRules) -> String {
    let environment = rules
        .environment
        .as_deref()
        .map(|environment| format!(" environment={environment}"))
        .unwrap_or_default();
    let repository_id = rules
        .repository_id
        .map(|id| format!(" repository_id={id}"))
        .unwrap_or_default();
    format!(
        "{} trust:{id} issuer={} repository={}{repository_id} ref={}{environment}",
        target(&service.project, &service.name),
        rules.issuer,
        rules.repository,
        rules.git_ref,
    )
}

impl Store {
    /// Makes `service` trust tokens of `rules.issuer` that carry its claims.
    pub async fn add_trust(
        &self,
        actor: &Actor,
        service: &Service,
        rules: &TrustRules,
    ) -> Result<Trust> {
        let created_at = now_millis();
        let id: i64 = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO oidc_trusts (service_id, issuer, repository, git_ref, environment,
                                          created_at, repository_id)
                 SELECT s.id, $2, $3, $4, $5, $6, $8 FROM services s
                 JOIN projects p ON p.id = s.project_id
                 WHERE s.id = $1 AND p.team_id = $7
                 RETURNING id",
            )
            .bind(service.id)
            .bind(&rules.issuer)
            .bind(&rules.repository)
            .bind(&rules.git_ref)
            .bind(&rules.environment)
            .bind(created_at)
            .bind(actor.team.0)
            .bind(rules.repository_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "service `{}`",
                    target(&service.project, &service.name)
                ))
            })?;
            audit!(
                tx,
                actor,
                AuditAction::TrustAdd,
                trust_target(service, id, rules)
            );
            tx.commit().await?;
            id
        });
        Ok(Trust {
            id,
            issuer: rules.issuer.clone(),
            repository: rules.repository.clone(),
            repository_id: rules.repository_id,
            git_ref: rules.git_ref.clone(),
            environment: rules.environment.clone(),
            created_at: timestamp(created_at)?,
        })
    }

    /// The trusts of service `service_id`, oldest first.
    pub async fn trusts(&self, service_id: i64) -> Result<Vec<Trust>> {
        let rows: Vec<TrustRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, issuer, repository, repository_id, git_ref, environment, created_at
                 FROM oidc_trusts WHERE service_id = $1 ORDER BY id",
            )
            .bind(service_id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(TrustRow::into_trust).collect()
    }

    /// Removes trust `id` of `service`: its tokens deploy nothing from now on.
    pub async fn remove_trust(&self, actor: &Actor, service: &Service, id: i64) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let removed: Option<TrustRow> = sqlx::query_as(
                "DELETE FROM oidc_trusts
                 WHERE id = $1 AND service_id = $2 AND service_id IN (
                     SELECT s.id FROM services s JOIN projects p ON p.id = s.project_id
                     WHERE p.team_id = $3)
                 RETURNING id, issuer, repository, repository_id, git_ref, environment,
                           created_at",
            )
            .bind(id)
            .bind(service.id)
            .bind(actor.team.0)
            .fetch_optional(&mut *tx)
            .await?;
            let removed = removed.ok_or_else(|| StoreError::NotFound(format!("trust {id}")))?;
            let rules = TrustRules {
                issuer: removed.issuer,
                repository: removed.repository,
                repository_id: removed.repository_id,
                git_ref: removed.git_ref,
                environment: removed.environment,
            };
            audit!(
                tx,
                actor,
                AuditAction::TrustRemove,
                trust_target(service, id, &rules)
            );
            tx.commit().await?;
        });
        Ok(())
    }
}
