//! Session mechanics: the signing keys and the access tokens they sign ([`jwt`]), refresh and
//! CSRF tokens, and TOTP codes ([`totp`]). The operations that use them (sign in, refresh, sign
//! out) are in `usecases::signin` and `usecases::sessions`.
//!
//! Lifetimes: an access token lives [`ACCESS_TOKEN_LIFETIME`]; a session (its refresh tokens)
//! at most [`SESSION_LIFETIME`] from sign-in, however often it is refreshed. The signing key is
//! made at first use and sealed by the vault; after a rotation the previous key verifies for
//! [`KEY_OVERLAP`], longer than any token it signed lives.

use crate::vault::signing_key_binding;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use helvetia_core::auth::UserId;
use helvetia_store::audit::AuditBy;
use helvetia_store::{Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use tokio::sync::RwLock;

use crate::vault::Vault;

pub mod jwt;
pub mod totp;

pub use jwt::AccessClaims;

/// How long an access token is good for.
pub const ACCESS_TOKEN_LIFETIME: SignedDuration = SignedDuration::from_mins(15);
/// How long a session lasts from sign-in, refreshed or not.
pub const SESSION_LIFETIME: SignedDuration = SignedDuration::from_hours(30 * 24);
/// How long a replaced signing key still verifies: a token it signed just before the rotation
/// outlives it by less than this.
pub const KEY_OVERLAP: SignedDuration = SignedDuration::from_mins(20);

/// How soon an unknown `kid` may make the keys be read again: tokens with made-up key ids
/// cannot turn every request into a database read.
const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(10);

/// Bytes of randomness in refresh and CSRF tokens.
const TOKEN_BYTES: usize = 32;

/// A random, URL-safe token (refresh, CSRF).
pub fn random_token() -> String {
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Malformed, badly signed, of another algorithm, expired, or for another issuer or
    /// audience. Which one is logged at debug level, never told.
    #[error("the access token is invalid")]
    InvalidToken,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A signing key that does not open under the vault's key, or a token that could not be
    /// signed.
    #[error("signing key: {0}")]
    Key(String),
}

/// The signing keys, opened; read from the store at first use and after a change.
#[derive(Default)]
pub struct Keyring(RwLock<Option<Arc<Keys>>>);

struct Keys {
    read_at: Instant,
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, (DecodingKey, Option<Timestamp>)>,
}

impl Keyring {
    /// Signs an access token for `user` in `session`; answers it with its lifetime in seconds.
    pub async fn issue(
        &self,
        store: &Store,
        vault: &Vault,
        user: UserId,
        session: i64,
        now: Timestamp,
    ) -> Result<(String, i64), SessionError> {
        jwt::install();
        let keys = self.keys(store, vault, false).await?;
        let lifetime = ACCESS_TOKEN_LIFETIME.as_secs();
        let claims = AccessClaims {
            sub: user.0.to_string(),
            sid: session,
            iss: jwt::ISSUER.into(),
            aud: jwt::AUDIENCE.into(),
            iat: now.as_second(),
            exp: now.as_second() + lifetime,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys.signing_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &keys.signing)
            .map_err(|e| SessionError::Key(e.to_string()))?;
        Ok((token, lifetime))
    }

    /// The claims of a valid access token. An unknown `kid` re-reads the keys (at most every
    /// few seconds): another server process may have rotated them.
    pub async fn verify(
        &self,
        store: &Store,
        vault: &Vault,
        token: &str,
        now: Timestamp,
    ) -> Result<AccessClaims, SessionError> {
        jwt::install();
        let header = jsonwebtoken::decode_header(token).map_err(|error| {
            tracing::debug!(%error, "refused an access token");
            SessionError::InvalidToken
        })?;
        let kid = header.kid.ok_or(SessionError::InvalidToken)?;
        let mut keys = self.keys(store, vault, false).await?;
        if !keys.verifying.contains_key(&kid) && keys.read_at.elapsed() > RELOAD_AT_MOST_EVERY {
            keys = self.keys(store, vault, true).await?;
        }
        let (key, retires_at) = keys.verifying.get(&kid).ok_or(SessionError::InvalidToken)?;
        if retires_at.is_some_and(|at| at <= now) {
            return Err(SessionError::InvalidToken);
        }
        jsonwebtoken::decode::<AccessClaims>(token, key, &jwt::validation())
            .map(|data| data.claims)
            .map_err(|error| {
                tracing::debug!(%error, "refused an access token");
                SessionError::InvalidToken
            })
    }

    /// Makes a new signing key; the current one verifies for [`KEY_OVERLAP`] more. Answers the
    /// new key's id.
    pub async fn rotate(
        &self,
        store: &Store,
        vault: &Vault,
        by: AuditBy,
    ) -> Result<String, SessionError> {
        let retire_at = Timestamp::now()
            .checked_add(KEY_OVERLAP)
            .map_err(|e| SessionError::Key(e.to_string()))?;
        let kid = new_key(store, vault, retire_at, false, by).await?;
        *self.0.write().await = None;
        Ok(kid)
    }

    /// The opened keys: cached, or read again (`reload`, or nothing read yet), making the first
    /// key when there is none.
    async fn keys(
        &self,
        store: &Store,
        vault: &Vault,
        reload: bool,
    ) -> Result<Arc<Keys>, SessionError> {
        if !reload && let Some(keys) = self.0.read().await.as_ref() {
            return Ok(keys.clone());
        }
        let mut cached = self.0.write().await;
        let now = Timestamp::now();
        let mut stored = store.signing_keys(now).await?;
        if stored.first().is_none_or(|key| key.retires_at.is_some()) {
            new_key(store, vault, now, true, AuditBy::default()).await?;
            stored = store.signing_keys(now).await?;
        }
        let mut signing = None;
        let mut verifying = HashMap::new();
        for key in stored {
            let secret = vault
                .open(&signing_key_binding(&key.kid), &key.sealed_secret)
                .map_err(|e| SessionError::Key(format!("{}: {e}", key.kid)))?;
            let secret = hex::decode(secret).map_err(|e| SessionError::Key(e.to_string()))?;
            if key.retires_at.is_none() && signing.is_none() {
                let encoding = EncodingKey::from_secret(&secret)
                    .map_err(|e| SessionError::Key(e.to_string()))?;
                signing = Some((key.kid.clone(), encoding));
            }
            let decoding =
                DecodingKey::from_secret(&secret).map_err(|e| SessionError::Key(e.to_string()))?;
            verifying.insert(key.kid, (decoding, key.retires_at));
        }
        let (signing_kid, signing) =
            signing.ok_or_else(|| SessionError::Key("no signing key".into()))?;
        let keys = Arc::new(Keys {
            read_at: Instant::now(),
            signing_kid,
            signing,
            verifying,
        });
        *cached = Some(keys.clone());
        Ok(keys)
    }
}

/// Stores a new random signing key (sealed); see `Store::add_signing_key`.
async fn new_key(
    store: &Store,
    vault: &Vault,
    retire_others_at: Timestamp,
    only_if_none: bool,
    by: AuditBy,
) -> Result<String, SessionError> {
    let kid = hex::encode(rand::random::<[u8; 8]>());
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let sealed = vault.seal(&signing_key_binding(&kid), &secret);
    store
        .add_signing_key(&kid, &sealed, retire_others_at, only_if_none, by)
        .await?;
    Ok(kid)
}
