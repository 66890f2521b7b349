//! A project's notification channels — Slack- and Discord-compatible incoming webhooks, a
//! generic JSON webhook signed with HMAC-SHA256, e-mail over SMTP — and their messages. Their
//! secrets (a Slack or Discord URL, the signing secret, an SMTP password) are sealed by the
//! vault; the signing secret is shown once, when the channel is made. A channel's host is
//! checked against the outbound policy here (a refused address is invalid input) and again
//! at every attempt. Sending is `crate::notifications`, which the deploy job also calls.

use helvetia_api_types::{
    AttemptView, ChannelView, CreateChannel, CreatedChannel, MessageView, SmtpInput, TestQueued,
    UpdateChannel,
};
use helvetia_core::auth::{Caller, Scope};
use helvetia_core::name::ChannelName;
use helvetia_core::notification::{
    ChannelKind, EmailInput, EmailSettings, EventKind, NotificationEvent, SmtpTls, check_events,
    check_url, masked_url, secret_binding,
};
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_engine::outbound::OutboundError;
use helvetia_store::notifications::{Attempt, Channel, ChannelConfig, Message};
use jiff::Timestamp;

use super::access::{self, OwnedProject};
use super::tokens::random_secret;
use super::{App, Result};
use crate::notifications::{WebhookSettings, delivery_id};

fn view(channel: Channel) -> ChannelView {
    ChannelView {
        name: channel.name,
        kind: channel.kind,
        events: channel.events,
        enabled: channel.enabled,
        destination: channel.destination,
        created_at: channel.created_at,
        updated_at: channel.updated_at,
    }
}

fn message_view((message, attempts): (Message, Vec<Attempt>)) -> MessageView {
    MessageView {
        id: message.id,
        event: message.event,
        delivery_id: message.delivery_id,
        status: message.status,
        attempts: attempts
            .into_iter()
            .map(|attempt| AttemptView {
                at: attempt.at,
                ok: attempt.ok,
                http_status: attempt.http_status,
                error: attempt.error,
            })
            .collect(),
        next_attempt_at: message.next_attempt_at,
        created_at: message.created_at,
        finished_at: message.finished_at,
    }
}

fn channel_name(raw: &str) -> Result<ChannelName> {
    Ok(ChannelName::parse(raw).map_err(|e| FieldErrors::single("channel", e))?)
}

/// Where a channel delivers, checked: its settings, its secret in the clear (sealed by the
/// caller) and what views show.
struct Destination {
    settings: String,
    secret: Option<String>,
    destination: String,
}

/// Refuses a host the outbound policy refuses (a literal address it does not allow, a name
/// resolving to one); a name that does not resolve now is accepted, and its attempts will
/// say so.
async fn check_reachable(app: &App, field: &str, host: &str, port: u16) -> Result<()> {
    match app.platform.outbound.resolve(host, port).await {
        Ok(_) | Err(OutboundError::Unresolved { .. } | OutboundError::Resolver(_)) => Ok(()),
        Err(error) => Err(FieldErrors::single(field, Invalid::new(error.to_string())).into()),
    }
}

async fn web_destination(app: &App, kind: ChannelKind, raw: &str) -> Result<Destination> {
    let url = check_url(raw).map_err(|e| FieldErrors::single("url", e))?;
    let host = url.host_str().unwrap_or_default();
    check_reachable(app, "url", host, url.port_or_known_default().unwrap_or(443)).await?;
    Ok(match kind {
        ChannelKind::Webhook => Destination {
            settings: serde_json::to_string(&WebhookSettings {
                url: url.to_string(),
            })
            .unwrap_or_default(),
            secret: None,
            destination: url.to_string(),
        },
        ChannelKind::Slack | ChannelKind::Discord | ChannelKind::Email => Destination {
            settings: "{}".into(),
            destination: masked_url(&url),
            secret: Some(url.to_string()),
        },
    })
}

