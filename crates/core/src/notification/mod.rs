//! Notifications, without I/O: what happened ([`NotificationEvent`] of an [`EventKind`]), where
//! a project wants to hear it (a channel of a [`ChannelKind`], its input rules), how each kind
//! of channel reads it ([`render`]), and when a failed delivery is tried again
//! ([`retry_delay`]). The server's outbox stores one message per channel and event and sends
//! it; the generic webhook is signed like Helvetia's own generic receiver
//! ([`crate::webhook::signature::generic`]), so one Helvetia can receive another's.

pub mod render;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;

use crate::account::Email;
use crate::deployment::{DeploymentCause, DeploymentStatus};
use crate::validation::{FieldErrors, Invalid};

/// The generic webhook's headers besides the signature's
/// ([`crate::webhook::signature::GENERIC_SIGNATURE_HEADER`] and `…_TIMESTAMP_HEADER`): the
/// message's id, the same on every attempt, so a receiver can drop a copy it already took.
pub const DELIVERY_HEADER: &str = "x-helvetia-delivery";
/// The event kind, for receivers that route on a header.
pub const EVENT_HEADER: &str = "x-helvetia-event";

/// How many times a message is tried before it is given up as failed.
pub const MAX_ATTEMPTS: u32 = 5;
/// The default wait before the first retry; each next wait is [`BACKOFF_FACTOR`] times longer
/// (10 s, 40 s, 160 s, 640 s: the last attempt about 14 minutes after the first).
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(10);
pub const BACKOFF_FACTOR: u32 = 4;

/// What a channel's sealed secret is bound to: its project and name, which never change, so a
/// sealed value moved to another channel's row does not open.
pub fn secret_binding(project_id: i64, channel: &str) -> String {
    format!("helvetia-notification:{project_id}:{channel}")
}

/// The wait after `attempts` failed attempts before the next, or `None` when none is left.
pub fn retry_delay(base: Duration, attempts: u32) -> Option<Duration> {
    if attempts == 0 || attempts >= MAX_ATTEMPTS {
        return None;
    }
    Some(base.saturating_mul(BACKOFF_FACTOR.saturating_pow(attempts - 1)))
}

/// What a notification is about. `test` is what "send test" sends; a channel cannot subscribe
/// to it (every channel gets its own tests).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A deployment went live.
    DeploySucceeded,
    /// A deployment failed (the previous one, if any, kept serving).
    DeployFailed,
    /// A pull request's preview deployment went live.
    PreviewReady,
    /// A domain's certificate could not be obtained or renewed.
    CertificateFailing,
    /// A domain's certificate expires soon.
    CertificateExpiring,
    /// A backup did not complete.
    BackupFailed,
    /// A test sent from the API or the CLI.
    Test,
}

impl EventKind {
    /// The kinds a channel may subscribe to.
    pub const SUBSCRIBABLE: [EventKind; 6] = [
        EventKind::DeploySucceeded,
        EventKind::DeployFailed,
        EventKind::PreviewReady,
        EventKind::CertificateFailing,
        EventKind::CertificateExpiring,
        EventKind::BackupFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::DeploySucceeded => "deploy_succeeded",
            EventKind::DeployFailed => "deploy_failed",
            EventKind::PreviewReady => "preview_ready",
            EventKind::CertificateFailing => "certificate_failing",
            EventKind::CertificateExpiring => "certificate_expiring",
            EventKind::BackupFailed => "backup_failed",
            EventKind::Test => "test",
        }
    }

    /// Whether the event is bad news (rendered in red, with a warning sign).
    pub fn is_failure(self) -> bool {
        match self {
            EventKind::DeployFailed
            | EventKind::CertificateFailing
            | EventKind::CertificateExpiring
            | EventKind::BackupFailed => true,
            EventKind::DeploySucceeded | EventKind::PreviewReady | EventKind::Test => false,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        [EventKind::Test]
            .into_iter()
            .chain(EventKind::SUBSCRIBABLE)
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| Invalid::new(format!("`{s}` is not an event kind")))
    }
}

