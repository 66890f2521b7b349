//! Secrets at rest: AES-256-GCM under a master key that never enters the database.
//!
//! The key lives in `<data dir>/master.key` (0600, created on first start) or comes from
//! `HELVETIA_MASTER_KEY`. Its id (a hash prefix) is recorded in the database and next to
//! every sealed value, so a server started with the wrong key, or without one, refuses to
//! start instead of failing to read secrets later — and never overwrites anything. Each value
//! is sealed with a fresh random nonce and bound to its variable (the associated data names
//! the scope and variable), so a sealed value copied onto another variable does not open.
//!
//! Rotation ([`rotate`]) re-seals every secret (variables and notification channels) under a
//! new key in one transaction; the new key is written to `master.key.new` first and renamed
//! into place after the commit, and a start-up after a crash in between finishes (or undoes)
//! the switch.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use helvetia_core::auth::UserId;
use helvetia_core::certificate::CertificateSubject;
use helvetia_core::notification::secret_binding;
use helvetia_store::env::{EnvRecord, Resealed};
use helvetia_store::sealed::{GithubAppSecret, SealedAt};
use helvetia_store::{Store, StoreError};
use sha2::{Digest, Sha256};

pub const KEY_FILE: &str = "master.key";
const NEW_KEY_FILE: &str = "master.key.new";
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "the master key is missing: the database holds secrets sealed with key {expected}, but \
         neither {file} nor HELVETIA_MASTER_KEY provides a key. Restore the key file (or set \
         HELVETIA_MASTER_KEY); nothing was changed"
    )]
    Missing { expected: String, file: PathBuf },
    #[error(
        "the master key does not match: the database holds secrets sealed with key {expected}, \
         this key is {actual}. Use the key this database was set up with; nothing was changed"
    )]
    Wrong { expected: String, actual: String },
    #[error("the master key is malformed: {0} (expected 64 hexadecimal digits)")]
    Malformed(String),
    #[error("a sealed value could not be opened: it was altered, or belongs to another variable")]
    Tampered,
    #[error("cannot use the key file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The master key, ready to seal and open values.
