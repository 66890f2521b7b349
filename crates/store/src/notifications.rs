//! Notifications: a project's channels and the outbox of messages to them, with every
//! attempt. The server seals a channel's secret before it reaches here and interprets its
//! settings (JSON); the store keeps them, picks the channels an event reaches, hands the
//! notifier what is due and records each attempt with the message's next state in one
//! transaction.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Actor;
use helvetia_core::notification::{ChannelKind, EventKind, MessageStatus, NotificationEvent};
use helvetia_core::project::Project;
use jiff::Timestamp;

use crate::audit::audit;
use crate::{
    Result, Store, StoreError, WritePool, millis, now_millis, opt_timestamp, timestamp, with_pool,
};

/// Inserts a pending message due now and answers its id, inside the transaction `$tx`.
macro_rules! insert_message {
    ($tx:expr, $channel:expr, $kind:expr, $event:expr, $delivery:expr, $now:expr) => {{
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO notification_messages (channel_id, kind, event, delivery_id, status,
                 next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, 'pending', $5, $5) RETURNING id",
        )
        .bind($channel)
        .bind($kind.as_str())
        .bind($event)
        .bind($delivery)
        .bind($now)
        .fetch_one(&mut *$tx)
        .await?;
        id
    }};
}

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

/// A message in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub channel_id: i64,
    pub event: NotificationEvent,
    pub delivery_id: String,
    pub status: MessageStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// One attempt at a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: Timestamp,
    pub ok: bool,
    pub http_status: Option<u16>,
    /// What went wrong, redacted by the server.
    pub error: Option<String>,
}

/// What an attempt leaves a message as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    RetryAt(Timestamp),
    Failed,
}

