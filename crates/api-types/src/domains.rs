//! A service's custom domains.

use serde::{Deserialize, Serialize};

/// A domain to add to a service.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    /// The domain (Unicode or ASCII; `*.example.com` for a wildcard, verified by its DNS).
    #[schema(min_length = 1, max_length = 253)]
    pub name: String,
    /// Only requests under this path go to the service (`/api`): the rest of the domain may
    /// be another service's.
    #[schema(pattern = "^/[A-Za-z0-9._~%/-]+$", max_length = 200)]
    pub path_prefix: Option<String>,
    /// Answer every request with a permanent redirect to the service's primary domain (an
    /// alias: `www` to the apex, or the other way).
    #[serde(default)]
    pub redirect: bool,
    /// Route it without a check (team admins).
    #[serde(default)]
    pub force: bool,
}

/// HTTP basic auth in front of a domain: its hosts ask for these credentials (Helvetia's own
/// `/.well-known/…` paths excepted). The password is kept only as a bcrypt hash.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBasicAuth {
    /// Visible ASCII characters, no `:`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-9;-~]+$")]
    pub user: String,
    /// 8 to 72 printable ASCII characters; never shown again.
    #[schema(min_length = 8, max_length = 72, pattern = "^[ -~]+$")]
    pub password: String,
}

impl std::fmt::Debug for SetBasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetBasicAuth")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// HSTS for a domain: its HTTPS answers carry `Strict-Transport-Security` once its
/// certificate is served (never plain HTTP ones).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetHsts {
    /// How long browsers keep to HTTPS, in seconds; a year when left out.
    #[schema(maximum = 63_072_000)]
    pub max_age_seconds: Option<u64>,
    #[serde(default)]
    pub include_subdomains: bool,
    /// Needs `include_subdomains` and at least a year.
    #[serde(default)]
    pub preload: bool,
}

/// A certificate of the user's own for a domain (instead of one Helvetia orders): served as it
/// is until replaced or removed, never renewed (its coming expiry is notified). The key is
/// sealed at rest and never shown again.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadCertificate {
    /// The PEM chain, the domain's certificate first, then the intermediates.
    #[schema(min_length = 1, max_length = 65536)]
    pub chain_pem: String,
    /// The certificate's PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[schema(min_length = 1, max_length = 16384)]
    pub key_pem: String,
}

impl std::fmt::Debug for UploadCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadCertificate")
            .field("chain_pem", &self.chain_pem.len())
            .field("key_pem", &"***")
            .finish()
    }
}
