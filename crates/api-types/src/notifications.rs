//! Bodies of a project's notifications (`…/projects/{project}/notifications`): its channels,
//! the generic webhook's signing secret (shown once, when the channel is made), and each
//! channel's messages with every attempt.

use helvetia_core::notification::{
    ChannelKind, EventKind, MessageStatus, NotificationEvent, SmtpTls,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A channel to add.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// The channel's name, unique in the project: a DNS label.
    #[schema(max_length = 63, pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")]
    pub name: String,
    pub kind: ChannelKind,
    /// What it hears about (at least one; `test` is not subscribed to).
    #[schema(min_items = 1, max_items = 6)]
    pub events: Vec<EventKind>,
    /// `slack`, `discord`, `webhook`: where to post (`http` or `https`). A Slack or Discord
    /// URL is a secret: sealed, never shown again (views show its origin).
    #[schema(max_length = 2000, pattern = r"^https?://[^\s\x00-\x1f\x7f-\x9f]+$")]
    pub url: Option<String>,
    /// `email`: the SMTP server and the addresses.
    pub smtp: Option<SmtpInput>,
}

/// An e-mail channel's SMTP server and addresses.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpInput {
    /// The server's host name (or address, if the server's outbound policy allows it).
    #[schema(max_length = 253)]
    pub host: String,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    /// Sealed, never shown again; needs `username` and TLS. On a change, absent keeps the
    /// current one.
    pub password: Option<String>,
    #[schema(max_length = 254)]
    pub from: String,
    #[schema(min_items = 1, max_items = 20)]
    pub to: Vec<String>,
}

impl std::fmt::Debug for SmtpInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpInput")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// Changes to a channel; absent fields stay as they are. `url` or `smtp` replaces where it
/// delivers (of its own kind); a webhook keeps its signing secret.
#[derive(Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    #[schema(min_items = 1, max_items = 6)]
    pub events: Option<Vec<EventKind>>,
    /// A disabled channel receives nothing but tests.
    pub enabled: Option<bool>,
    #[schema(max_length = 2000, pattern = r"^https?://[^\s\x00-\x1f\x7f-\x9f]+$")]
    pub url: Option<String>,
    pub smtp: Option<SmtpInput>,
}

/// A channel, without its secrets.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelView {
    pub name: String,
    pub kind: ChannelKind,
    pub events: Vec<EventKind>,
    pub enabled: bool,
    /// Where it delivers: a generic webhook's URL, a Slack or Discord URL's origin only
    /// (`https://hooks.slack.com/…`), an SMTP server and the addresses.
    pub destination: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A channel just made.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedChannel {
    pub channel: ChannelView,
    /// A generic webhook's signing secret, shown this once (`null` for other kinds): the
    /// receiver checks `X-Helvetia-Signature-256` with it.
    pub signing_secret: Option<String>,
}

impl std::fmt::Debug for CreatedChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedChannel")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// A message to a channel and every attempt at it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: i64,
    pub event: NotificationEvent,
    /// The same on every attempt (the generic webhook's `X-Helvetia-Delivery`).
    pub delivery_id: String,
    pub status: MessageStatus,
    /// Oldest first.
    pub attempts: Vec<AttemptView>,
    /// When it is tried again, while pending.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
}

/// One attempt at a message.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptView {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The receiver accepted it.
    pub ok: bool,
    /// The receiver's HTTP status, if it answered one.
    pub http_status: Option<u16>,
    /// What went wrong (redacted).
    pub error: Option<String>,
}

/// A test message queued for a channel.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestQueued {
    /// The message's id in `…/messages`.
    pub message_id: i64,
}
