//! Deploys on push: a service's settings for them and its own receiver (the hook id of its
//! URL and its sealed secret), and the delivery log — every delivery received and what it did.

use std::collections::HashMap;

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::{Actor, TeamId};
use helvetia_core::service::Service;
use helvetia_core::webhook::{Delivery, Outcome, PushSettings, Source, Verdict, WatchPaths};
use jiff::Timestamp;

use crate::audit::audit;
use crate::services::target;
use crate::{Result, Store, StoreError, WritePool, millis, now_millis, timestamp, with_pool};

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

/// A delivery to record: everything but its id.
#[derive(Debug, Clone, Default)]
pub struct NewDelivery {
    pub service_id: Option<i64>,
    pub source: Option<Source>,
    pub event: String,
    pub delivery_id: Option<String>,
    pub signature: Option<Verdict>,
    pub outcome: Option<Outcome>,
    pub reason: String,
    pub deployment_id: Option<i64>,
    pub git_ref: Option<String>,
    pub commit: Option<String>,
    pub pusher: Option<String>,
    pub message: Option<String>,
    pub compare_url: Option<String>,
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

/// A delivery's values as the table takes them.
struct DeliveryValues<'a> {
    delivery: &'a NewDelivery,
    source: Source,
    signature: Verdict,
    outcome: Outcome,
    received_at: i64,
}