/// The event a deployment that ended as `status` makes, if any: every failure, and the
/// success of a deploy or a rollback (a new version serving) — for a `preview` service,
/// `preview_ready`. A restart, a settings change, a start or a scaling that succeeds is
/// routine and stays quiet; a cancelled or superseded deployment changed nothing.
pub fn deployment_event(
    status: DeploymentStatus,
    cause: DeploymentCause,
    preview: bool,
) -> Option<EventKind> {
    match status {
        DeploymentStatus::Failed => Some(EventKind::DeployFailed),
        DeploymentStatus::Live => match cause {
            DeploymentCause::Deploy | DeploymentCause::Rollback if preview => {
                Some(EventKind::PreviewReady)
            }
            DeploymentCause::Deploy | DeploymentCause::Rollback => Some(EventKind::DeploySucceeded),
            DeploymentCause::Restart
            | DeploymentCause::Settings
            | DeploymentCause::Start
            | DeploymentCause::Scale => None,
        },
        DeploymentStatus::Queued
        | DeploymentStatus::Cloning
        | DeploymentStatus::Building
        | DeploymentStatus::Starting
        | DeploymentStatus::HealthChecking
        | DeploymentStatus::Retired
        | DeploymentStatus::Cancelled
        | DeploymentStatus::Superseded => None,
    }
}

/// Something a project's channels may hear about. Fields that do not apply are `None`; later
/// events add fields as `Option`s, so stored messages stay readable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationEvent {
    pub kind: EventKind,
    pub project: String,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub deployment_id: Option<i64>,
    /// The commit deployed (full SHA).
    #[serde(default)]
    pub commit: Option<String>,
    /// The deployment's final status (`live`, `failed`).
    #[serde(default)]
    pub status: Option<String>,
    /// Why it failed (redacted already), or what a test says.
    #[serde(default)]
    pub reason: Option<String>,
    /// Where it runs: the service's or the preview's URL.
    #[serde(default)]
    pub url: Option<String>,
    /// The pull request a preview is of (`service` then names the service it previews).
    #[serde(default)]
    pub pull_request: Option<u64>,
    /// The domain a certificate event is about.
    #[serde(default)]
    pub domain: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
}

impl NotificationEvent {
    /// An event of `kind` in `project` at `at`, with nothing else said yet.
    pub fn new(kind: EventKind, project: impl Into<String>, at: Timestamp) -> NotificationEvent {
        NotificationEvent {
            kind,
            project: project.into(),
            service: None,
            deployment_id: None,
            commit: None,
            status: None,
            reason: None,
            url: None,
            pull_request: None,
            domain: None,
            at,
        }
    }
}

/// Where a channel delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A Slack-compatible incoming webhook (`{"text": …, "blocks": …}`; Mattermost and
    /// Rocket.Chat read it too).
    Slack,
    /// A Discord-compatible incoming webhook (`{"content": …, "embeds": …}`).
    Discord,
    /// Any HTTP endpoint: a JSON body signed with HMAC-SHA256.
    Webhook,
    /// E-mail over SMTP.
    Email,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Discord => "discord",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Email => "email",
        }
    }
}

impl FromStr for ChannelKind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        [
            ChannelKind::Slack,
            ChannelKind::Discord,
            ChannelKind::Webhook,
            ChannelKind::Email,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == s)
        .ok_or_else(|| Invalid::new(format!("`{s}` is not a channel kind")))
    }
}

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text (a relay on a trusted network only: a password is refused with it).
    None,
    /// Plain text upgraded with STARTTLS, which must succeed (usually port 587).
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Not delivered yet; tried again at its next attempt's time.
    Pending,
    /// A receiver accepted it (HTTP 2xx, or the SMTP server took it): never sent again.
    Delivered,
    /// Every attempt failed, or the channel cannot deliver it (its secret does not open).
    Failed,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Failed => "failed",
        }
    }
}

