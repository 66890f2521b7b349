//! What each kind of channel receives for an event: one line of text that every format
//! starts from ([`summary`]), Slack's and Discord's incoming-webhook bodies, the generic
//! webhook's JSON and an e-mail's subject and body. Nothing here reads a secret.

use serde_json::{Value, json};

use super::{EventKind, NotificationEvent};

/// `project/service`, or the project alone.
fn subject(event: &NotificationEvent) -> String {
    match &event.service {
        Some(service) => format!("{}/{service}", event.project),
        None => event.project.clone(),
    }
}

/// What the event is about: a pull request's preview of the service, or the service.
fn about(event: &NotificationEvent) -> String {
    match event.pull_request {
        Some(number) => format!(
            "the preview of pull request #{number} of {}",
            subject(event)
        ),
        None => subject(event),
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// One line saying what happened, e.g. `demo/web deployed (deployment #12, commit 1a2b3c4d5e6f)`.
pub fn summary(event: &NotificationEvent) -> String {
    let what = subject(event);
    let mut line = match event.kind {
        EventKind::DeploySucceeded => format!("{} deployed", about(event)),
        EventKind::DeployFailed => format!("{} failed to deploy", about(event)),
        EventKind::PreviewReady => match event.pull_request {
            Some(_) => format!("{} is ready", about(event)),
            None => format!("a preview of {what} is ready"),
        },
        EventKind::CertificateFailing => format!(
            "the certificate of {} ({what}) could not be obtained or renewed",
            event.domain.as_deref().unwrap_or("a domain")
        ),
        EventKind::CertificateExpiring => format!(
            "the certificate of {} ({what}) expires soon",
            event.domain.as_deref().unwrap_or("a domain")
        ),
        EventKind::BackupFailed => format!("a backup of {what} failed"),
        EventKind::Test => format!("a test notification from Helvetia for {what}"),
    };
    let mut details = vec![];
    if let Some(id) = event.deployment_id {
        details.push(format!("deployment #{id}"));
    }
    if let Some(commit) = &event.commit {
        details.push(format!("commit {}", short(commit)));
    }
    if !details.is_empty() {
        line.push_str(&format!(" ({})", details.join(", ")));
    }
    line
}

/// The summary, then the reason and the URL on lines of their own.
fn text(event: &NotificationEvent) -> String {
    let mut text = summary(event);
    if let Some(reason) = &event.reason {
        text.push_str(&format!("\n{reason}"));
    }
    if let Some(url) = &event.url {
        text.push_str(&format!("\n{url}"));
    }
    text
}

fn sign(event: &NotificationEvent) -> &'static str {
    if event.kind.is_failure() {
        "⚠️"
    } else {
        "✅"
    }
}

/// A Slack-compatible incoming webhook's body: `text` (what notifications and clients without
/// blocks show) and one section block with the same words.
pub fn slack(event: &NotificationEvent) -> Value {
    let text = format!("{} {}", sign(event), text(event));
    json!({
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    })
}

/// A Discord-compatible incoming webhook's body: the summary as `content` and an embed
/// (red for bad news, green otherwise) with the details.
pub fn discord(event: &NotificationEvent) -> Value {
    let mut fields = vec![json!({"name": "event", "value": event.kind.as_str(), "inline": true})];
    if let Some(status) = &event.status {
        fields.push(json!({"name": "status", "value": status, "inline": true}));
    }
    if let Some(commit) = &event.commit {
        fields.push(json!({"name": "commit", "value": short(commit), "inline": true}));
    }
    let mut embed = json!({
        "title": subject(event),
        "description": text(event),
        "color": if event.kind.is_failure() { 0xD9_3025 } else { 0x2E_A043 },
        "fields": fields,
        "timestamp": event.at.to_string(),
    });
    if let Some(url) = &event.url {
        embed["url"] = json!(url);
    }
    json!({
        "content": format!("{} {}", sign(event), summary(event)),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

/// The generic webhook's body: the event's fields, the message's `delivery` id and the
/// summary as `text`.
pub fn generic(event: &NotificationEvent, delivery: &str) -> Value {
    let mut body = serde_json::to_value(event).unwrap_or_else(|_| json!({}));
    body["delivery"] = json!(delivery);
    body["text"] = json!(text(event));
    body
}

/// An e-mail's subject and plain-text body.
pub fn email(event: &NotificationEvent) -> (String, String) {
    let subject = format!("[Helvetia] {}", summary(event));
    let mut body = text(event);
    body.push_str(&format!(
        "\n\nevent: {}\nproject: {}",
        event.kind, event.project
    ));
    if let Some(service) = &event.service {
        body.push_str(&format!("\nservice: {service}"));
    }
    if let Some(status) = &event.status {
        body.push_str(&format!("\nstatus: {status}"));
    }
    if let Some(commit) = &event.commit {
        body.push_str(&format!("\ncommit: {commit}"));
    }
    body.push_str(&format!("\nat: {}\n", event.at));
    (subject, body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use jiff::Timestamp;

    use super::*;

    fn failed() -> NotificationEvent {
        let mut event = NotificationEvent::new(
            EventKind::DeployFailed,
            "demo",
            Timestamp::from_second(1_700_000_000).unwrap(),
        );
        event.service = Some("web".into());
        event.deployment_id = Some(12);
        event.commit = Some("1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d".into());
        event.status = Some("failed".into());
        event.reason = Some("the health check did not pass within 60s".into());
        event.url = Some("http://web.demo.localhost".into());
        event
    }

    #[test]
    fn every_format_says_what_happened() {
        let event = failed();
        assert_eq!(
            summary(&event),
            "demo/web failed to deploy (deployment #12, commit 1a2b3c4d5e6f)"
        );
        let slack = slack(&event);
        assert!(slack["text"].as_str().unwrap().contains("health check"));
        assert_eq!(slack["blocks"][0]["text"]["text"], slack["text"]);
        let discord = discord(&event);
        assert_eq!(discord["embeds"][0]["color"], 0xD93025);
        assert_eq!(discord["embeds"][0]["url"], "http://web.demo.localhost");
        let generic = generic(&event, "d-1");
        assert_eq!(generic["kind"], "deploy_failed");
        assert_eq!(generic["delivery"], "d-1");
        assert_eq!(generic["deployment_id"], 12);
        let (subject, body) = email(&event);
        assert!(subject.starts_with("[Helvetia] demo/web failed to deploy"));
        assert!(body.contains("status: failed"));
    }

    #[test]
    fn a_preview_names_its_pull_request() {
        let mut event =
            NotificationEvent::new(EventKind::PreviewReady, "demo", Timestamp::UNIX_EPOCH);
        event.service = Some("web".into());
        event.pull_request = Some(7);
        assert_eq!(
            summary(&event),
            "the preview of pull request #7 of demo/web is ready"
        );
        event.kind = EventKind::DeployFailed;
        assert_eq!(
            summary(&event),
            "the preview of pull request #7 of demo/web failed to deploy"
        );
    }
}