pub struct Vault {
    cipher: Aes256Gcm,
    key_id: String,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// The binding of Helvetia's ACME account credentials.
pub const ACME_ACCOUNT_BINDING: &str = "helvetia-acme-account";

/// The binding of a certificate's private key: a domain's by the domain's id (as keys were
/// sealed before certificates had other subjects), any other by its kind and names.
pub fn certificate_key_binding(subject: &CertificateSubject) -> String {
    match subject.domain_id {
        Some(domain_id) => format!("helvetia-certificate:{domain_id}"),
        None => format!(
            "helvetia-certificate:{}:{}",
            subject.kind.as_str(),
            subject.joined_names()
        ),
    }
}

/// The binding of a user's TOTP key.
pub fn totp_binding(user: UserId) -> String {
    format!("totp:{}", user.0)
}

/// The binding of a service's receiver secret.
pub fn hook_binding(service_id: i64) -> String {
    format!("helvetia-service-hook:{service_id}")
}

/// The binding of one of the GitHub App's secrets: a sealed value moved to another column
/// does not open.
pub fn github_app_binding(secret: GithubAppSecret) -> String {
    format!("helvetia-github-app:{}", secret.as_str())
}

/// The binding of a sign-in with GitHub's PKCE verifier.
pub fn github_authorization_binding(state_hash: &str) -> String {
    format!("github-authorization:{state_hash}")
}

/// The binding of a user's GitHub token.
pub fn github_token_binding(user: UserId) -> String {
    format!("github-user-token:{}", user.0)
}

/// The binding of a session signing key.
pub fn signing_key_binding(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// The binding of a service's registry password.
pub fn registry_password_binding(service_id: i64) -> String {
    format!("helvetia-service-registry-password:{service_id}")
}

/// The binding of a value sealed in one of the places [`SealedAt`] names.
fn binding_at(at: &SealedAt) -> String {
    match at {
        SealedAt::Totp(user) => totp_binding(UserId(*user)),
        SealedAt::GithubToken(user) => github_token_binding(UserId(*user)),
        SealedAt::GithubAuthorization(state_hash) => github_authorization_binding(state_hash),
        SealedAt::SigningKey(kid) => signing_key_binding(kid),
        SealedAt::HookSecret(service_id) => hook_binding(*service_id),
        SealedAt::GithubApp(secret) => github_app_binding(*secret),
        SealedAt::RegistryPassword(service_id) => registry_password_binding(*service_id),
    }
}

/// What a sealed value is bound to: the scope and the variable's name.
pub fn binding(record_project: i64, record_service: Option<i64>, name: &str) -> String {
    format!(
        "helvetia-env:{record_project}:{}:{name}",
        record_service.unwrap_or(0)
    )
}

impl Vault {
    fn from_key(key: &[u8; 32]) -> Vault {
        let key_id = hex::encode(&Sha256::digest(key)[..8]);
        let cipher = Aes256Gcm::new(&(*key).into());
        Vault { cipher, key_id }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Seals `plaintext` for the variable named by `binding`.
    pub fn seal(&self, binding: &str, plaintext: &str) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: binding.as_bytes(),
        };
        // Encryption only fails for messages far beyond any variable's size limit.
        let sealed = self.cipher.encrypt(&nonce, payload).unwrap_or_default();
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    /// Opens a value sealed for `binding`.
    pub fn open(&self, binding: &str, sealed: &str) -> Result<String, VaultError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| VaultError::Tampered)?;
        if bytes.len() < NONCE_LEN {
            return Err(VaultError::Tampered);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Tampered)?;
        let payload = Payload {
            msg: sealed,
            aad: binding.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), payload)
            .map_err(|_| VaultError::Tampered)?;
        String::from_utf8(plain).map_err(|_| VaultError::Tampered)
    }

    /// Opens a stored secret.
    pub fn open_record(&self, record: &EnvRecord) -> Result<String, VaultError> {
        self.open(
            &binding(record.project_id, record.service_id, &record.name),
            &record.value,
        )
    }

    /// The vault for a starting server: the key from `HELVETIA_MASTER_KEY` (`env_key`) or the
    /// key file, checked against the database; a new key only when the database never had
    /// one.
    pub async fn open_for(
        data_dir: &Path,
        env_key: Option<&str>,
        store: &Store,
    ) -> Result<Vault, VaultError> {
        let expected = store.master_key_id().await?;
        finish_interrupted_rotation(data_dir, expected.as_deref())?;
        let key = match env_key {
            Some(text) => Some(parse_key(text)?),
            None => read_key_file(&data_dir.join(KEY_FILE))?,
        };
        let vault = match (key, &expected) {
            (Some(key), _) => Vault::from_key(&key),
            (None, Some(expected)) => {
                return Err(VaultError::Missing {
                    expected: expected.clone(),
                    file: data_dir.join(KEY_FILE),
                });
            }
            (None, None) => {
                let key: [u8; 32] = rand::random();
                write_key_file(&data_dir.join(KEY_FILE), &key)?;
                tracing::info!(
                    "created a new master key for secrets in {}",
                    data_dir.join(KEY_FILE).display()
                );
                Vault::from_key(&key)
            }
        };
        match expected {
            Some(expected) if expected != vault.key_id => Err(VaultError::Wrong {
                expected,
                actual: vault.key_id,
            }),
            Some(_) => Ok(vault),
            None => {
                store.set_master_key_id(&vault.key_id).await?;
                Ok(vault)
            }
        }
    }
}