async fn email_destination(app: &App, smtp: &SmtpInput) -> Result<Destination> {
    let settings = EmailSettings::parse(EmailInput {
        host: &smtp.host,
        port: smtp.port,
        tls: smtp.tls,
        username: smtp.username.as_deref(),
        has_password: smtp.password.is_some(),
        from: &smtp.from,
        to: &smtp.to,
    })?;
    check_reachable(app, "smtp.host", &settings.host, settings.port).await?;
    Ok(Destination {
        destination: settings.describe(),
        settings: serde_json::to_string(&settings).unwrap_or_default(),
        secret: smtp.password.clone(),
    })
}

/// The destination `url` or `smtp` give a channel of `kind`; `None` when neither is given.
async fn destination(
    app: &App,
    kind: ChannelKind,
    url: Option<&str>,
    smtp: Option<&SmtpInput>,
) -> Result<Option<Destination>> {
    let misplaced = |field: &str, why: &str| -> super::UseCaseError {
        FieldErrors::single(field, Invalid::new(why.to_owned())).into()
    };
    match (kind, url, smtp) {
        (_, None, None) => Ok(None),
        (ChannelKind::Email, Some(_), _) => Err(misplaced(
            "url",
            "an e-mail channel takes `smtp`, not `url`",
        )),
        (ChannelKind::Email, None, Some(smtp)) => Ok(Some(email_destination(app, smtp).await?)),
        (_, _, Some(_)) => Err(misplaced("smtp", "only an e-mail channel takes `smtp`")),
        (_, Some(url), None) => Ok(Some(web_destination(app, kind, url).await?)),
    }
}

/// The project's channels, by name.
pub async fn list(app: &App, caller: &Caller, project: &str) -> Result<Vec<ChannelView>> {
    let owned = access::project(app, caller, project).await?;
    owned.act(Scope::Read)?;
    let channels = app.store.channels(owned.project.id).await?;
    Ok(channels.into_iter().map(view).collect())
}

async fn owned_channel(
    app: &App,
    caller: &Caller,
    project: &str,
    channel: &str,
) -> Result<(OwnedProject, Channel)> {
    let name = channel_name(channel)?;
    let owned = access::project(app, caller, project).await?;
    let channel = app.store.channel(&owned.project, name.as_str()).await?;
    Ok((owned, channel))
}

pub async fn get(app: &App, caller: &Caller, project: &str, channel: &str) -> Result<ChannelView> {
    let (owned, channel) = owned_channel(app, caller, project, channel).await?;
    owned.act(Scope::Read)?;
    Ok(view(channel))
}

/// Adds a channel; a generic webhook's signing secret is in this answer only.
pub async fn create(
    app: &App,
    caller: &Caller,
    project: &str,
    input: CreateChannel,
) -> Result<CreatedChannel> {
    let owned = access::project(app, caller, project).await?;
    let actor = owned.act(Scope::Write)?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", ChannelName::parse(&input.name));
    let events = errors.check("events", check_events(&input.events));
    let (name, events) = errors.finish(|| Some((name?, events?)))?;
    let Some(mut destination) =
        destination(app, input.kind, input.url.as_deref(), input.smtp.as_ref()).await?
    else {
        let (field, what) = match input.kind {
            ChannelKind::Email => ("smtp", "an e-mail channel needs `smtp`"),
            ChannelKind::Slack | ChannelKind::Discord | ChannelKind::Webhook => {
                ("url", "this channel needs a `url`")
            }
        };
        return Err(FieldErrors::single(field, Invalid::new(what)).into());
    };
    let signing_secret = (input.kind == ChannelKind::Webhook).then(random_secret);
    if signing_secret.is_some() {
        destination.secret = signing_secret.clone();
    }
    let binding = secret_binding(owned.project.id, name.as_str());
    let config = ChannelConfig {
        events,
        enabled: true,
        settings: destination.settings,
        sealed_secret: destination
            .secret
            .map(|secret| app.platform.vault.seal(&binding, &secret)),
        destination: destination.destination,
    };
    let channel = app
        .store
        .add_channel(actor, &owned.project, name.as_str(), input.kind, &config)
        .await?;
    Ok(CreatedChannel {
        channel: view(channel),
        signing_secret,
    })
}

