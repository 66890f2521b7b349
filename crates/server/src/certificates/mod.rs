//! Helvetia as the ACME client of its certificates: a supervised task keeps one certificate
//! per subject the installation wants — each routed whole-name domain, services' generated
//! hostnames (`--generated-certificates`: one per hostname, or wildcards one label up), the
//! host of an `https` public URL — and orders those due (never ordered, failed and past their
//! wait, or due for renewal), answering HTTP-01 through its own route on every host and DNS-01
//! (wildcards) through the DNS provider; it records the state — issued with its issuer and
//! validity, or failed with the CA's reason and the time of the next attempt (growing waits: no
//! loop against a refusing CA). A failure is notified to the project concerned.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use helvetia_core::certificate::{CertificateKind, CertificateSubject, retry_delay};
use helvetia_core::notification::EventKind;
use helvetia_engine::acme::{
    Account, AccountCredentials, AcmeClient, Challenge, ChallengeKind, ChallengeResponder,
    OrderRequest, ResponderError,
};
use helvetia_store::certificates::{Ordered, StoredCertificate};
use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::platform::{AcmeSettings, Platform};
use crate::vault::{ACME_ACCOUNT_BINDING, certificate_key_binding};

pub mod notices;

/// How often due certificates are looked for when nothing wakes the task (sooner when one is
/// due sooner: a short-lived certificate's renewal).
const PERIOD: Duration = Duration::from_secs(60);

