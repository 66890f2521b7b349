//! The instance's GitHub App: what an instance administrator reads and enters, and the form
//! that creates the App on GitHub through its manifest flow. Secrets go in, never come out.

use serde::{Deserialize, Serialize};

/// The GitHub App as configured: its identifiers and which secrets are set — never a secret.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GitHubAppView {
    /// Whether an App is configured (the other fields are `null` when not).
    pub configured: bool,
    pub app_id: Option<i64>,
    /// Known for an App created through the manifest flow.
    pub slug: Option<String>,
    pub client_id: Option<String>,
    /// Whether the private key, client secret and webhook secret are stored (sealed).
    pub secrets_set: bool,
}

/// An App entered by hand (one made on GitHub's settings page).
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GitHubAppInput {
    #[schema(minimum = 1)]
    pub app_id: i64,
    #[schema(min_length = 1, max_length = 100)]
    pub client_id: String,
    #[schema(min_length = 1, max_length = 200)]
    pub client_secret: String,
    /// The App's private key, PEM (PKCS#1 as GitHub hands it out, or PKCS#8).
    #[schema(min_length = 1, max_length = 16384)]
    pub private_key: String,
    #[schema(min_length = 1, max_length = 200)]
    pub webhook_secret: String,
}

impl std::fmt::Debug for GitHubAppInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubAppInput")
            .field("app_id", &self.app_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Where to create the App: the administrator's own account, or an organization's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartGitHubManifest {
    /// The organization that will own the App (default: the signed-in GitHub user).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$")]
    pub organization: Option<String>,
}

/// The form a browser POSTs to GitHub to create the App: `manifest` and `state` as form fields
/// to `action`. GitHub then sends the browser to the callback with a code.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GitHubManifestForm {
    pub action: String,
    /// The manifest, JSON, as the form field's value.
    pub manifest: String,
    /// Single-use, good for 10 minutes, for the administrator who started the flow.
    pub state: String,
}
