//! Telling people about certificates: the project concerned is notified when one cannot be
//! obtained or renewed, and — whichever way a certificate came, ordered or uploaded — once
//! when the one served ends within 14 days (`EXPIRING_WITHIN`), looked for every hour by a
//! supervised task that runs whether or not Helvetia is an ACME client.

use std::sync::Arc;
use std::time::Duration;

use helvetia_core::certificate::{CertificateKind, CertificateSubject};
use helvetia_core::notification::{EventKind, NotificationEvent};
use helvetia_store::StoreError;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::notifications;
use crate::platform::Platform;

/// How often certificates ending soon are looked for.
const PERIOD: Duration = Duration::from_secs(3600);

/// Warns of certificates ending soon until `stop`: at start, then every hour.
pub async fn warn_of_expiry(platform: Arc<Platform>, stop: CancellationToken) {
    loop {
        if let Err(error) = warn_due(&platform, Timestamp::now()).await {
            tracing::warn!(%error, "looking for certificates that end soon failed");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(PERIOD) => {}
        }
    }
}

/// Notifies each served certificate that ends within 14 days of `now` and was not notified
/// for that end yet; answers how many.
pub async fn warn_due(platform: &Platform, now: Timestamp) -> Result<usize, StoreError> {
    let ending = platform.store.certificates_to_warn_of(now).await?;
    for certificate in &ending {
        let Some(not_after) = certificate.certificate.not_after else {
            continue;
        };
        let days = not_after.duration_since(now).as_hours() / 24;
        let reason = format!("valid until {not_after} ({days} days left)");
        let names = certificate.subject.joined_names();
        tracing::warn!(%names, %not_after, "a certificate ends soon");
        notify(
            platform,
            EventKind::CertificateExpiring,
            &certificate.subject,
            &reason,
        )
        .await;
        platform
            .store
            .record_expiry_warning(certificate.id, not_after)
            .await?;
    }
    Ok(ending.len())
}

/// Tells the project concerned about a certificate: a domain's service's, a generated
/// hostname's service's. A wildcard over a project's hostnames, or the public URL's, is only
/// logged.
pub async fn notify(
    platform: &Platform,
    kind: EventKind,
    subject: &CertificateSubject,
    reason: &str,
) {
    let store = &platform.store;
    let service_id = match subject.kind {
        CertificateKind::Domain => match subject.domain_id {
            Some(domain_id) => store
                .domain(domain_id)
                .await
                .ok()
                .flatten()
                .map(|d| d.service_id),
            None => None,
        },
        CertificateKind::Hostname => match subject.names.first() {
            Some(host) => store.service_of_hostname(host).await.ok().flatten(),
            None => None,
        },
        CertificateKind::Wildcard | CertificateKind::PublicUrl => None,
    };
    let Some(service_id) = service_id else {
        return;
    };
    let Ok(service) = store.service_by_id(service_id).await else {
        return;
    };
    let mut event = NotificationEvent::new(kind, service.project.to_string(), Timestamp::now());
    event.service = Some(service.name.to_string());
    event.domain = Some(subject.joined_names());
    event.reason = Some(reason.to_owned());
    notifications::emit(platform, service.project_id, event).await;
}
