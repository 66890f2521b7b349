//! Access tokens: JWTs signed with HS256 and nothing else — and jsonwebtoken's crypto for the
//! whole process.
//!
//! jsonwebtoken is built without a crypto backend; [`PROVIDER`] is ours: HS256 on the same
//! hmac and sha2 the server uses elsewhere (signing and verifying access tokens), and, to
//! verify only, RS256 and ES256 on ring (already built for rustls) for the OpenID Connect
//! tokens CI jobs present ([`crate::oidc`]). Each verifier takes its own key family alone, so
//! an RSA or EC public key can never be read as an HMAC secret; and [`validation`] accepts
//! HS256 alone, so an access token of any other algorithm (or `none`) is refused before a
//! key is looked at. `exp`, `iss` and `aud` are required and checked, with no leeway: this
//! server both signs and verifies.

use std::sync::Once;

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result as JwtResult};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey, Validation,
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Who issues access tokens; checked on every one.
pub const ISSUER: &str = "helvetia";
/// Whom they are for: this server's API.
pub const AUDIENCE: &str = "helvetia-api";

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user's id.
    pub sub: String,
    /// The session (refresh-token family) it belongs to.
    pub sid: i64,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// The checks every access token passes.
pub fn validation() -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    validation
}

/// Installs [`PROVIDER`] as jsonwebtoken's crypto, once per process.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if PROVIDER.install_default().is_err() {
            // Another provider came first; `validation` still admits HS256 only.
            tracing::warn!("a JWT crypto provider was installed before Helvetia's");
        }
    });
}

/// HS256 on hmac + sha2, RS256 and ES256 (verifying only) on ring; every other algorithm is
/// refused.
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

struct Hs256(Hmac<Sha256>);

impl Hs256 {
    fn new(algorithm: &Algorithm, family: AlgorithmFamily, key: &[u8]) -> JwtResult<Hs256> {
        if *algorithm != Algorithm::HS256 || family != AlgorithmFamily::Hmac {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        Hmac::<Sha256>::new_from_slice(key)
            .map(Hs256)
            .map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> JwtResult<Box<dyn JwtSigner>> {
    Ok(Box::new(Hs256::new(
        algorithm,
        key.family(),
        key.as_bytes(),
    )?))
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    match (algorithm, key.family(), key.kind()) {
        (Algorithm::RS256, AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            Ok(Box::new(PublicKey::Rs256 {
                n: n.clone(),
                e: e.clone(),
            }))
        }
        (Algorithm::ES256, AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(point)) => {
            Ok(Box::new(PublicKey::Es256(point.clone())))
        }
        (Algorithm::RS256 | Algorithm::ES256, _, _) => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Ok(Box::new(Hs256::new(
            algorithm,
            key.family(),
            key.try_get_as_bytes()?,
        )?)),
    }
}

/// A public key of an OpenID Connect issuer, as its key set gives it: RSA's modulus and
/// exponent, or a P-256 point (uncompressed, `04 ‖ x ‖ y`).
enum PublicKey {
    Rs256 { n: Vec<u8>, e: Vec<u8> },
    Es256(Vec<u8>),
}

impl Verifier<Vec<u8>> for PublicKey {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), SignatureError> {
        use ring::signature;
        let verified = match self {
            PublicKey::Rs256 { n, e } => signature::RsaPublicKeyComponents { n, e }.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                message,
                signature,
            ),
            PublicKey::Es256(point) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
            }
        };
        verified.map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for PublicKey {
    fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Rs256 { .. } => Algorithm::RS256,
            PublicKey::Es256(_) => Algorithm::ES256,
        }
    }
}

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let mut mac = self.0.clone();
        mac.update(message);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), SignatureError> {
        let mut mac = self.0.clone();
        mac.update(message);
        // Constant-time.
        mac.verify_slice(signature)
            .map_err(|_| SignatureError::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}
