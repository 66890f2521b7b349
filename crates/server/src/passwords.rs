//! Password hashing: argon2id, the one algorithm, with parameters written down here and in
//! the docs.
//!
//! Parameters: 19 MiB of memory, 2 passes, 1 lane — OWASP's first recommended argon2id
//! configuration — with a 16-byte random salt and a 32-byte output, stored as a PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$…`), so a later change of parameters still verifies old
//! hashes. Hashing takes tens of milliseconds of CPU, so it runs on the blocking pool, never
//! on the async workers.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory in KiB, passes and lanes: OWASP's argon2id recommendation.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

fn argon2() -> Argon2<'static> {
    // The constants are within argon2's bounds, so building the parameters cannot fail.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, Some(32)).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, thiserror::Error)]
#[error("hashing the password failed: {0}")]
pub struct HashError(String);

/// The PHC string of `password` with a new random salt.
pub async fn hash(password: String) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| HashError(e.to_string()))
    })
    .await
    .map_err(|e| HashError(e.to_string()))?
}

/// True when `password` matches the PHC string `hash`. A malformed hash matches nothing.
pub async fn verify(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// Spends what a verification costs, for an account that does not exist: a sign-in for an
/// unknown e-mail takes as long as one with a wrong password, so timing does not tell which
/// accounts exist.
pub async fn verify_nothing(password: String) {
    let _ = hash(password).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hash = hash("correct horse battery".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify(hash.clone(), "correct horse battery".into()).await);
        assert!(!verify(hash.clone(), "correct horse battery!".into()).await);
        assert!(!verify("not a hash".into(), "anything".into()).await);
        let again = super::hash("correct horse battery".into()).await.unwrap();
        assert_ne!(hash, again, "each hash has its own salt");
    }
}
