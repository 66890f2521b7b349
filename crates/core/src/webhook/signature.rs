//! Signature checks over a delivery's raw body, all constant-time (`Mac::verify_slice`,
//! `subtle`), none of which says where a wrong signature went wrong.
//!
//! - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
//! - Gitea / Forgejo: `X-Gitea-Signature` / `X-Forgejo-Signature: <hex HMAC-SHA256(secret, body)>`.
//! - GitLab: `X-Gitlab-Token: <secret>`, compared whole.
//! - Generic (Helvetia's own, for any other sender): `X-Helvetia-Timestamp: <unix seconds>` and
//!   `X-Helvetia-Signature-256: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`; the
//!   timestamp must be within [`GENERIC_TOLERANCE`] of the receiver's clock, so a captured
//!   delivery cannot be replayed later.

use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::Source;

/// How far a generic delivery's timestamp may be from the receiver's clock.
pub const GENERIC_TOLERANCE: SignedDuration = SignedDuration::from_secs(5 * 60);

/// The generic scheme's headers.
pub const GENERIC_SIGNATURE_HEADER: &str = "x-helvetia-signature-256";
pub const GENERIC_TIMESTAMP_HEADER: &str = "x-helvetia-timestamp";

/// What the signature check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Signed with the secret.
    Valid,
    /// No signature (or no timestamp, for the generic scheme).
    Missing,
    /// A signature that does not match the body and the secret.
    Invalid,
    /// A generic delivery signed correctly but too long ago (or in the future): a replay.
    Expired,
    /// Not checked: the body was over the receiver's limit, so it was not read.
    Unchecked,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [
        Verdict::Valid,
        Verdict::Missing,
        Verdict::Invalid,
        Verdict::Expired,
        Verdict::Unchecked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Missing => "missing",
            Verdict::Invalid => "invalid",
            Verdict::Expired => "expired",
            Verdict::Unchecked => "unchecked",
        }
    }

    /// Why a delivery with this verdict was refused (`None` when it was not).
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Verdict::Valid => None,
            Verdict::Missing => Some("no signature"),
            Verdict::Invalid => Some("the signature does not match"),
            Verdict::Expired => Some("the signature's timestamp is too old or in the future"),
            Verdict::Unchecked => Some("the body is over the receiver's limit"),
        }
    }
}

impl std::str::FromStr for Verdict {
    type Err = crate::validation::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verdict::ALL
            .into_iter()
            .find(|verdict| verdict.as_str() == s)
            .ok_or_else(|| crate::validation::Invalid::new(format!("unknown verdict `{s}`")))
    }
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// Whether `hex_signature` is the HMAC-SHA256 of `parts` under `secret`.
fn verify_hex(secret: &[u8], hex_signature: &str, parts: &[&[u8]]) -> Verdict {
    match hex::decode(hex_signature.trim()) {
        Ok(bytes) if mac(secret, parts).verify_slice(&bytes).is_ok() => Verdict::Valid,
        _ => Verdict::Invalid,
    }
}

/// `sha256=<hex>` of `body` under `secret`: GitHub's `X-Hub-Signature-256`.
pub fn github(secret: &[u8], body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, &[body]).finalize().into_bytes())
    )
}

/// The generic scheme's signature of `body` sent at `timestamp` (unix seconds).
pub fn generic(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let prefix = format!("{timestamp}.");
    format!(
        "sha256={}",
        hex::encode(
            mac(secret, &[prefix.as_bytes(), body])
                .finalize()
                .into_bytes()
        )
    )
}

/// Checks a delivery from `source` whose headers `header` reads, at `now`.
pub fn verify<'a>(
    source: Source,
    secret: &[u8],
    header: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
    now: Timestamp,
) -> Verdict {
    match source {
        Source::Github => match header("x-hub-signature-256") {
            None => Verdict::Missing,
            Some(value) => match value.trim().strip_prefix("sha256=") {
                Some(hex) => verify_hex(secret, hex, &[body]),
                None => Verdict::Invalid,
            },
        },
        Source::Gitea | Source::Forgejo => {
            let names: &[&str] = match source {
                Source::Forgejo => &["x-forgejo-signature", "x-gitea-signature"],
                _ => &["x-gitea-signature"],
            };
            match names.iter().find_map(|name| header(name)) {
                None => Verdict::Missing,
                Some(hex) => verify_hex(secret, hex, &[body]),
            }
        }
        Source::Gitlab => match header("x-gitlab-token") {
            None => Verdict::Missing,
            Some(token) if bool::from(token.as_bytes().ct_eq(secret)) => Verdict::Valid,
            Some(_) => Verdict::Invalid,
        },
        Source::Generic => {
            let (Some(signature), Some(timestamp)) = (
                header(GENERIC_SIGNATURE_HEADER),
                header(GENERIC_TIMESTAMP_HEADER),
            ) else {
                return Verdict::Missing;
            };
            let Some(hex) = signature.trim().strip_prefix("sha256=") else {
                return Verdict::Invalid;
            };
            let Ok(seconds) = timestamp.trim().parse::<i64>() else {
                return Verdict::Invalid;
            };
            let prefix = format!("{seconds}.");
            match verify_hex(secret, hex, &[prefix.as_bytes(), body]) {
                Verdict::Valid => {
                    let sent = Timestamp::from_second(seconds).ok();
                    let fresh = sent
                        .is_some_and(|sent| now.duration_since(sent).abs() <= GENERIC_TOLERANCE);
                    if fresh {
                        Verdict::Valid
                    } else {
                        Verdict::Expired
                    }
                }
                other => other,
            }
        }
    }
}
