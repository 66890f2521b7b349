//! How pages show what the use cases answer: status badges, rows, short commits, sizes. Pure
//! functions of their input, shared by pages and live fragments so both read the same.

use helvetia_core::container::Health;
use helvetia_core::deployment::{Deployment, DeploymentStatus};
use helvetia_core::units::human_bytes;
use jiff::Timestamp;

use crate::usecases::services::ServiceSummary;

/// A status as a coloured label: `class` picks the colour (`status-live`, `health-healthy`).
pub struct Badge {
    pub class: String,
    pub label: String,
}

impl Badge {
    pub fn status(status: DeploymentStatus) -> Badge {
        Badge {
            class: format!("status-{}", status.as_str()),
            label: status.as_str().replace('_', " "),
        }
    }

    pub fn health(health: Health) -> Badge {
        Badge {
            class: format!("health-{}", health.as_str()),
            label: health.as_str().replace('_', " "),
        }
    }

    /// A service that has never been deployed.
    pub fn none() -> Badge {
        Badge {
            class: "status-none".into(),
            label: "not deployed".into(),
        }
    }
}

/// One service in a list.
pub struct ServiceRow {
    pub name: String,
    pub href: String,
    pub status: Badge,
    pub health: Option<Badge>,
    pub url: String,
    pub serving: usize,
    pub replicas: u32,
    pub source: String,
    /// When its newest deployment last changed (RFC 3339), if it has one.
    pub changed: Option<String>,
}

impl From<&ServiceSummary> for ServiceRow {
    fn from(summary: &ServiceSummary) -> Self {
        let view = &summary.view;
        ServiceRow {
            href: service_href(&view.project, &view.name),
            name: view.name.clone(),
            status: summary
                .latest
                .as_ref()
                .map_or_else(Badge::none, |latest| Badge::status(latest.status)),
            health: summary.health.map(Badge::health),
            url: view.url.clone(),
            serving: summary.serving,
            replicas: view.runtime.replicas,
            source: source_label(
                view.settings.repo.as_deref(),
                view.settings.image.as_deref(),
            ),
            changed: summary.latest.as_ref().map(|d| d.updated_at.to_string()),
        }
    }
}

/// The path of a service's page.
pub fn service_href(project: &str, service: &str) -> String {
    format!("/p/{project}/s/{service}")
}

/// Where a service's code comes from, short.
pub fn source_label(repo: Option<&str>, image: Option<&str>) -> String {
    match (repo, image) {
        (_, Some(image)) => image.to_owned(),
        (Some(repo), None) => repo.to_owned(),
        (None, None) => String::new(),
    }
}

/// A deployment in a list or a heading.
pub struct DeploymentRow {
    pub id: i64,
    pub href: String,
    pub status: Badge,
    pub reason: String,
    pub commit: String,
    pub message: String,
    pub cause: String,
    pub by: String,
    pub created: String,
}

impl From<&Deployment> for DeploymentRow {
    fn from(deployment: &Deployment) -> Self {
        DeploymentRow {
            id: deployment.id,
            href: format!(
                "{}/deployments/{}",
                service_href(deployment.project.as_str(), deployment.service.as_str()),
                deployment.id
            ),
            status: Badge::status(deployment.status),
            reason: deployment.status_reason.clone().unwrap_or_default(),
            commit: short_commit(deployment.commit_sha.as_deref()),
            message: first_line(deployment.commit_message.as_deref()),
            cause: deployment.cause.as_str().to_owned(),
            by: actor_label(&deployment.created_by),
            created: deployment.created_at.to_string(),
        }
    }
}

/// Who did something, as the audit log names them, for people: a user by e-mail address
/// (`user:2(ada@example.com)` → `ada@example.com`); anything else as it is.
pub fn actor_label(label: &str) -> String {
    label
        .strip_prefix("user:")
        .and_then(|rest| rest.split_once('('))
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .filter(|email| !email.contains('('))
        .unwrap_or(label)
        .to_owned()
}

pub fn short_commit(sha: Option<&str>) -> String {
    sha.map(|sha| sha.chars().take(7).collect())
        .unwrap_or_default()
}

fn first_line(text: Option<&str>) -> String {
    text.and_then(|text| text.lines().next())
        .unwrap_or_default()
        .to_owned()
}

/// A size for people, or `none` when there is no limit.
pub fn bytes_or_none(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "none".to_owned(), human_bytes)
}

/// A moment as `<time datetime>` wants it.
pub fn moment(at: Timestamp) -> String {
    at.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_name_their_colour_and_read_as_words() {
        let badge = Badge::status(DeploymentStatus::HealthChecking);
        assert_eq!(badge.class, "status-health_checking");
        assert_eq!(badge.label, "health checking");
        assert_eq!(Badge::health(Health::OomKilled).label, "oom killed");
    }

    #[test]
    fn commits_are_shortened_and_messages_cut_to_their_first_line() {
        assert_eq!(short_commit(Some("0123456789abcdef")), "0123456");
        assert_eq!(short_commit(None), "");
        assert_eq!(first_line(Some("Fix it\n\nLong story")), "Fix it");
        assert_eq!(actor_label("user:2(ada@example.com)"), "ada@example.com");
        assert_eq!(
            actor_label("user:2(ada@example.com) token:5(ci)"),
            "user:2(ada@example.com) token:5(ci)"
        );
    }
}
