//! The outbox: one message per channel and event, its attempts, and what is due next.

use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Actor;
use helvetia_core::notification::{MessageStatus, NotificationEvent};
use helvetia_core::project::Project;
use jiff::Timestamp;

use super::{Channel, ChannelRow, channel_target};
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

/// The columns a [`MessageRow`] reads.
macro_rules! message_columns {
    () => {
        "id, channel_id, event, delivery_id, status, attempts, next_attempt_at, created_at, \
         finished_at"
    };
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

fn event_json(event: &NotificationEvent) -> Result<String> {
    serde_json::to_string(event).map_err(|e| StoreError::corrupt("notification event", e))
}

impl Store {
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
