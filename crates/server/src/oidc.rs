//! OpenID Connect tokens of CI jobs, verified: the issuer's key set found through
//! `<issuer>/.well-known/openid-configuration` → `jwks_uri`, both fetched through
//! [`Outbound`] (the destination policy, no redirects), and kept per issuer.
//!
//! A token naming a key (`kid`) the kept set lacks makes the set be fetched again, so an
//! issuer's key rotation is picked up at its first new token — but at most once per
//! [`REFETCH_INTERVAL`] per issuer, so tokens naming made-up keys cannot make Helvetia hammer
//! the issuer. A set is also fetched again once older than [`MAX_AGE`] (the older one serves
//! if that fails). Only issuers some trust names are ever asked: the use case
//! (`usecases::oidc`) looks the issuer up among the service's trusts first.
//!
//! The signature (RS256 or ES256: the algorithms issuers use; jsonwebtoken's crypto is ours,
//! `sessions::jwt`), `iss`, `aud` (this server's public URL), `exp` and `nbf` (with
//! [`LEEWAY_SECS`] of leeway) are checked here; the claims' rules are the core's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helvetia_core::oidc::{CiClaims, LEEWAY_SECS};
use helvetia_engine::outbound::{Outbound, OutboundError};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use crate::sessions::jwt;

/// The least time between two fetches of one issuer's keys for tokens naming unknown keys.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(1);
/// How long a key set is used before it is fetched again.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// How long the issuer has to answer each request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a discovery document or a key set may weigh.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Why a token was not accepted. Each says what to fix; none holds the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a JWT: {0}")]
    Malformed(String),
    #[error("the token is signed with {0:?}; only RS256 and ES256 are accepted")]
    Algorithm(Algorithm),
    #[error("the token's header names no key (`kid`)")]
    NoKeyId,
    #[error("the token is signed by a key issuer `{issuer}` does not publish (kid `{kid}`)")]
    UnknownKey { issuer: String, kid: String },
    #[error("the keys of issuer `{issuer}` could not be read: {detail}")]
    Unreachable { issuer: String, detail: String },
    #[error("the token's signature does not verify with issuer `{0}`'s key")]
    Signature(String),
    #[error("the token has expired (`exp`)")]
    Expired,
    #[error("the token is not valid yet (`nbf`)")]
    NotYetValid,
    #[error("the token's audience (`aud`) is not this server's public URL `{0}`")]
    Audience(String),
    #[error("the token's issuer (`iss`) is not `{0}`")]
    Issuer(String),
    #[error("the token was refused: {0}")]
    Invalid(String),
}

/// What Helvetia reads of the discovery document.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// An issuer's keys as last fetched.
struct IssuerKeys {
    keys: Option<Arc<JwkSet>>,
    /// When the last fetch was tried (whether or not it succeeded).
    fetched_at: Option<Instant>,
}

/// The key sets of every issuer asked so far; each behind its own lock, so one issuer's fetch
/// is done once however many tokens wait for it, and never holds up another issuer's.
#[derive(Default)]
pub struct KeySets {
    issuers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<IssuerKeys>>>>,
}

impl KeySets {
    /// Verifies `token` as issued by `issuer` for one of `audiences`, and answers its claims.
    pub async fn verify(
        &self,
        outbound: &Outbound,
        token: &str,
        issuer: &str,
        audiences: &[String],
    ) -> Result<CiClaims, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TokenError::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(TokenError::NoKeyId)?;
        let keys = self.keys(outbound, issuer, &kid).await?;
        let jwk = keys.find(&kid).ok_or_else(|| TokenError::UnknownKey {
            issuer: issuer.to_owned(),
            kid: kid.clone(),
        })?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        // The trust names the issuer without a trailing `/`; an issuer may write one.
        validation.set_issuer(&[issuer.to_owned(), format!("{issuer}/")]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        jwt::install();
        jsonwebtoken::decode::<CiClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => TokenError::Signature(issuer.to_owned()),
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidAudience => {
                    TokenError::Audience(audiences.first().cloned().unwrap_or_default())
                }
                ErrorKind::InvalidIssuer => TokenError::Issuer(issuer.to_owned()),
                _ => TokenError::Invalid(error.to_string()),
            })
    }

    /// `issuer`'s keys, fetched again when they are old or lack `kid` (within the pace).
    async fn keys(
        &self,
        outbound: &Outbound,
        issuer: &str,
        kid: &str,
    ) -> Result<Arc<JwkSet>, TokenError> {
        let entry = {
            let mut issuers = self
                .issuers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            issuers
                .entry(issuer.to_owned())
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Mutex::new(IssuerKeys {
                        keys: None,
                        fetched_at: None,
                    }))
                })
                .clone()
        };
        let mut entry = entry.lock().await;
        let age = entry.fetched_at.map(|at| at.elapsed());
        let stale = age.is_none_or(|age| age >= MAX_AGE);
        let lacks_kid = entry
            .keys
            .as_ref()
            .is_none_or(|keys| keys.find(kid).is_none());
        let may_refetch = age.is_none_or(|age| age >= REFETCH_INTERVAL);
        if stale || (lacks_kid && may_refetch) {
            entry.fetched_at = Some(Instant::now());
            match fetch(outbound, issuer).await {
                Ok(keys) => entry.keys = Some(Arc::new(keys)),
                Err(detail) => {
                    tracing::warn!(issuer, %detail, "an OpenID Connect key set could not be read");
                    if entry.keys.is_none() {
                        return Err(TokenError::Unreachable {
                            issuer: issuer.to_owned(),
                            detail,
                        });
                    }
                }
            }
        }
        entry.keys.clone().ok_or_else(|| TokenError::Unreachable {
            issuer: issuer.to_owned(),
            detail: "no key set was read yet; try again in a moment".into(),
        })
    }
}

/// Reads `issuer`'s discovery document, then the key set it points to.
async fn fetch(outbound: &Outbound, issuer: &str) -> Result<JwkSet, String> {
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    let discovery: Discovery = get_json(outbound, &discovery).await?;
    // OpenID Connect Discovery §4.3: the document must name the issuer it was asked for.
    if discovery.issuer.trim_end_matches('/') != issuer {
        return Err(format!(
            "the discovery document names issuer `{}`",
            discovery.issuer
        ));
    }
    let jwks_uri = Url::parse(&discovery.jwks_uri).map_err(|e| format!("`jwks_uri`: {e}"))?;
    if jwks_uri.scheme() != "https" && !issuer.starts_with("http://") {
        return Err("`jwks_uri` is not an https:// URL".into());
    }
    get_json(outbound, jwks_uri.as_str()).await
}

/// `GET url` through the outbound policy, read as JSON of at most [`MAX_DOCUMENT_BYTES`].
async fn get_json<T: serde::de::DeserializeOwned>(
    outbound: &Outbound,
    url: &str,
) -> Result<T, String> {
    let parsed = Url::parse(url).map_err(|e| format!("`{url}`: {e}"))?;
    let unreachable = |e: OutboundError| format!("`{url}`: {e}");
    let client = outbound
        .http_client(&parsed, REQUEST_TIMEOUT)
        .await
        .map_err(unreachable)?;
    let mut response = client
        .get(parsed)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("`{url}`: {}", e.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("`{url}` answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("`{url}`: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!(
                "`{url}` answered more than {MAX_DOCUMENT_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("`{url}`: {e}"))
}