fn parse_key(text: &str) -> Result<[u8; 32], VaultError> {
    let bytes = hex::decode(text.trim()).map_err(|e| VaultError::Malformed(e.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| VaultError::Malformed("wrong length".into()))
}

fn read_key_file(path: &Path) -> Result<Option<[u8; 32]>, VaultError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key(&text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(VaultError::File {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes a key file readable by its owner only, atomically (temp file, fsync, rename).
fn write_key_file(path: &Path, key: &[u8; 32]) -> Result<(), VaultError> {
    let file_error = |source| VaultError::File {
        path: path.to_owned(),
        source,
    };
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(file_error)?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
        .map_err(file_error)?;
    writeln!(file, "{}", hex::encode(key)).map_err(file_error)?;
    file.sync_all().map_err(file_error)?;
    std::fs::rename(&temporary, path).map_err(file_error)
}

/// A rotation wrote `master.key.new`, then re-sealed the secrets and recorded the new key id
/// in one transaction, then renames the file. If a crash came between: when the database has
/// the new id, the rename is finished; otherwise the new key was never used and is dropped.
fn finish_interrupted_rotation(data_dir: &Path, expected: Option<&str>) -> Result<(), VaultError> {
    let new_path = data_dir.join(NEW_KEY_FILE);
    let Some(new_key) = read_key_file(&new_path)? else {
        return Ok(());
    };
    let new_id = Vault::from_key(&new_key).key_id;
    let result = if Some(new_id.as_str()) == expected {
        tracing::warn!("finishing an interrupted master key rotation");
        std::fs::rename(&new_path, data_dir.join(KEY_FILE))
    } else {
        std::fs::remove_file(&new_path)
    };
    result.map_err(|source| VaultError::File {
        path: new_path,
        source,
    })
}

/// Re-seals every secret under a new master key. The server must not be running (the caller
/// holds the data dir lock). Returns the new key in hex when the key comes from
/// `HELVETIA_MASTER_KEY` (the caller must hand it to the operator), `None` when it was
/// written to the key file.
pub async fn rotate(
    data_dir: &Path,
    env_key: Option<&str>,
    store: &Store,
) -> Result<Option<String>, VaultError> {
    let current = Vault::open_for(data_dir, env_key, store).await?;
    let key: [u8; 32] = rand::random();
    let next = Vault::from_key(&key);
    let mut resealed = Resealed::default();
    let reseal = |binding: &str, sealed: &str| -> Result<String, VaultError> {
        Ok(next.seal(binding, &current.open(binding, sealed)?))
    };
    for record in store.all_secrets().await? {
        let binding = binding(record.project_id, record.service_id, &record.name);
        resealed
            .variables
            .push((record.id, reseal(&binding, &record.value)?));
    }
    for channel in store.sealed_channels().await? {
        let binding = secret_binding(channel.project_id, &channel.name);
        let sealed = channel.sealed_secret.unwrap_or_default();
        resealed
            .channels
            .push((channel.id, reseal(&binding, &sealed)?));
    }
    for (directory, sealed) in store.sealed_acme_accounts().await? {
        let again = reseal(ACME_ACCOUNT_BINDING, &sealed)?;
        resealed.acme_accounts.push((directory, again));
    }
    for (id, subject, sealed) in store.sealed_certificate_keys().await? {
        let again = reseal(&certificate_key_binding(&subject), &sealed)?;
        resealed.certificate_keys.push((id, again));
    }
    for (at, sealed) in store.sealed_values().await? {
        let again = reseal(&binding_at(&at), &sealed)?;
        resealed.elsewhere.push((at, again));
    }
    if env_key.is_some() {
        store.reseal_secrets(&resealed, &next.key_id).await?;
        return Ok(Some(hex::encode(key)));
    }
    let new_path = data_dir.join(NEW_KEY_FILE);
    write_key_file(&new_path, &key)?;
    store.reseal_secrets(&resealed, &next.key_id).await?;
    std::fs::rename(&new_path, data_dir.join(KEY_FILE)).map_err(|source| VaultError::File {
        path: new_path,
        source,
    })?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_variable() {
        let vault = Vault::from_key(&[7; 32]);
        let sealed = vault.seal("helvetia-env:1:2:TOKEN", "s3cret");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(
            vault.open("helvetia-env:1:2:TOKEN", &sealed).unwrap(),
            "s3cret"
        );
        assert!(matches!(
            vault.open("helvetia-env:1:2:OTHER", &sealed),
            Err(VaultError::Tampered)
        ));
        let other = Vault::from_key(&[8; 32]);
        assert!(other.open("helvetia-env:1:2:TOKEN", &sealed).is_err());
        // A fresh nonce each time: equal values do not give equal sealed forms.
        assert_ne!(sealed, vault.seal("helvetia-env:1:2:TOKEN", "s3cret"));
    }
}
