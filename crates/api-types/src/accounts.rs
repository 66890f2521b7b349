//! Bodies of `/api/v1/auth/…` (signing in, refreshing, signing out) and of the caller's own
//! account security under `/api/v1/me/…` (password, TOTP).

use serde::{Deserialize, Serialize};

/// Sign in with an e-mail address and a password, plus a second factor when the account has
/// TOTP enabled.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[schema(format = Email)]
    pub email: String,
    pub password: String,
    /// The current 6-digit code of the account's authenticator app.
    #[serde(default)]
    pub totp_code: Option<String>,
    /// One of the account's recovery codes, instead of a TOTP code; each works once.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

/// A session's tokens. Browsers get them as cookies too; API and CLI clients keep them.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedIn {
    /// A JWT to send as `Authorization: Bearer …`; good for `expires_in` seconds.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
    /// Exchanged for new tokens at `POST /api/v1/auth/refresh`; each works once.
    pub refresh_token: String,
}

/// A refresh token, for refreshing or ending its session. Browsers leave it out: theirs is in
/// the `helvetia_refresh` cookie.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshToken {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Change the caller's password; every other session of theirs ends.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    /// 12 to 1024 characters.
    #[schema(min_length = 12, max_length = 1024)]
    pub new_password: String,
}

/// A TOTP enrolment begun: add the secret to an authenticator app (the URI is what a QR code
/// holds), then confirm with a code.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TotpEnrolment {
    /// Base32, as authenticator apps take it typed in.
    pub secret: String,
    /// `otpauth://totp/…`.
    pub uri: String,
}

/// A code from the authenticator app.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

/// TOTP is enabled. The recovery codes are shown this once; each signs in once in place of a
/// TOTP code.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// Turn TOTP off, proving it is the account's owner with the password or a current code.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableTotp {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

/// The signing key that signs access tokens from now on.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SigningKeyRotated {
    pub kid: String,
}

/// Where to send the browser to authorize Helvetia on GitHub (linking the caller's account).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GitHubAuthorize {
    pub authorize_url: String,
}

/// An installation of Helvetia's GitHub App that the user reaches.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GitHubInstallation {
    pub id: i64,
    /// The GitHub user or organization the App is installed on.
    pub account: String,
}

/// A repository an installation grants.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GitHubRepository {
    pub id: i64,
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    pub private: bool,
    pub default_branch: Option<String>,
    /// Where git clones it from (`{GitHub}/{owner}/{name}.git`).
    pub clone_url: String,
}