/// Changes what the input names.
pub async fn update(
    app: &App,
    caller: &Caller,
    project: &str,
    channel: &str,
    input: UpdateChannel,
) -> Result<ChannelView> {
    let (owned, channel) = owned_channel(app, caller, project, channel).await?;
    let actor = owned.act(Scope::Write)?;
    let mut config = ChannelConfig {
        events: channel.events.clone(),
        enabled: input.enabled.unwrap_or(channel.enabled),
        settings: channel.settings.clone(),
        sealed_secret: channel.sealed_secret.clone(),
        destination: channel.destination.clone(),
    };
    if let Some(events) = &input.events {
        config.events = check_events(events).map_err(|e| FieldErrors::single("events", e))?;
    }
    let changed = destination(app, channel.kind, input.url.as_deref(), input.smtp.as_ref()).await?;
    if let Some(destination) = changed {
        let binding = secret_binding(owned.project.id, &channel.name);
        config.settings = destination.settings;
        config.destination = destination.destination;
        match (channel.kind, destination.secret) {
            // A webhook keeps its signing secret; an SMTP password given again replaces it.
            (ChannelKind::Webhook, _) => {}
            (ChannelKind::Email, None) => {
                let still_signed_in = input
                    .smtp
                    .as_ref()
                    .is_some_and(|s| s.username.is_some() && s.tls != SmtpTls::None);
                if !still_signed_in {
                    config.sealed_secret = None;
                }
            }
            (_, secret) => {
                config.sealed_secret =
                    secret.map(|secret| app.platform.vault.seal(&binding, &secret));
            }
        }
    }
    let updated = app
        .store
        .update_channel(actor, &owned.project, &channel.name, &config)
        .await?;
    Ok(view(updated))
}

/// Removes a channel and its messages.
pub async fn remove(app: &App, caller: &Caller, project: &str, channel: &str) -> Result<()> {
    let (owned, channel) = owned_channel(app, caller, project, channel).await?;
    let actor = owned.act(Scope::Write)?;
    Ok(app
        .store
        .remove_channel(actor, &owned.project, &channel.name)
        .await?)
}

/// Queues a test message for the channel (enabled or not) and wakes the sender.
pub async fn test(app: &App, caller: &Caller, project: &str, channel: &str) -> Result<TestQueued> {
    let (owned, channel) = owned_channel(app, caller, project, channel).await?;
    let actor = owned.act(Scope::Write)?;
    let mut event = NotificationEvent::new(
        EventKind::Test,
        owned.project.name.as_str(),
        Timestamp::now(),
    );
    event.reason = Some(format!(
        "sent by {} to check the channel `{}`",
        actor.label, channel.name
    ));
    let message_id = app
        .store
        .enqueue_test(actor, &owned.project, &channel, &event, &delivery_id())
        .await?;
    app.platform.notifications_due.notify_one();
    Ok(TestQueued { message_id })
}

/// The channel's messages, newest first, each with its attempts: at most `limit` (default
/// 20, at most 200), older than message `before` when given.
pub async fn messages(
    app: &App,
    caller: &Caller,
    project: &str,
    channel: &str,
    before: Option<i64>,
    limit: Option<i64>,
) -> Result<Vec<MessageView>> {
    let (owned, channel) = owned_channel(app, caller, project, channel).await?;
    owned.act(Scope::Read)?;
    let limit = limit.unwrap_or(20).clamp(1, 200);
    let messages = app
        .store
        .channel_messages(channel.id, before, limit)
        .await?;
    Ok(messages.into_iter().map(message_view).collect())
}
