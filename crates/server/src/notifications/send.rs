//! One attempt at one message: the channel's secret opened, the event rendered for its kind
//! and sent — an HTTP `POST` through [`Outbound::http_client`] (redirects off, pinned to the
//! addresses the policy allowed), or an e-mail over SMTP (lettre) to an address
//! [`Outbound::resolve`] allowed. Whatever goes wrong becomes the attempt's error text,
//! redacted: a Slack or Discord URL's path is its token, and an HTTP client's error names the
//! URL.
//!
//! [`Outbound::http_client`]: helvetia_engine::outbound::Outbound::http_client
//! [`Outbound::resolve`]: helvetia_engine::outbound::Outbound::resolve

use std::time::Duration;

use helvetia_core::notification::{
    ChannelKind, DELIVERY_HEADER, EVENT_HEADER, EmailSettings, NotificationEvent, SmtpTls, render,
    secret_binding,
};
use helvetia_core::redact::Redactor;
use helvetia_core::webhook::signature::{
    GENERIC_SIGNATURE_HEADER, GENERIC_TIMESTAMP_HEADER, generic,
};
use helvetia_store::notifications::{Channel, Message};
use jiff::Timestamp;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::platform::Platform;

/// How long one HTTP attempt may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one SMTP conversation may take, connection included.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a refusing receiver's answer the attempt log keeps.
const ANSWER_EXCERPT: usize = 200;

/// A generic webhook's settings (its signing secret is sealed apart).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WebhookSettings {
    pub url: String,
}

/// What an attempt came to.
pub(super) struct Outcome {
    pub ok: bool,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    /// Trying again cannot help (the secret does not open, the settings do not read).
    pub permanent: bool,
}

impl Outcome {
    fn delivered(http_status: Option<u16>) -> Outcome {
        Outcome {
            ok: true,
            http_status,
            error: None,
            permanent: false,
        }
    }

    fn failed(http_status: Option<u16>, error: String) -> Outcome {
        Outcome {
            ok: false,
            http_status,
            error: Some(error),
            permanent: false,
        }
    }

    fn permanent(error: &str) -> Outcome {
        Outcome {
            permanent: true,
            ..Outcome::failed(None, error.to_owned())
        }
    }
}

/// Sends `message` to `channel` once.
pub(super) async fn deliver(platform: &Platform, message: &Message, channel: &Channel) -> Outcome {
    let secret = match &channel.sealed_secret {
        Some(sealed) => match platform
            .vault
            .open(&secret_binding(channel.project_id, &channel.name), sealed)
        {
            Ok(secret) => Some(secret),
            Err(_) => {
                return Outcome::permanent(
                    "the channel's secret does not open with this server's master key: set \
                     the channel's URL or password again",
                );
            }
        },
        None => None,
    };
    let redactor = match &secret {
        Some(secret) => platform.server_redactor().with(secret),
        None => platform.server_redactor(),
    };
    let event = &message.event;
    let mut outcome = match (channel.kind, secret) {
        (ChannelKind::Slack, Some(url)) => {
            post(platform, &url, &render::slack(event), &[], &redactor).await
        }
        (ChannelKind::Discord, Some(url)) => {
            post(platform, &url, &render::discord(event), &[], &redactor).await
        }
        (ChannelKind::Webhook, Some(signing_secret)) => {
            match serde_json::from_str::<WebhookSettings>(&channel.settings) {
                Ok(settings) => {
                    let body = render::generic(event, &message.delivery_id);
                    let sent_at = Timestamp::now().as_second();
                    let bytes = serde_json::to_vec(&body).unwrap_or_default();
                    let signature = generic(signing_secret.as_bytes(), sent_at, &bytes);
                    let headers = [
                        (GENERIC_TIMESTAMP_HEADER, sent_at.to_string()),
                        (GENERIC_SIGNATURE_HEADER, signature),
                        (DELIVERY_HEADER, message.delivery_id.clone()),
                        (EVENT_HEADER, event.kind.as_str().to_owned()),
                    ];
                    post_bytes(platform, &settings.url, bytes, &headers, &redactor).await
                }
                Err(_) => Outcome::permanent("the channel's settings do not read"),
            }
        }
        (ChannelKind::Email, password) => {
            match serde_json::from_str::<EmailSettings>(&channel.settings) {
                Ok(settings) => {
                    match tokio::time::timeout(
                        SMTP_TIMEOUT,
                        email(platform, &settings, password, event),
                    )
                    .await
                    {
                        Ok(Ok(())) => Outcome::delivered(None),
                        Ok(Err(error)) => Outcome::failed(None, redactor.redact(&error)),
                        Err(_) => Outcome::failed(
                            None,
                            format!("the SMTP server did not finish within {SMTP_TIMEOUT:?}"),
                        ),
                    }
                }
                Err(_) => Outcome::permanent("the channel's settings do not read"),
            }
        }
        (ChannelKind::Slack | ChannelKind::Discord | ChannelKind::Webhook, None) => {
            Outcome::permanent("the channel has no URL or secret")
        }
    };
    outcome.error = outcome.error.map(|error| redactor.redact(&error));
    outcome
}

