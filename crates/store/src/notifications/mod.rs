//! Notifications: a project's channels and the outbox of messages to them, with every
//! attempt (`outbox.rs`). The server seals a channel's secret before it reaches here and
//! interprets its settings (JSON); the store keeps them, picks the channels an event reaches,
//! hands the notifier what is due and records each attempt with the message's next state in
//! one transaction.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Actor;
use helvetia_core::notification::{ChannelKind, EventKind};
use helvetia_core::project::Project;
use jiff::Timestamp;

use crate::audit::audit;
use crate::{Result, Store, StoreError, WritePool, now_millis, timestamp, with_pool};

/// The columns a [`ChannelRow`] reads.
macro_rules! channel_columns {
    () => {
        "id, project_id, name, kind, events, enabled, settings, secret, destination, \
         created_at, updated_at"
    };
}

mod outbox;

pub use outbox::{AfterAttempt, Attempt, Message};

/// A project's notification channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub events: Vec<EventKind>,
    pub enabled: bool,
    /// The non-secret settings, as JSON the server reads.
    pub settings: String,
    /// The secret, sealed by the vault (a Slack or Discord URL, a signing secret, a password).
    pub sealed_secret: Option<String>,
    /// What views show of where it delivers (masked).
    pub destination: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A channel to add, or what replaces a channel's configuration.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub events: Vec<EventKind>,
    pub enabled: bool,
    pub settings: String,
    pub sealed_secret: Option<String>,
    pub destination: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct ChannelRow {
    id: i64,
    project_id: i64,
    name: String,
    kind: String,
    events: String,
    enabled: bool,
    settings: String,
    secret: Option<String>,
    destination: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ChannelRow> for Channel {
    type Error = StoreError;
    fn try_from(row: ChannelRow) -> Result<Channel> {
        let kinds: Vec<String> = serde_json::from_str(&row.events)
            .map_err(|e| StoreError::corrupt("notification events", e))?;
        Ok(Channel {
            id: row.id,
            project_id: row.project_id,
            name: row.name,
            kind: row
                .kind
                .parse()
                .map_err(|e| StoreError::corrupt("channel kind", e))?,
            events: kinds
                .iter()
                .map(|kind| kind.parse())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| StoreError::corrupt("notification events", e))?,
            enabled: row.enabled,
            settings: row.settings,
            sealed_secret: row.secret,
            destination: row.destination,
            created_at: timestamp(row.created_at)?,
            updated_at: timestamp(row.updated_at)?,
        })
    }
}

/// How the audit log names a channel.
pub(super) fn channel_target(project: &Project, name: &str) -> String {
    format!("{} notification:{name}", project.name)
}

fn events_json(events: &[EventKind]) -> Result<String> {
    let kinds: Vec<&str> = events.iter().map(|kind| kind.as_str()).collect();
    serde_json::to_string(&kinds).map_err(|e| StoreError::corrupt("notification events", e))
}

