//! Deploys on push: a service's settings for them and its own receiver (the hook id of its
//! URL and its sealed secret). The delivery log is `deliveries.rs`.

use std::collections::HashMap;

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Actor, TeamId};
use helvetia_core::service::Service;
use helvetia_core::webhook::{PushSettings, WatchPaths};

use crate::audit::audit;
use crate::services::target;
use crate::{Result, Store, StoreError, WritePool, now_millis, with_pool};

/// A service's push settings and, once made, its own receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHook {
    pub service_id: i64,
    /// The unguessable id in the receiver's URL.
    pub hook_id: Option<String>,
    /// The receiver's secret, sealed by the vault.
    pub sealed_secret: Option<String>,
    pub settings: PushSettings,
}

#[derive(sqlx::FromRow)]
struct HookRow {
    service_id: i64,
    hook_id: Option<String>,
    secret: Option<String>,
    auto_deploy: bool,
    watch_paths: String,
    cancel_running: bool,
    wait_for_ci: bool,
}

fn settings(
    auto_deploy: bool,
    watch_paths: &str,
    cancel_running: bool,
    wait_for_ci: bool,
) -> Result<PushSettings> {
    let patterns: Vec<String> =
        serde_json::from_str(watch_paths).map_err(|e| StoreError::corrupt("watch paths", e))?;
    Ok(PushSettings {
        auto_deploy,
        watch_paths: WatchPaths::parse(&patterns)
            .map_err(|e| StoreError::corrupt("watch paths", e))?,
        cancel_running,
        wait_for_ci,
    })
}

impl TryFrom<HookRow> for ServiceHook {
    type Error = StoreError;
    fn try_from(row: HookRow) -> Result<ServiceHook> {
        Ok(ServiceHook {
            service_id: row.service_id,
            hook_id: row.hook_id,
            sealed_secret: row.secret,
            settings: settings(
                row.auto_deploy,
                &row.watch_paths,
                row.cancel_running,
                row.wait_for_ci,
            )?,
        })
    }
}

/// A service linked to a repository, with its hook row's settings if it has one.
#[derive(sqlx::FromRow)]
struct LinkedHookRow {
    service_id: i64,
    team_id: i64,
    auto_deploy: Option<bool>,
    watch_paths: Option<String>,
    cancel_running: Option<bool>,
    wait_for_ci: Option<bool>,
}

macro_rules! select_hook {
    ($where:literal) => {
        concat!(
            "SELECT service_id, hook_id, secret, auto_deploy, watch_paths, cancel_running,
                    wait_for_ci
             FROM service_hooks WHERE ",
            $where
        )
    };
}

/// Runs `$update` (a query on `service_hooks`, written out here: it is built once per backend) on `$service`'s row — made first if it has
/// none, if `$actor`'s team owns the service — and audits it as `$action`, in one transaction.
macro_rules! change_hook {
    ($store:expr, $actor:expr, $service:expr, $action:expr, $update:expr) => {{
        let service: &Service = $service;
        let actor: &Actor = $actor;
        let named = target(&service.project, &service.name);
        with_pool!($store, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO service_hooks (service_id, updated_at)
                 SELECT s.id, $3 FROM services s JOIN projects p ON p.id = s.project_id
                 WHERE s.id = $1 AND p.team_id = $2
                 ON CONFLICT (service_id) DO NOTHING",
            )
            .bind(service.id)
            .bind(actor.team.0)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
            let owned: Option<i64> = sqlx::query_scalar(
                "SELECT h.service_id FROM service_hooks h JOIN services s ON s.id = h.service_id
                 JOIN projects p ON p.id = s.project_id WHERE h.service_id = $1 AND p.team_id = $2",
            )
            .bind(service.id)
            .bind(actor.team.0)
            .fetch_optional(&mut *tx)
            .await?;
            if owned.is_none() {
                return Err(StoreError::NotFound(format!("service `{named}`")));
            }
            $update.execute(&mut *tx).await?;
            audit!(tx, actor, $action, named);
            tx.commit().await?;
        });
        Ok(())
    }};
}

