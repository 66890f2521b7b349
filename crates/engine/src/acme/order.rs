//! One certificate order, start to end: the order for its identifiers, a challenge per
//! authorization answered through the caller's [`ChallengeResponder`], the CA's verdict (its
//! problem document when it refuses), finalization with a fresh key, and the chain.

use std::time::Duration;

use futures::future::BoxFuture;
use instant_acme::{
    AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};

use super::certificate::CertificateInfo;
use super::{AcmeError, Problem};

/// Which challenge proves control of a name. A wildcard name is always proved by DNS-01, the
/// only challenge CAs accept for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    Http01,
    Dns01,
}

/// What the CA asks to see before it signs for `domain`.
#[derive(Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Serve `key_authorization` at `http://<domain>/.well-known/acme-challenge/<token>`
    /// (port 80).
    Http01 {
        domain: String,
        token: String,
        key_authorization: String,
    },
    /// Publish a TXT record `value` at `fqdn` (`_acme-challenge.<domain>.`, with the trailing
    /// dot). For `*.example.com` and `example.com` in one order both records are at the same
    /// name, with different values: a provider adds a record, it does not replace one.
    Dns01 {
        domain: String,
        fqdn: String,
        value: String,
    },
}

impl std::fmt::Debug for Challenge {
    // The key authorization and the TXT value are short-lived proofs, not secrets; the token is
    // public. They are still left out of logs, where they help nobody.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Challenge::Http01 { domain, token, .. } => f
                .debug_struct("Http01")
                .field("domain", domain)
                .field("token", token)
                .finish_non_exhaustive(),
            Challenge::Dns01 { domain, fqdn, .. } => f
                .debug_struct("Dns01")
                .field("domain", domain)
                .field("fqdn", fqdn)
                .finish_non_exhaustive(),
        }
    }
}

impl Challenge {
    pub fn domain(&self) -> &str {
        match self {
            Challenge::Http01 { domain, .. } | Challenge::Dns01 { domain, .. } => domain,
        }
    }
}

/// Why a challenge could not be set up or taken down, in words for the certificate's state.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ResponderError(pub String);

/// What the caller does so the CA can validate: serve an HTTP-01 token (Traefik routes
/// `/.well-known/acme-challenge/` to Helvetia), set a TXT record through a DNS provider.
pub trait ChallengeResponder: Send + Sync {
    /// Makes `challenge` answerable; the CA is told to look only after this returned.
    fn present<'a>(&'a self, challenge: &'a Challenge)
    -> BoxFuture<'a, Result<(), ResponderError>>;

    /// Takes `challenge` down again, whatever the CA's verdict was.
    fn clean_up<'a>(
        &'a self,
        challenge: &'a Challenge,
    ) -> BoxFuture<'a, Result<(), ResponderError>>;

    /// How long to wait once all challenges are presented, before the CA is told to look: a
    /// DNS provider's record takes a moment to reach all of its authoritative servers.
    fn propagation(&self) -> Duration {
        Duration::ZERO
    }
}

/// A certificate to order.
#[derive(Debug, Clone)]
pub struct OrderRequest {
    /// DNS names, `*.example.com` for a wildcard; the first is the certificate's main name.
    pub identifiers: Vec<String>,
    /// The challenge for names that are not wildcards.
    pub challenge: ChallengeKind,
    /// How long the CA may take to validate, and then to issue.
    pub timeout: Duration,
}

impl OrderRequest {
    /// How long Helvetia waits for the CA by default, at each of its two waits.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

    pub fn new(identifiers: Vec<String>, challenge: ChallengeKind) -> OrderRequest {
        OrderRequest {
            identifiers,
            challenge,
            timeout: OrderRequest::DEFAULT_TIMEOUT,
        }
    }
}

