//! Bodies of `/api/v1/users`, `/api/v1/teams`, invitations and the public sign-up and
//! password-reset routes.

use helvetia_core::auth::Role;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// One `@`, a domain with a dot inside, no spaces or control characters.
    #[schema(
        max_length = 254,
        pattern = r"^\s*[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@.\x00-\x1f\x7f-\x9f][^\s@\x00-\x1f\x7f-\x9f]*\.[^\s@\x00-\x1f\x7f-\x9f]*[^\s@.\x00-\x1f\x7f-\x9f]\s*$"
    )]
    pub email: String,
    /// Shown to teammates: 1 to 100 printable characters once trimmed. Default: the address.
    #[serde(default)]
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// 12 to 1024 characters. Without one, the answer carries a link to set it.
    #[serde(default)]
    #[schema(min_length = 12, max_length = 1024)]
    pub password: Option<String>,
    /// May manage the instance's users (default false).
    #[serde(default)]
    pub instance_admin: Option<bool>,
}

/// A user account as instance administrators see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub instance_admin: bool,
    pub has_password: bool,
    pub totp_enabled: bool,
    pub disabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// A single-use link: give it to the person it is for. Shown once; only its hash is stored.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OneTimeLink {
    /// The link's secret, for the API (`token` of sign-up, reset or accept).
    pub token: String,
    /// The page that uses it, relative to the server's URL (`/signup?token=…`).
    pub path: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedUser {
    pub user: UserView,
    /// Where the user sets a password, when none was given.
    pub password_link: Option<OneTimeLink>,
}

/// Creates an account: with a sign-up link or an invitation's `token`, or without one where
/// sign-up is open to the address's domain.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    #[serde(default)]
    #[schema(max_length = 200)]
    pub token: Option<String>,
    /// Required unless the invitation names one.
    #[serde(default)]
    #[schema(
        max_length = 254,
        pattern = r"^\s*[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@.\x00-\x1f\x7f-\x9f][^\s@\x00-\x1f\x7f-\x9f]*\.[^\s@\x00-\x1f\x7f-\x9f]*[^\s@.\x00-\x1f\x7f-\x9f]\s*$"
    )]
    pub email: Option<String>,
    /// 1 to 100 printable characters once trimmed.
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
}

/// Sets a password through a reset link.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    #[schema(max_length = 200)]
    pub token: String,
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
}

/// A team and the caller's role in it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TeamView {
    #[schema(value_type = helvetia_core::name::TeamName)]
    pub name: String,
    /// The caller's role (for the system: owner).
    pub role: Role,
    /// Made for one user at sign-up: it cannot be deleted or left by that user.
    pub personal: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    #[schema(value_type = helvetia_core::name::TeamName)]
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    #[schema(value_type = String, format = DateTime)]
    pub since: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    pub role: Role,
    /// Only this address may accept it. Default: whoever holds the link.
    #[serde(default)]
    #[schema(
        max_length = 254,
        pattern = r"^\s*[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@.\x00-\x1f\x7f-\x9f][^\s@\x00-\x1f\x7f-\x9f]*\.[^\s@\x00-\x1f\x7f-\x9f]*[^\s@.\x00-\x1f\x7f-\x9f]\s*$"
    )]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvitationView {
    pub id: i64,
    pub role: Role,
    pub email: Option<String>,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedInvitation {
    pub invitation: InvitationView,
    pub link: OneTimeLink,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    #[schema(max_length = 200)]
    pub token: String,
}