impl Store {
    /// `service`'s push settings and receiver (the defaults, with no receiver, if never set).
    pub async fn service_hook(&self, service: &Service) -> Result<ServiceHook> {
        let row: Option<HookRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_hook!("service_id = $1"))
                .bind(service.id)
                .fetch_optional(pool)
                .await?
        });
        match row {
            Some(row) => row.try_into(),
            None => Ok(ServiceHook {
                service_id: service.id,
                hook_id: None,
                sealed_secret: None,
                settings: PushSettings::default(),
            }),
        }
    }

    /// The receiver `hook_id` names, with its service and the service's team.
    pub async fn hook_target(
        &self,
        hook_id: &str,
    ) -> Result<Option<(ServiceHook, Service, TeamId)>> {
        let row: Option<HookRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_hook!("hook_id = $1"))
                .bind(hook_id)
                .fetch_optional(pool)
                .await?
        });
        let Some(row) = row else { return Ok(None) };
        let hook = ServiceHook::try_from(row)?;
        let service = self.service_by_id(hook.service_id).await?;
        let team = self.service_team(&service).await?;
        Ok(Some((hook, service, team)))
    }

    /// The team that owns `service`: for a receiver, whose delivery acts in that team.
    pub async fn service_team(&self, service: &Service) -> Result<TeamId> {
        let team: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT team_id FROM projects WHERE id = $1")
                .bind(service.project_id)
                .fetch_one(pool)
                .await?
        });
        Ok(TeamId(team))
    }

    /// Gives `service` a receiver at `hook_id` with the secret `sealed`, replacing any: the
    /// old URL and secret stop working at once.
    pub async fn set_hook_secret(
        &self,
        actor: &Actor,
        service: &Service,
        hook_id: &str,
        sealed: &str,
    ) -> Result<()> {
        change_hook!(
            self,
            actor,
            service,
            AuditAction::HookSecretRotate,
            sqlx::query(
                "UPDATE service_hooks SET hook_id = $1, secret = $2, updated_at = $3
                 WHERE service_id = $4",
            )
            .bind(hook_id)
            .bind(sealed)
            .bind(now_millis())
            .bind(service.id)
        )
    }

    /// Replaces `service`'s push settings.
    pub async fn set_push_settings(
        &self,
        actor: &Actor,
        service: &Service,
        settings: &PushSettings,
    ) -> Result<()> {
        let patterns = serde_json::to_string(settings.watch_paths.patterns())
            .map_err(|e| StoreError::corrupt("watch paths", e))?;
        change_hook!(
            self,
            actor,
            service,
            AuditAction::HookSettings,
            sqlx::query(
                "UPDATE service_hooks
                 SET auto_deploy = $1, watch_paths = $2, cancel_running = $3, updated_at = $4,
                     wait_for_ci = $6
                 WHERE service_id = $5",
            )
            .bind(settings.auto_deploy)
            .bind(patterns)
            .bind(settings.cancel_running)
            .bind(now_millis())
            .bind(service.id)
            .bind(settings.wait_for_ci)
        )
    }

    /// The team and push settings of every service linked to GitHub repository
    /// `repository_id`, by service id (one read for a delivery that reaches them all).
    pub async fn push_settings_of_repository(
        &self,
        repository_id: i64,
    ) -> Result<HashMap<i64, (TeamId, PushSettings)>> {
        let rows: Vec<LinkedHookRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT s.id AS service_id, p.team_id, h.auto_deploy, h.watch_paths,
                        h.cancel_running, h.wait_for_ci
                 FROM services s JOIN projects p ON p.id = s.project_id
                 LEFT JOIN service_hooks h ON h.service_id = s.id
                 WHERE s.github_repository_id = $1",
            )
            .bind(repository_id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|row| {
                let settings = match (
                    row.auto_deploy,
                    row.watch_paths,
                    row.cancel_running,
                    row.wait_for_ci,
                ) {
                    (Some(auto_deploy), Some(watch_paths), Some(cancel_running), Some(wait)) => {
                        settings(auto_deploy, &watch_paths, cancel_running, wait)?
                    }
                    _ => PushSettings::default(),
                };
                Ok((row.service_id, (TeamId(row.team_id), settings)))
            })
            .collect()
    }
}