/// An issued certificate with its key: the caller seals the key at rest.
#[derive(Clone)]
pub struct IssuedCertificate {
    /// The chain as the CA served it, leaf first (PEM).
    pub chain_pem: String,
    /// The certificate's private key (PKCS#8 PEM, ECDSA P-256), generated for this order.
    pub private_key_pem: String,
    /// The leaf's issuer and validity.
    pub info: CertificateInfo,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Orders `request` with `account`, answering challenges through `responder`.
pub(super) async fn run(
    account: &instant_acme::Account,
    request: &OrderRequest,
    responder: &dyn ChallengeResponder,
) -> Result<IssuedCertificate, AcmeError> {
    if request.identifiers.is_empty() {
        return Err(AcmeError::Input(
            "a certificate needs at least one name".into(),
        ));
    }
    let identifiers: Vec<Identifier> = request
        .identifiers
        .iter()
        .map(|name| Identifier::Dns(name.clone()))
        .collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;

    let mut presented = Vec::new();
    let answered = answer(&mut order, request.challenge, responder, &mut presented).await;
    let verdict = match answered {
        Ok(()) => wait_until_ready(&mut order, request.timeout).await,
        Err(error) => Err(error),
    };
    // Taken down whatever happened: a record left behind is a stale TXT at the user's DNS.
    for challenge in &presented {
        if let Err(error) = responder.clean_up(challenge).await {
            let domain = challenge.domain();
            tracing::warn!(domain, %error, "an ACME challenge was not cleaned up");
        }
    }
    verdict?;

    let private_key_pem = order.finalize().await?;
    let retries = RetryPolicy::new().timeout(request.timeout);
    let chain_pem = order.poll_certificate(&retries).await?;
    let info = CertificateInfo::from_pem_chain(&chain_pem)
        .map_err(|e| AcmeError::Protocol(e.to_string()))?;
    Ok(IssuedCertificate {
        chain_pem,
        private_key_pem,
        info,
    })
}

/// Presents a challenge for every pending authorization, then tells the CA to validate them
/// (all records first, so the CA finds each when it looks). Every challenge presented is pushed
/// to `presented` as soon as it is, for the clean-up.
async fn answer(
    order: &mut instant_acme::Order,
    preferred: ChallengeKind,
    responder: &dyn ChallengeResponder,
    presented: &mut Vec<Challenge>,
) -> Result<(), AcmeError> {
    let mut to_validate = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            // Proved recently with this account: nothing to answer.
            AuthorizationStatus::Valid => continue,
            status @ (AuthorizationStatus::Invalid
            | AuthorizationStatus::Revoked
            | AuthorizationStatus::Expired
            | AuthorizationStatus::Deactivated) => {
                let name = authorization.identifier().to_string();
                return Err(AcmeError::Protocol(format!(
                    "the authorization for {name} is {status:?}"
                )));
            }
        }
        let authorization_url = authorization.url().to_owned();
        let kind = if authorization.wildcard {
            ChallengeKind::Dns01
        } else {
            preferred
        };
        let domain = authorization.identifier().to_string();
        let kind_name = match kind {
            ChallengeKind::Http01 => ChallengeType::Http01,
            ChallengeKind::Dns01 => ChallengeType::Dns01,
        };
        let Some(handle) = authorization.challenge(kind_name.clone()) else {
            return Err(AcmeError::Protocol(format!(
                "the CA offers no {kind_name:?} challenge for {domain}"
            )));
        };
        let key_authorization = handle.key_authorization();
        let challenge = match kind {
            ChallengeKind::Http01 => Challenge::Http01 {
                domain,
                token: handle.token.clone(),
                key_authorization: key_authorization.as_str().to_owned(),
            },
            ChallengeKind::Dns01 => {
                let base = domain.strip_prefix("*.").unwrap_or(&domain);
                Challenge::Dns01 {
                    fqdn: format!("_acme-challenge.{base}."),
                    value: key_authorization.dns_value(),
                    domain,
                }
            }
        };
        responder
            .present(&challenge)
            .await
            .map_err(|error| AcmeError::Challenge {
                domain: challenge.domain().to_owned(),
                reason: error.0,
            })?;
        presented.push(challenge);
        to_validate.push((authorization_url, kind_name));
    }
    if !to_validate.is_empty() {
        tokio::time::sleep(responder.propagation()).await;
    }

    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization?;
        let Some((_, kind)) = to_validate
            .iter()
            .find(|(url, _)| url == authorization.url())
        else {
            continue;
        };
        if let Some(mut handle) = authorization.challenge(kind.clone()) {
            handle.set_ready().await?;
        }
    }
    Ok(())
}

/// Waits for the CA's verdict on the challenges. A refusal carries the CA's reason: the failed
/// challenge's, which names the domain (the order's own problem, when it has one, does not).
async fn wait_until_ready(
    order: &mut instant_acme::Order,
    timeout: Duration,
) -> Result<(), AcmeError> {
    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(100))
        .backoff(1.5)
        .timeout(timeout);
    let order_problem = match order.poll_ready(&retries).await {
        Ok(OrderStatus::Ready) => return Ok(()),
        Ok(OrderStatus::Invalid) => None,
        Ok(status @ (OrderStatus::Pending | OrderStatus::Processing | OrderStatus::Valid)) => {
            return Err(AcmeError::Protocol(format!(
                "the order is {status:?} where it should be ready"
            )));
        }
        Err(instant_acme::Error::Api(problem)) => Some(problem),
        Err(other) => return Err(other.into()),
    };
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization?;
        let state = authorization.refresh().await?;
        let failed = state.challenges.iter().find_map(|c| c.error.clone());
        if let Some(problem) = failed {
            return Err(AcmeError::Refused {
                domain: Some(state.identifier().to_string()),
                problem: Problem::from(problem),
            });
        }
    }
    Err(AcmeError::Refused {
        domain: None,
        problem: match order_problem {
            Some(problem) => problem.into(),
            None => Problem {
                kind: None,
                detail: Some("the CA declared the order invalid without saying why".into()),
                subproblems: vec![],
            },
        },
    })
}
