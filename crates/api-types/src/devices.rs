//! Bodies of `/api/v1/auth/device…`: `helvetia login` through the browser, the OAuth 2.0 device
//! authorization grant (RFC 8628).

use serde::{Deserialize, Serialize};

/// The grant type RFC 8628 §3.4 names for redeeming a device code.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartDeviceLogin {
    /// What the client calls itself, e.g. `helvetia on laptop`; the token is named
    /// `CLI: <client_name>`. 1 to 64 printable characters once trimmed.
    #[schema(
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub client_name: String,
}

/// A device authorization (RFC 8628 §3.2): show `user_code` and `verification_uri` to the
/// user, then poll `/api/v1/auth/device/token` with `device_code` every `interval` seconds.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceLogin {
    /// The client's secret for redeeming the token; never shown to the user.
    pub device_code: String,
    /// What the user confirms in the browser, as `XXXX-XXXX`.
    pub user_code: String,
    pub verification_uri: String,
    /// `verification_uri` with the user code filled in.
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: i64,
    /// Seconds to wait between polls.
    pub interval: i64,
}

/// A poll for the token (RFC 8628 §3.4), as JSON or as the RFC's form
/// (`application/x-www-form-urlencoded`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PollDeviceLogin {
    pub device_code: String,
    /// `urn:ietf:params:oauth:grant-type:device_code` (required by the RFC, optional here).
    #[serde(default)]
    pub grant_type: Option<String>,
    /// Accepted and ignored: Helvetia's device logins are not bound to a registered client.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// The approved login's token: a personal API token of the user who approved it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceToken {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
}

/// Why there is no token (yet), in the shape RFC 6749 §5.2 gives OAuth errors — not the API's
/// usual error body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceTokenError {
    /// `authorization_pending` (poll again after the interval), `slow_down` (poll again, 5 s
    /// less often), `access_denied`, `expired_token`, `invalid_grant` (unknown or already
    /// redeemed device code), `invalid_request`, `unsupported_grant_type`.
    pub error: String,
    pub error_description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideDeviceLogin {
    /// The code the CLI shows; case and the dash do not matter.
    #[schema(
        pattern = "^[BCDFGHJKLMNPQRSTVWXZbcdfghjklmnpqrstvwxz]{4}-?[BCDFGHJKLMNPQRSTVWXZbcdfghjklmnpqrstvwxz]{4}$"
    )]
    pub user_code: String,
    /// `true` hands the CLI a token of yours; `false` refuses it.
    pub approve: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceLoginDecided {
    /// The name the CLI gave itself.
    pub client_name: String,
    pub approved: bool,
}
