//! The GitHub App's JWT: RS256 (RSASSA-PKCS1-v1_5 with SHA-256) over the compact JWS signing
//! input, signed with the App's private key. GitHub accepts it for at most 10 minutes; this one
//! is issued a minute in the past (clock drift) and lasts until 9 minutes from now.
//!
//! jsonwebtoken is built without crypto backends (the server's HS256 provider is the only one
//! that verifies), so signing here uses ring — already built for rustls — directly.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::{SignedDuration, Timestamp};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

use super::GitHubError;

/// How far back `iat` is put, for a GitHub clock a little behind ours.
const BACKDATE: SignedDuration = SignedDuration::from_secs(60);
/// How long after now the JWT expires (GitHub refuses more than 10 minutes).
const LIFETIME: SignedDuration = SignedDuration::from_secs(9 * 60);

/// The App's private key, parsed once.
pub struct AppKey(RsaKeyPair);

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey(..)")
    }
}

impl AppKey {
    /// Reads a PEM private key: PKCS#1 (`RSA PRIVATE KEY`, what GitHub hands out) or PKCS#8
    /// (`PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<AppKey, GitHubError> {
        let invalid = |why: &str| GitHubError::InvalidKey(why.to_owned());
        let (label, der) = pem_body(pem).ok_or_else(|| invalid("not a PEM private key"))?;
        let der = STANDARD
            .decode(der)
            .map_err(|_| invalid("its base64 does not decode"))?;
        let pair = match label {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            _ => return Err(invalid("not an RSA private key")),
        };
        pair.map(AppKey)
            .map_err(|rejected| invalid(&rejected.to_string()))
    }

    /// A JWT for the App `app_id` (its `iss`), good from a minute before `now` to 9 minutes
    /// after.
    pub fn jwt(&self, app_id: i64, now: Timestamp) -> Result<String, GitHubError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": (now - BACKDATE).as_second(),
            "exp": (now + LIFETIME).as_second(),
            "iss": app_id.to_string(),
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{claims}");
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| GitHubError::InvalidKey("it could not sign".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// A PEM block's label and its base64 body (line breaks removed).
fn pem_body(pem: &str) -> Option<(&str, String)> {
    let rest = pem.trim().strip_prefix("-----BEGIN ")?;
    let (label, rest) = rest.split_once("-----")?;
    let (body, _) = rest.split_once(&format!("-----END {label}-----"))?;
    Some((label, body.split_whitespace().collect()))
}

#[cfg(test)]
mod tests {
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    use super::*;

    /// A 2048-bit key made for these tests only (PKCS#1, as GitHub hands them out).
    const KEY: &str = include_str!("test-app-key.pem");

    #[test]
    fn the_jwt_verifies_with_the_public_key_and_claims_what_github_asks() {
        let key = AppKey::from_pem(KEY).unwrap();
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let jwt = key.jwt(42, now).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "42");
        assert_eq!(claims["iat"], 1_700_000_000 - 60);
        assert_eq!(claims["exp"], 1_700_000_000 + 9 * 60);
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.0.public().as_ref());
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        public.verify(input.as_bytes(), &signature).unwrap();
        assert!(public.verify(b"other", &signature).is_err());
    }

    #[test]
    fn what_is_not_an_rsa_private_key_is_refused_without_echoing_it() {
        for pem in [
            "",
            "secret-material",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
        ] {
            let error = AppKey::from_pem(pem).unwrap_err().to_string();
            assert!(
                !error.contains("AAAA") && !error.contains("secret"),
                "{error}"
            );
        }
    }
}