#[derive(sqlx::FromRow)]
struct ChannelRow {
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

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: i64,
    channel_id: i64,
    event: String,
    delivery_id: String,
    status: String,
    attempts: i32,
    next_attempt_at: Option<i64>,
    created_at: i64,
    finished_at: Option<i64>,
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;
    fn try_from(row: MessageRow) -> Result<Message> {
        Ok(Message {
            id: row.id,
            channel_id: row.channel_id,
            event: serde_json::from_str(&row.event)
                .map_err(|e| StoreError::corrupt("notification event", e))?,
            delivery_id: row.delivery_id,
            status: row
                .status
                .parse()
                .map_err(|e| StoreError::corrupt("message status", e))?,
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            next_attempt_at: opt_timestamp(row.next_attempt_at)?,
            created_at: timestamp(row.created_at)?,
            finished_at: opt_timestamp(row.finished_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    message_id: i64,
    at: i64,
    ok: bool,
    http_status: Option<i32>,
    error: Option<String>,
}

/// The columns a [`ChannelRow`] reads.
macro_rules! channel_columns {
    () => {
        "id, project_id, name, kind, events, enabled, settings, secret, destination, \
         created_at, updated_at"
    };
}

/// The columns a [`MessageRow`] reads.
macro_rules! message_columns {
    () => {
        "id, channel_id, event, delivery_id, status, attempts, next_attempt_at, created_at, \
         finished_at"
    };
}

/// How the audit log names a channel.
fn channel_target(project: &Project, name: &str) -> String {
    format!("{} notification:{name}", project.name)
}

fn events_json(events: &[EventKind]) -> Result<String> {
    let kinds: Vec<&str> = events.iter().map(|kind| kind.as_str()).collect();
    serde_json::to_string(&kinds).map_err(|e| StoreError::corrupt("notification events", e))
}

fn event_json(event: &NotificationEvent) -> Result<String> {
    serde_json::to_string(event).map_err(|e| StoreError::corrupt("notification event", e))
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

    /// Queues `event` for every enabled channel of project `project_id` subscribed to its
    /// kind, each message with the delivery id `delivery_id` makes for it; answers how many.
    pub async fn enqueue_notifications(
        &self,
        project_id: i64,
        event: &NotificationEvent,
        mut delivery_id: impl FnMut() -> String,
    ) -> Result<usize> {
        let channels = self.channels(project_id).await?;
        let reached: Vec<i64> = channels
            .iter()
            .filter(|channel| channel.enabled && channel.events.contains(&event.kind))
            .map(|channel| channel.id)
            .collect();
        if reached.is_empty() {
            return Ok(0);
        }
        let json = event_json(event)?;
        let now = now_millis();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            for channel in &reached {
                insert_message!(tx, *channel, event.kind, &json, delivery_id(), now);
            }
            tx.commit().await?;
        });
        Ok(reached.len())
    }

    /// Queues a test message `event` for `channel` (enabled or not), audited; answers its id.
    pub async fn enqueue_test(
        &self,
        actor: &Actor,
        project: &Project,
        channel: &Channel,
        event: &NotificationEvent,
        delivery_id: &str,
    ) -> Result<i64> {
        let json = event_json(event)?;
        let now = now_millis();
        let id = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let id: i64 = insert_message!(tx, channel.id, event.kind, &json, delivery_id, now);
            audit!(
                tx,
                actor,
                AuditAction::NotificationTest,
                channel_target(project, &channel.name)
            );
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// Pending messages due at `now` (at most `limit`, the oldest first), with their channels.
    pub async fn due_notifications(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<(Message, Channel)>> {
        let rows: Vec<MessageRow> = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                message_columns!(),
                " FROM notification_messages
                 WHERE status = 'pending' AND next_attempt_at <= $1
                 ORDER BY next_attempt_at, id LIMIT $2"
            ))
            .bind(millis(now))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        let mut due = Vec::with_capacity(rows.len());
        for row in rows {
            let message = Message::try_from(row)?;
            let channel: ChannelRow = with_pool!(self, |pool| {
                sqlx::query_as(concat!(
                    "SELECT ",
                    channel_columns!(),
                    " FROM notification_channels WHERE id = $1"
                ))
                .bind(message.channel_id)
                .fetch_one(pool)
                .await?
            });
            due.push((message, channel.try_into()?));
        }
        Ok(due)
    }

    /// When the next pending message is due, if any is.
    pub async fn next_notification_due(&self) -> Result<Option<Timestamp>> {
        let next: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM notification_messages WHERE status = 'pending'",
            )
            .fetch_one(pool)
            .await?
        });
        opt_timestamp(next)
    }

    /// Records `attempt` at pending message `message_id` and what it leaves the message as.
    pub async fn record_attempt(
        &self,
        message_id: i64,
        attempt: &Attempt,
        after: AfterAttempt,
    ) -> Result<()> {
        let (status, next, finished) = match after {
            AfterAttempt::Delivered => (MessageStatus::Delivered, None, Some(millis(attempt.at))),
            AfterAttempt::RetryAt(at) => (MessageStatus::Pending, Some(millis(at)), None),
            AfterAttempt::Failed => (MessageStatus::Failed, None, Some(millis(attempt.at))),
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE notification_messages
                 SET status = $2, next_attempt_at = $3, finished_at = $4, attempts = attempts + 1
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(message_id)
            .bind(status.as_str())
            .bind(next)
            .bind(finished)
            .execute(&mut *tx)
            .await?;
            // The channel (and so the message) was removed while it was being sent.
            if updated.rows_affected() == 0 {
                return Ok(());
            }
            sqlx::query(
                "INSERT INTO notification_attempts (message_id, at, ok, http_status, error)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(message_id)
            .bind(millis(attempt.at))
            .bind(attempt.ok)
            .bind(attempt.http_status.map(i32::from))
            .bind(&attempt.error)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes messages that ended (delivered or failed) before `before`, with their
    /// attempts; answers how many.
    pub async fn prune_notifications(&self, before: Timestamp) -> Result<u64> {
        let removed = with_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM notification_messages
                 WHERE status <> 'pending' AND finished_at < $1",
            )
            .bind(millis(before))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(removed)
    }

    /// Messages of channel `channel_id`, newest first (older than message `before` when
    /// given, at most `limit`), each with its attempts, oldest first.
    pub async fn channel_messages(
        &self,
        channel_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(Message, Vec<Attempt>)>> {
        let rows: Vec<MessageRow> = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                message_columns!(),
                " FROM notification_messages
                 WHERE channel_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
            ))
            .bind(channel_id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        let messages: Vec<Message> = rows
            .into_iter()
            .map(Message::try_from)
            .collect::<Result<_>>()?;
        let (Some(newest), Some(oldest)) = (messages.first(), messages.last()) else {
            return Ok(vec![]);
        };
        let attempts: Vec<AttemptRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT a.message_id, a.at, a.ok, a.http_status, a.error
                 FROM notification_attempts a JOIN notification_messages m ON m.id = a.message_id
                 WHERE m.channel_id = $1 AND a.message_id BETWEEN $2 AND $3 ORDER BY a.id",
            )
            .bind(channel_id)
            .bind(oldest.id)
            .bind(newest.id)
            .fetch_all(pool)
            .await?
        });
        let mut by_message: std::collections::HashMap<i64, Vec<Attempt>> = Default::default();
        for row in attempts {
            by_message.entry(row.message_id).or_default().push(Attempt {
                at: timestamp(row.at)?,
                ok: row.ok,
                http_status: row.http_status.and_then(|s| u16::try_from(s).ok()),
                error: row.error,
            });
        }
        Ok(messages
            .into_iter()
            .map(|message| {
                let attempts = by_message.remove(&message.id).unwrap_or_default();
                (message, attempts)
            })
            .collect())
    }
}