impl<'a> DeliveryValues<'a> {
    fn of(delivery: &'a NewDelivery) -> Result<DeliveryValues<'a>> {
        let missing = |what: &str| StoreError::Corrupt(format!("a delivery without its {what}"));
        Ok(DeliveryValues {
            delivery,
            source: delivery.source.ok_or_else(|| missing("source"))?,
            signature: delivery
                .signature
                .ok_or_else(|| missing("signature verdict"))?,
            outcome: delivery.outcome.ok_or_else(|| missing("outcome"))?,
            received_at: now_millis(),
        })
    }
}

/// The columns a delivery is inserted with, in the order both inserts bind them.
macro_rules! delivery_columns {
    () => {
        "service_id, source, event, delivery_id, signature, outcome, reason, deployment_id,
         git_ref, commit_sha, pusher, message, compare_url, received_at"
    };
}

/// At 14 values a row, well under SQLite's limit on a statement's parameters.
const DELIVERIES_PER_INSERT: usize = 500;

/// The `INSERT` of `$rows` (`DeliveryValues`), a `QueryBuilder` written out where it is
/// used: it is built once per backend.
macro_rules! insert_deliveries {
    ($rows:expr) => {{
        let mut insert = sqlx::QueryBuilder::new(concat!(
            "INSERT INTO webhook_deliveries (",
            delivery_columns!(),
            ") "
        ));
        insert.push_values($rows, |mut values, row: &DeliveryValues| {
            let delivery = row.delivery;
            values
                .push_bind(delivery.service_id)
                .push_bind(row.source.as_str())
                .push_bind(&delivery.event)
                .push_bind(&delivery.delivery_id)
                .push_bind(row.signature.as_str())
                .push_bind(row.outcome.as_str())
                .push_bind(&delivery.reason)
                .push_bind(delivery.deployment_id)
                .push_bind(&delivery.git_ref)
                .push_bind(&delivery.commit)
                .push_bind(&delivery.pusher)
                .push_bind(&delivery.message)
                .push_bind(&delivery.compare_url)
                .push_bind(row.received_at);
        });
        insert
    }};
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    source: String,
    event: String,
    delivery_id: Option<String>,
    signature: String,
    outcome: String,
    reason: String,
    deployment_id: Option<i64>,
    git_ref: Option<String>,
    commit_sha: Option<String>,
    pusher: Option<String>,
    message: Option<String>,
    compare_url: Option<String>,
    received_at: i64,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(row: DeliveryRow) -> Result<Delivery> {
        let corrupt = |what| move |e| StoreError::corrupt(what, e);
        Ok(Delivery {
            id: row.id,
            source: row.source.parse().map_err(corrupt("delivery source"))?,
            event: row.event,
            delivery_id: row.delivery_id,
            signature: row
                .signature
                .parse()
                .map_err(corrupt("signature verdict"))?,
            outcome: row.outcome.parse().map_err(corrupt("delivery outcome"))?,
            reason: row.reason,
            deployment_id: row.deployment_id,
            git_ref: row.git_ref,
            commit: row.commit_sha,
            pusher: row.pusher,
            message: row.message,
            compare_url: row.compare_url,
            received_at: timestamp(row.received_at)?,
        })
    }
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

/// `SELECT` of every delivery column, followed by `$where`.
macro_rules! select_deliveries {
    ($where:literal) => {
        concat!(
            "SELECT id, source, event, delivery_id, signature, outcome, reason, deployment_id,
                    git_ref, commit_sha, pusher, message, compare_url, received_at
             FROM webhook_deliveries WHERE ",
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

    /// Records a delivery; its id in the log.
    pub async fn record_delivery(&self, delivery: &NewDelivery) -> Result<i64> {
        let row = [DeliveryValues::of(delivery)?];
        Ok(with_pool!(self, |pool| {
            let mut insert = insert_deliveries!(&row);
            insert.push(" RETURNING id");
            insert.build_query_scalar().fetch_one(pool).await?
        }))
    }

    /// Records deliveries (one per service a delivery reached, of one or more deliveries),
    /// in one statement per 500.
    pub async fn record_deliveries(&self, deliveries: &[NewDelivery]) -> Result<()> {
        let rows = deliveries
            .iter()
            .map(DeliveryValues::of)
            .collect::<Result<Vec<_>>>()?;
        for chunk in rows.chunks(DELIVERIES_PER_INSERT) {
            with_pool!(self, |pool| {
                let mut insert = insert_deliveries!(chunk);
                insert.build().execute(pool).await?;
            });
        }
        Ok(())
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

    /// Settles a `waiting` delivery: what it did in the end.
    pub async fn settle_delivery(
        &self,
        id: i64,
        outcome: Outcome,
        reason: &str,
        deployment_id: Option<i64>,
    ) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE webhook_deliveries SET outcome = $1, reason = $2, deployment_id = $3
                 WHERE id = $4",
            )
            .bind(outcome.as_str())
            .bind(reason)
            .bind(deployment_id)
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The deployment an earlier delivery `delivery_id` from `source` requested for
    /// `service_id`, if one did (a redelivery of it is a duplicate; one of a delivery that
    /// was refused, failed or ignored is processed again).
    pub async fn delivery_acted(
        &self,
        service_id: i64,
        source: Source,
        delivery_id: &str,
    ) -> Result<Option<Delivery>> {
        let row: Option<DeliveryRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_deliveries!(
                "service_id = $1 AND source = $2 AND delivery_id = $3 AND outcome = 'deployed'
                 ORDER BY id LIMIT 1"
            ))
            .bind(service_id)
            .bind(source.as_str())
            .bind(delivery_id)
            .fetch_optional(pool)
            .await?
        });
        row.map(Delivery::try_from).transpose()
    }

    /// `service`'s deliveries — with `None`, those that reached no service (the GitHub App's,
    /// refused or for a repository no service is linked to) — newest first: at most `limit`,
    /// older than `before` when given.
    pub async fn deliveries(
        &self,
        service: Option<&Service>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> = with_pool!(self, |pool| {
            sqlx::query_as(select_deliveries!(
                "(service_id = $1 OR ($1 IS NULL AND service_id IS NULL)) AND id < $2
                 ORDER BY id DESC LIMIT $3"
            ))
            .bind(service.map(|service| service.id))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Delivery::try_from).collect()
    }

    /// Settles deliveries still `waiting` since before `older_than` as `failed`: their diff
    /// was cut short (a restart), and a redelivery processes them again.
    pub async fn fail_stale_deliveries(&self, older_than: Timestamp) -> Result<u64> {
        Ok(with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE webhook_deliveries
                 SET outcome = 'failed',
                     reason = 'interrupted while finding the changed files: redeliver it'
                 WHERE outcome = 'waiting' AND checks_deadline IS NULL AND received_at < $1",
            )
            .bind(millis(older_than))
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }

    /// Deletes deliveries received before `older_than`; how many.
    pub async fn prune_deliveries(&self, older_than: Timestamp) -> Result<u64> {
        Ok(with_pool!(self, |pool| {
            sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
                .bind(millis(older_than))
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