impl Store {
    /// Adds channel `name` to `project` (a conflict if the project has one of that name).
    pub async fn add_channel(
        &self,
        actor: &Actor,
        project: &Project,
        name: &str,
        kind: ChannelKind,
        config: &ChannelConfig,
    ) -> Result<Channel> {
        let now = now_millis();
        let events = events_json(&config.events)?;
        let row: ChannelRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: Option<ChannelRow> = sqlx::query_as(concat!(
                "INSERT INTO notification_channels (project_id, name, kind, events, enabled,
                     settings, secret, destination, created_at, updated_at)
                 SELECT p.id, $2, $3, $4, $5, $6, $7, $8, $9, $9 FROM projects p
                 WHERE p.id = $1 AND p.team_id = $10
                 RETURNING ",
                channel_columns!()
            ))
            .bind(project.id)
            .bind(name)
            .bind(kind.as_str())
            .bind(&events)
            .bind(config.enabled)
            .bind(&config.settings)
            .bind(&config.sealed_secret)
            .bind(&config.destination)
            .bind(now)
            .bind(actor.team.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::unique(format!(
                "project `{}` already has a channel `{name}`",
                project.name
            )))?;
            let row =
                row.ok_or_else(|| StoreError::NotFound(format!("project `{}`", project.name)))?;
            audit!(
                tx,
                actor,
                AuditAction::NotificationChannelAdd,
                format!("{} {}", channel_target(project, name), kind.as_str())
            );
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// The channels of project `project_id`, by name.
    pub async fn channels(&self, project_id: i64) -> Result<Vec<Channel>> {
        let rows: Vec<ChannelRow> = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                channel_columns!(),
                " FROM notification_channels WHERE project_id = $1
                 ORDER BY name"
            ))
            .bind(project_id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Channel::try_from).collect()
    }

    /// Every channel with a sealed secret, for master key rotation.
    pub async fn sealed_channels(&self) -> Result<Vec<Channel>> {
        let rows: Vec<ChannelRow> = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                channel_columns!(),
                " FROM notification_channels WHERE secret IS NOT NULL ORDER BY id"
            ))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Channel::try_from).collect()
    }

    /// Channel `name` of `project`.
    pub async fn channel(&self, project: &Project, name: &str) -> Result<Channel> {
        let row: Option<ChannelRow> = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                channel_columns!(),
                " FROM notification_channels
                 WHERE project_id = $1 AND name = $2"
            ))
            .bind(project.id)
            .bind(name)
            .fetch_optional(pool)
            .await?
        });
        row.ok_or_else(|| {
            StoreError::NotFound(format!("channel `{name}` of project `{}`", project.name))
        })?
        .try_into()
    }

    /// Replaces channel `name`'s configuration.
    pub async fn update_channel(
        &self,
        actor: &Actor,
        project: &Project,
        name: &str,
        config: &ChannelConfig,
    ) -> Result<Channel> {
        let events = events_json(&config.events)?;
        let row: ChannelRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: Option<ChannelRow> = sqlx::query_as(concat!(
                "UPDATE notification_channels
                 SET events = $3, enabled = $4, settings = $5, secret = $6, destination = $7,
                     updated_at = $8
                 WHERE project_id = $1 AND name = $2 AND project_id IN (
                     SELECT id FROM projects WHERE team_id = $9)
                 RETURNING ",
                channel_columns!()
            ))
            .bind(project.id)
            .bind(name)
            .bind(&events)
            .bind(config.enabled)
            .bind(&config.settings)
            .bind(&config.sealed_secret)
            .bind(&config.destination)
            .bind(now_millis())
            .bind(actor.team.0)
            .fetch_optional(&mut *tx)
            .await?;
            let row = row.ok_or_else(|| {
                StoreError::NotFound(format!("channel `{name}` of project `{}`", project.name))
            })?;
            audit!(
                tx,
                actor,
                AuditAction::NotificationChannelUpdate,
                channel_target(project, name)
            );
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// Removes channel `name` of `project` with its messages.
    pub async fn remove_channel(&self, actor: &Actor, project: &Project, name: &str) -> Result<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let removed: Option<i64> = sqlx::query_scalar(
                "DELETE FROM notification_channels
                 WHERE project_id = $1 AND name = $2 AND project_id IN (
                     SELECT id FROM projects WHERE team_id = $3)
                 RETURNING id",
            )
            .bind(project.id)
            .bind(name)
            .bind(actor.team.0)
            .fetch_optional(&mut *tx)
            .await?;
            if removed.is_none() {
                return Err(StoreError::NotFound(format!(
                    "channel `{name}` of project `{}`",
                    project.name
                )));
            }
            audit!(
                tx,
                actor,
                AuditAction::NotificationChannelRemove,
                channel_target(project, name)
            );
            tx.commit().await?;
        });
        Ok(())
    }
}