impl FromStr for MessageStatus {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        [
            MessageStatus::Pending,
            MessageStatus::Delivered,
            MessageStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
        .ok_or_else(|| Invalid::new(format!("`{s}` is not a message status")))
    }
}

/// The longest URL a channel takes.
pub const MAX_URL_LENGTH: usize = 2000;
/// The most recipients an e-mail channel has.
pub const MAX_RECIPIENTS: usize = 20;

/// An incoming-webhook or endpoint URL: `http` or `https`, with a host and no credentials
/// in it (a token belongs in the path, which is sealed whole).
pub fn check_url(raw: &str) -> Result<url::Url, Invalid> {
    if raw.len() > MAX_URL_LENGTH {
        return Err(Invalid::new(format!(
            "must be at most {MAX_URL_LENGTH} characters"
        )));
    }
    let url = url::Url::parse(raw.trim())
        .map_err(|_| Invalid::new("must be an http(s) URL like https://hooks.example.com/…"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Invalid::new("must be an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Invalid::new("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid::new("must not carry a user name or password"));
    }
    Ok(url)
}

/// An incoming-webhook URL as views show it: its origin only, since the path is the token.
pub fn masked_url(url: &url::Url) -> String {
    format!("{}/…", url.origin().ascii_serialization())
}

/// An e-mail channel's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

/// An e-mail channel's settings as given, before they are checked.
pub struct EmailInput<'a> {
    pub host: &'a str,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<&'a str>,
    pub has_password: bool,
    pub from: &'a str,
    pub to: &'a [String],
}

impl EmailSettings {
    /// Checks `input`; errors name the fields (`host`, `port`, `username`, `password`, `from`,
    /// `to`).
    pub fn parse(input: EmailInput<'_>) -> Result<EmailSettings, FieldErrors> {
        let mut errors = FieldErrors::new();
        let host = input.host.trim().to_lowercase();
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !host_ok {
            errors.add("host", Invalid::new("must be a host name or address"));
        }
        if input.port == 0 {
            errors.add("port", Invalid::new("must be a port from 1 to 65535"));
        }
        let username = input.username.map(str::trim).filter(|u| !u.is_empty());
        if username.is_some_and(|u| u.len() > 254 || u.chars().any(char::is_control)) {
            errors.add("username", Invalid::new("must be at most 254 characters"));
        }
        if input.has_password && username.is_none() {
            errors.add("password", Invalid::new("needs a username"));
        }
        if input.has_password && input.tls == SmtpTls::None {
            errors.add(
                "password",
                Invalid::new("is never sent without TLS: choose `starttls` or `tls`"),
            );
        }
        let from = errors.check("from", Email::parse(input.from));
        if input.to.is_empty() || input.to.len() > MAX_RECIPIENTS {
            errors.add(
                "to",
                Invalid::new(format!("must list 1 to {MAX_RECIPIENTS} addresses")),
            );
        }
        let to: Vec<Option<Email>> = input
            .to
            .iter()
            .map(|address| errors.check("to", Email::parse(address)))
            .collect();
        errors.finish(|| {
            Some(EmailSettings {
                host,
                port: input.port,
                tls: input.tls,
                username: username.map(str::to_owned),
                from: from?.as_str().to_owned(),
                to: to
                    .into_iter()
                    .map(|address| address.map(|a| a.as_str().to_owned()))
                    .collect::<Option<_>>()?,
            })
        })
    }

    /// The destination as views show it: no password, which is never shown.
    pub fn describe(&self) -> String {
        let scheme = match self.tls {
            SmtpTls::None => "smtp",
            SmtpTls::Starttls => "smtp+starttls",
            SmtpTls::Tls => "smtps",
        };
        let user = self
            .username
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        format!(
            "{scheme}://{user}{}:{} from {} to {}",
            self.host,
            self.port,
            self.from,
            self.to.join(", ")
        )
    }
}