/// Generated hostnames' certificates ordered per round (a minute): many services created at
/// once are spread out, well within Let's Encrypt's 50 certificates per registered domain a
/// week on a steady installation (the growing waits after failures apply too).
const HOSTNAME_ORDERS_PER_ROUND: usize = 5;

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
    let dns = settings
        .dns
        .as_ref()
        .map(|dns| dns.responder(platform.outbound.clone()));
    if dns.is_some() {
        // Wildcards refused for want of a DNS provider are ordered now that there is one.
        if let Err(error) = platform
            .store
            .retry_failed_certificates(WILDCARD_NEEDS_DNS, Timestamp::now())
            .await
        {
            tracing::warn!(%error, "wildcards waiting for a DNS provider stay waiting");
        }
    }
    let mut account = None;
    loop {
        let responders = Responders {
            http01: Http01 {
                platform: &platform,
            },
            dns01: dns.as_deref(),
        };
        match order_due(&platform, &settings, &client, &mut account, &responders).await {
            Ok(()) => {}
            Err(error) => tracing::warn!(%error, "ordering certificates failed"),
        }
        let wait = until_next_due(&platform).await;
        tokio::select! {
            () = stop.cancelled() => return,
            () = platform.certificates_due.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// How long to sleep: until the next certificate is due when that is within [`PERIOD`] (at
/// least a second), else [`PERIOD`] — also when one is due already but was left for the next
/// round (generated hostnames, a few a round).
async fn until_next_due(platform: &Platform) -> Duration {
    let next = match platform.store.next_certificate_due().await {
        Ok(next) => next,
        Err(error) => {
            tracing::warn!(%error, "when the next certificate is due is unknown");
            None
        }
    };
    next.and_then(|at| Duration::try_from(at.duration_since(Timestamp::now())).ok())
        .map_or(PERIOD, |wait| wait.clamp(Duration::from_secs(1), PERIOD))
}

/// Why a wildcard has no certificate when no DNS provider is set.
pub const WILDCARD_NEEDS_DNS: &str = "a wildcard needs --acme-dns-provider: only a DNS-01 \
     challenge proves one, and no DNS provider is set";

/// How an order's challenges are answered: HTTP-01 by Helvetia itself, DNS-01 (wildcards) by
/// the DNS provider, when one is set.
struct Responders<'a> {
    http01: Http01<'a>,
    dns01: Option<&'a dyn ChallengeResponder>,
}

async fn order_due(
    platform: &Platform,
    settings: &AcmeSettings,
    client: &AcmeClient,
    account: &mut Option<Account>,
    responders: &Responders<'_>,
) -> Result<(), String> {
    let store = &platform.store;
    let hostnames = store
        .generated_hostnames()
        .await
        .map_err(|e| e.to_string())?;
    let mut wanted = settings.generated.subjects(&hostnames);
    // Helvetia's own host, when its public URL says HTTPS: served on the same entry point.
    if let Some(public) = platform.settings.public_url()
        && public.scheme() == "https"
        && let Some(host) = public.domain()
    {
        wanted.push(CertificateSubject::new(CertificateKind::PublicUrl, host));
    }
    let removed = store
        .sync_certificates(&wanted, Timestamp::now())
        .await
        .map_err(|e| e.to_string())?;
    if removed {
        publish(platform).await;
    }
    let due = store
        .certificates_due(Timestamp::now())
        .await
        .map_err(|e| e.to_string())?;
    let mut hostnames_ordered = 0;
    for certificate in due {
        if certificate.subject.kind == CertificateKind::Hostname {
            hostnames_ordered += 1;
            if hostnames_ordered > HOSTNAME_ORDERS_PER_ROUND {
                continue;
            }
        }
        let (kind, responder) = match (certificate.subject.has_wildcard(), responders.dns01) {
            (false, _) => (
                ChallengeKind::Http01,
                &responders.http01 as &dyn ChallengeResponder,
            ),
            (true, Some(dns01)) => (ChallengeKind::Dns01, dns01),
            (true, None) => {
                refuse_wildcard(platform, &certificate).await?;
                continue;
            }
        };
        if account.is_none() {
            *account = Some(open_account(platform, settings, client).await?);
        }
        let Some(account) = account.as_ref() else {
            return Ok(());
        };
        let request = OrderRequest::new(certificate.subject.names.clone(), kind);
        order(platform, account, &certificate, &request, responder).await?;
    }
    Ok(())
}

/// Publishes the routes, so the edge router serves the certificates as they are now.
async fn publish(platform: &Platform) {
    if let Err(error) = platform.publish_routes().await {
        tracing::warn!(%error, "publishing the routes with the certificates failed");
    }
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
        .create_account(&contacts, settings.external_account.as_ref())
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

/// Orders `certificate` and records what came of it; only a failure to record is an error
/// (the CA's refusal is the certificate's state).
async fn order(
    platform: &Platform,
    account: &Account,
    certificate: &StoredCertificate,
    request: &OrderRequest,
    responder: &dyn ChallengeResponder,
) -> Result<(), String> {
    let store = &platform.store;
    let names = certificate.subject.joined_names();
    store
        .start_certificate_order(certificate.id)
        .await
        .map_err(|e| e.to_string())?;
    match account.order(request, responder).await {
        Ok(issued) => {
            let sealed_key = platform.vault.seal(
                &certificate_key_binding(&certificate.subject),
                &issued.private_key_pem,
            );
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
                .record_certificate_order(certificate.id, &ordered)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(%names, issuer = %info.issuer, "certificate issued");
            // Served from now on: the edge router gets it with the next table.
            publish(platform).await;
        }
        Err(error) => {
            let reason = error.to_string();
            record_failure(platform, certificate, &reason).await?;
            tracing::warn!(%names, %reason, "a certificate order failed");
            notices::notify(
                platform,
                EventKind::CertificateFailing,
                &certificate.subject,
                &reason,
            )
            .await;
        }
    }
    Ok(())
}

/// Records that `certificate`'s order failed for `reason`, to be tried again after a wait
/// that grows with the failures in a row; returns how many there are now.
async fn record_failure(
    platform: &Platform,
    certificate: &StoredCertificate,
    reason: &str,
) -> Result<u32, String> {
    let failures = certificate.certificate.failures + 1;
    let wait = SignedDuration::try_from(retry_delay(failures)).unwrap_or(SignedDuration::MAX);
    let ordered = Ordered::Failed {
        reason,
        next_attempt_at: Timestamp::now()
            .saturating_add(wait)
            .unwrap_or(Timestamp::MAX),
    };
    platform
        .store
        .record_certificate_order(certificate.id, &ordered)
        .await
        .map_err(|e| e.to_string())?;
    Ok(failures)
}

/// A wildcard with no DNS provider to prove it: `failed` with the reason, without asking the
/// CA; notified once, not at every (growing) wait.
async fn refuse_wildcard(
    platform: &Platform,
    certificate: &StoredCertificate,
) -> Result<(), String> {
    platform
        .store
        .start_certificate_order(certificate.id)
        .await
        .map_err(|e| e.to_string())?;
    if record_failure(platform, certificate, WILDCARD_NEEDS_DNS).await? == 1 {
        let names = certificate.subject.joined_names();
        tracing::warn!(%names, "{WILDCARD_NEEDS_DNS}");
        notices::notify(
            platform,
            EventKind::CertificateFailing,
            &certificate.subject,
            WILDCARD_NEEDS_DNS,
        )
        .await;
    }
    Ok(())
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
