//! Helvetia as the ACME client of its domains: a supervised task orders a certificate for
//! each routed domain that needs one (never ordered, failed and past its wait, or due for
//! renewal), answering HTTP-01 through its own route on every host, and records the state —
//! issued with its issuer and validity, or failed with the CA's reason and the time of the next
//! attempt (growing waits: no loop against a refusing CA). A failure is notified.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use helvetia_core::certificate::retry_delay;
use helvetia_core::domain::Domain;
use helvetia_core::notification::{EventKind, NotificationEvent};
use helvetia_engine::acme::{
    Account, AccountCredentials, AcmeClient, Challenge, ChallengeKind, ChallengeResponder,
    OrderRequest, ResponderError,
};
use helvetia_store::certificates::Ordered;
use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::notifications;
use crate::platform::{AcmeSettings, Platform};
use crate::vault::{ACME_ACCOUNT_BINDING, certificate_key_binding};

/// How often due certificates are looked for when nothing wakes the task.
const PERIOD: Duration = Duration::from_secs(60);

/// Orders due certificates until `stop`: at start, every minute, and when a domain is routed.
pub async fn run(platform: Arc<Platform>, stop: CancellationToken) {
    let Some(settings) = platform.settings.acme.clone() else {
        stop.cancelled().await;
        return;
    };
    let client = match AcmeClient::new(
        platform.outbound.clone(),
        settings.directory.clone(),
        &settings.extra_roots_pem,
    ) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "the ACME client cannot be set up: no certificates are ordered");
            stop.cancelled().await;
            return;
        }
    };
    let mut account = None;
    loop {
        match order_due(&platform, &settings, &client, &mut account).await {
            Ok(()) => {}
            Err(error) => tracing::warn!(%error, "ordering certificates failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = platform.certificates_due.notified() => {}
            () = tokio::time::sleep(PERIOD) => {}
        }
    }
}

async fn order_due(
    platform: &Platform,
    settings: &AcmeSettings,
    client: &AcmeClient,
    account: &mut Option<Account>,
) -> Result<(), String> {
    let due = platform
        .store
        .domains_due_for_certificates(Timestamp::now())
        .await
        .map_err(|e| e.to_string())?;
    if due.is_empty() {
        return Ok(());
    }
    if account.is_none() {
        *account = Some(open_account(platform, settings, client).await?);
    }
    let Some(account) = account.as_ref() else {
        return Ok(());
    };
    for domain in due {
        order(platform, account, &domain).await?;
    }
    Ok(())
}

/// Helvetia's account at the CA: the stored one, or a new one (stored sealed).
async fn open_account(
    platform: &Platform,
    settings: &AcmeSettings,
    client: &AcmeClient,
) -> Result<Account, String> {
    let directory = settings.directory.url().to_owned();
    let stored = platform
        .store
        .acme_account(&directory)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(sealed) = stored {
        let json = platform
            .vault
            .open(ACME_ACCOUNT_BINDING, &sealed)
            .map_err(|e| format!("the ACME account's credentials do not open: {e}"))?;
        return client
            .load_account(&AccountCredentials::from_json(json))
            .await
            .map_err(|e| e.to_string());
    }
    let contacts: Vec<String> = settings
        .contact
        .iter()
        .map(|email| format!("mailto:{email}"))
        .collect();
    let (account, credentials) = client
        .create_account(&contacts, None)
        .await
        .map_err(|e| e.to_string())?;
    let sealed = platform
        .vault
        .seal(ACME_ACCOUNT_BINDING, credentials.as_json());
    platform
        .store
        .save_acme_account(&directory, &sealed)
        .await
        .map_err(|e| e.to_string())?;
    Ok(account)
}

/// Orders `domain`'s certificate and records what came of it; only a failure to record is an
/// error (the CA's refusal is the certificate's state).
async fn order(platform: &Platform, account: &Account, domain: &Domain) -> Result<(), String> {
    let store = &platform.store;
    store
        .start_certificate_order(domain)
        .await
        .map_err(|e| e.to_string())?;
    let request = OrderRequest::new(vec![domain.name.to_string()], ChallengeKind::Http01);
    let responder = Http01 { platform };
    match account.order(&request, &responder).await {
        Ok(issued) => {
            let sealed_key = platform
                .vault
                .seal(&certificate_key_binding(domain.id), &issued.private_key_pem);
            let info = &issued.info;
            let ordered = Ordered::Issued {
                chain_pem: &issued.chain_pem,
                sealed_key: &sealed_key,
                issuer: &info.issuer,
                not_before: info.not_before,
                not_after: info.not_after,
                renew_at: info.renew_at(),
            };
            store
                .record_certificate_order(domain, &ordered)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(domain = %domain.name, issuer = %info.issuer, "certificate issued");
            // Served from now on: the edge router gets it with the next table.
            if let Err(error) = platform.publish_routes().await {
                tracing::warn!(%error, "publishing the routes with a new certificate failed");
            }
        }
        Err(error) => {
            let failures = domain
                .certificate
                .as_ref()
                .map_or(0, |certificate| certificate.failures)
                + 1;
            let wait =
                SignedDuration::try_from(retry_delay(failures)).unwrap_or(SignedDuration::MAX);
            let reason = error.to_string();
            let ordered = Ordered::Failed {
                reason: &reason,
                next_attempt_at: Timestamp::now()
                    .saturating_add(wait)
                    .unwrap_or(Timestamp::MAX),
            };
            store
                .record_certificate_order(domain, &ordered)
                .await
                .map_err(|e| e.to_string())?;
            tracing::warn!(domain = %domain.name, %reason, "a certificate order failed");
            notify_failure(platform, domain, &reason).await;
        }
    }
    Ok(())
}

async fn notify_failure(platform: &Platform, domain: &Domain, reason: &str) {
    let Ok(service) = platform.store.service_by_id(domain.service_id).await else {
        return;
    };
    let mut event = NotificationEvent::new(
        EventKind::CertificateFailing,
        service.project.to_string(),
        Timestamp::now(),
    );
    event.service = Some(service.name.to_string());
    event.domain = Some(domain.name.to_string());
    event.reason = Some(reason.to_owned());
    notifications::emit(platform, service.project_id, event).await;
}

/// Answers HTTP-01 through the API's `/.well-known/acme-challenge/{token}`, which the edge
/// router relays from every host.
struct Http01<'a> {
    platform: &'a Platform,
}

impl ChallengeResponder for Http01<'_> {
    fn present<'a>(
        &'a self,
        challenge: &'a Challenge,
    ) -> BoxFuture<'a, Result<(), ResponderError>> {
        Box::pin(async move {
            match challenge {
                Challenge::Http01 {
                    token,
                    key_authorization,
                    ..
                } => {
                    self.platform
                        .acme_challenges
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(token.clone(), key_authorization.clone());
                    Ok(())
                }
                Challenge::Dns01 { .. } => Err(ResponderError(
                    "DNS-01 needs a DNS provider, which is not configured".into(),
                )),
            }
        })
    }

    fn clean_up<'a>(
        &'a self,
        challenge: &'a Challenge,
    ) -> BoxFuture<'a, Result<(), ResponderError>> {
        Box::pin(async move {
            if let Challenge::Http01 { token, .. } = challenge {
                self.platform
                    .acme_challenges
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(token);
            }
            Ok(())
        })
    }
}