/// The events a channel subscribes to: at least one, no `test`, each once (sorted).
pub fn check_events(events: &[EventKind]) -> Result<Vec<EventKind>, Invalid> {
    if events.contains(&EventKind::Test) {
        return Err(Invalid::new(
            "`test` is not subscribed to: every channel receives its own tests",
        ));
    }
    let mut events = events.to_vec();
    events.sort();
    events.dedup();
    if events.is_empty() {
        return Err(Invalid::new("must list at least one event kind"));
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn retries_back_off_and_end() {
        let base = Duration::from_secs(10);
        let waits: Vec<_> = (1..=MAX_ATTEMPTS).map(|n| retry_delay(base, n)).collect();
        assert_eq!(
            waits,
            [
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(40)),
                Some(Duration::from_secs(160)),
                Some(Duration::from_secs(640)),
                None
            ]
        );
        assert_eq!(retry_delay(base, 0), None);
    }

    #[test]
    fn deployments_notify_when_they_fail_or_bring_a_new_version() {
        use DeploymentCause::*;
        use DeploymentStatus::{Cancelled, Failed, Live, Superseded};
        assert_eq!(
            deployment_event(Failed, Scale, false),
            Some(EventKind::DeployFailed)
        );
        assert_eq!(
            deployment_event(Failed, Deploy, true),
            Some(EventKind::DeployFailed)
        );
        assert_eq!(
            deployment_event(Live, Rollback, false),
            Some(EventKind::DeploySucceeded)
        );
        assert_eq!(
            deployment_event(Live, Deploy, true),
            Some(EventKind::PreviewReady)
        );
        assert_eq!(deployment_event(Live, Restart, false), None);
        assert_eq!(deployment_event(Cancelled, Deploy, false), None);
        assert_eq!(deployment_event(Superseded, Deploy, true), None);
    }

    #[test]
    fn urls_are_http_with_a_host_and_no_credentials() {
        assert!(check_url("https://hooks.slack.com/services/T0/B0/xyz").is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        for bad in [
            "ftp://example.com/x",
            "https://user:pw@example.com/x",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        let url = check_url("https://discord.com/api/webhooks/1/token").unwrap();
        assert_eq!(masked_url(&url), "https://discord.com/…");
    }

    #[test]
    fn email_settings_are_checked_per_field() {
        let to = vec!["ops@example.com".to_owned(), "Dev@Example.com".to_owned()];
        let settings = EmailSettings::parse(EmailInput {
            host: "SMTP.example.com",
            port: 587,
            tls: SmtpTls::Starttls,
            username: Some("helvetia"),
            has_password: true,
            from: "helvetia@example.com",
            to: &to,
        })
        .unwrap();
        assert_eq!(settings.host, "smtp.example.com");
        assert_eq!(settings.to[1], "dev@example.com");
        assert_eq!(
            settings.describe(),
            "smtp+starttls://helvetia@smtp.example.com:587 from helvetia@example.com to \
             ops@example.com, dev@example.com"
        );
        let errors = EmailSettings::parse(EmailInput {
            host: "bad host",
            port: 0,
            tls: SmtpTls::None,
            username: None,
            has_password: true,
            from: "nobody",
            to: &[],
        })
        .unwrap_err();
        let fields: Vec<_> = errors.fields().keys().map(String::as_str).collect();
        assert_eq!(fields, ["from", "host", "password", "port", "to"]);
    }

    #[test]
    fn subscriptions_exclude_tests_and_repeat_nothing() {
        assert_eq!(
            check_events(&[
                EventKind::DeployFailed,
                EventKind::DeploySucceeded,
                EventKind::DeployFailed
            ])
            .unwrap(),
            [EventKind::DeploySucceeded, EventKind::DeployFailed]
        );
        assert!(check_events(&[]).is_err());
        assert!(check_events(&[EventKind::Test]).is_err());
        for kind in EventKind::SUBSCRIBABLE {
            assert_eq!(kind.as_str().parse::<EventKind>().unwrap(), kind);
        }
    }
}