async fn post(
    platform: &Platform,
    url: &str,
    body: &serde_json::Value,
    headers: &[(&str, String)],
    redactor: &Redactor,
) -> Outcome {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    post_bytes(platform, url, bytes, headers, redactor).await
}

/// `POST`s `body` as JSON to `url`; a 2xx answer delivers.
async fn post_bytes(
    platform: &Platform,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
    redactor: &Redactor,
) -> Outcome {
    let Ok(parsed) = url::Url::parse(url) else {
        return Outcome::permanent("the channel's URL does not read");
    };
    let client = match platform.outbound.http_client(&parsed, HTTP_TIMEOUT).await {
        Ok(client) => client,
        Err(error) => return Outcome::failed(None, error.to_string()),
    };
    let mut request = client
        .post(parsed)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            Outcome::delivered(Some(response.status().as_u16()))
        }
        Ok(response) => {
            let status = response.status();
            let answer = response.text().await.unwrap_or_default();
            let excerpt: String = answer.chars().take(ANSWER_EXCERPT).collect();
            let mut error = format!("the receiver answered HTTP {status}");
            if !excerpt.trim().is_empty() {
                error.push_str(&format!(": {}", redactor.redact(excerpt.trim())));
            }
            Outcome::failed(Some(status.as_u16()), error)
        }
        Err(error) => Outcome::failed(None, error.without_url().to_string()),
    }
}

/// Sends `event` as an e-mail. Connects only to addresses the outbound policy allowed for the
/// host; TLS (from the start, or after STARTTLS, which must then succeed) verifies the host's
/// certificate by its name.
async fn email(
    platform: &Platform,
    settings: &EmailSettings,
    password: Option<String>,
    event: &NotificationEvent,
) -> Result<(), String> {
    let addresses = platform
        .outbound
        .resolve(&settings.host, settings.port)
        .await
        .map_err(|e| e.to_string())?;
    let hello = ClientId::Domain(
        platform
            .settings
            .public_url()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| "helvetia".to_owned()),
    );
    let tls = || {
        TlsParameters::builder(settings.host.clone())
            .build_rustls()
            .map_err(|e| format!("TLS could not be set up: {e}"))
    };
    let implicit = match settings.tls {
        SmtpTls::Tls => Some(tls()?),
        SmtpTls::None | SmtpTls::Starttls => None,
    };
    let smtp = |e: lettre::transport::smtp::Error| format!("SMTP: {e}");
    let mut connection = AsyncSmtpConnection::connect_tokio1(
        &addresses[..],
        Some(HTTP_TIMEOUT),
        &hello,
        implicit,
        None,
    )
    .await
    .map_err(smtp)?;
    if settings.tls == SmtpTls::Starttls {
        if !connection.can_starttls() {
            return Err("the SMTP server does not offer STARTTLS".into());
        }
        connection.starttls(tls()?, &hello).await.map_err(smtp)?;
    }
    if let (Some(username), Some(password)) = (&settings.username, password) {
        connection
            .auth(
                &[Mechanism::Plain, Mechanism::Login],
                &Credentials::new(username.clone(), password),
            )
            .await
            .map_err(smtp)?;
    }
    let (subject, body) = render::email(event);
    let mut builder = lettre::Message::builder()
        .from(settings.from.parse().map_err(|e| format!("from: {e}"))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &settings.to {
        builder = builder.to(to.parse().map_err(|e| format!("to: {e}"))?);
    }
    let message = builder.body(body).map_err(|e| e.to_string())?;
    connection
        .send(message.envelope(), &message.formatted())
        .await
        .map_err(smtp)?;
    // The message is accepted; a failed goodbye changes nothing.
    let _ = connection.quit().await;
    Ok(())
}
