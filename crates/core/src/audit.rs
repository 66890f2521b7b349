//! The audit log: who changed what, and when. Written by the store in the same transaction as
//! the change it describes, so a change without an entry cannot exist.

use std::fmt;

use jiff::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    /// Who acted, e.g. `token:3(ci)` or `system`.
    pub actor: String,
    /// What was done, e.g. `service.create` ([`AuditAction::as_str`]). Read back as text: the
    /// log keeps what earlier releases wrote.
    pub action: String,
    /// What it was done to, e.g. `demo/web`.
    pub target: String,
    /// The address the request came from (as the trusted-proxy rules resolved it); `null` for
    /// the server's own actions.
    pub client: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
}

/// What an audit entry records. Stored as [`AuditAction::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    ProjectCreate,
    ProjectDelete,
    ServiceCreate,
    ServiceUpdate,
    /// A service's capabilities or read-only root changed (the target says what they are now).
    ServicePrivileges,
    ServiceDelete,
    ServiceStop,
    DeploymentCreate,
    DeploymentCancel,
    /// A service's push-webhook secret was made or replaced (never the secret itself).
    HookSecretRotate,
    /// A service's deploy-on-push settings changed (auto-deploy, watch paths, cancelling).
    HookSettings,
    EnvSet,
    EnvUnset,
    /// A secret's value was read.
    EnvReveal,
    VolumeAdd,
    VolumeRemove,
    /// A project's notification channel was added, changed or removed (the target names it).
    NotificationChannelAdd,
    NotificationChannelUpdate,
    NotificationChannelRemove,
    /// A test message was queued for a channel.
    NotificationTest,
    TokenCreate,
    TokenRevoke,
    UserCreate,
    UserDisable,
    SignIn,
    /// A sign-in that failed (wrong password or code, locked out); the target says why.
    SignInFailed,
    SignOut,
    /// A replayed refresh token revoked its whole session.
    SessionRevoke,
    PasswordChange,
    /// A password-reset or sign-up link was issued.
    LinkCreate,
    TotpEnable,
    TotpDisable,
    RecoveryCodeUse,
    DeviceApprove,
    DeviceDeny,
    SigningKeyRotate,
    /// The instance's GitHub App was configured (through the manifest flow or by hand).
    GitHubAppConfigure,
    /// A service was linked to a GitHub App installation (its clones use that installation's
    /// tokens).
    ServiceGitHubInstallation,
    TeamCreate,
    TeamDelete,
    InvitationCreate,
    InvitationAccept,
    InvitationRevoke,
    MemberRole,
    MemberRemove,
    /// A GitHub account was linked to a Helvetia account (the target names it).
    GitHubLink,
    /// A service was made to trust an OpenID Connect issuer's tokens for deploys from CI (the
    /// target names the claims it wants).
    TrustAdd,
    TrustRemove,
    /// A service's preview settings changed.
    PreviewSettings,
    /// A preview was made (for a pull request or a branch).
    PreviewCreate,
    /// A fork's head commit was approved for its preview (the target names the commit).
    PreviewApprove,
    PreviewRemove,
    DomainAdd,
    DomainRemove,
    /// A domain was verified and routed, or forced (the target says how).
    DomainVerify,
    DomainPrimary,
    /// A domain's basic auth or HSTS was set or cleared (the target says which).
    DomainSettings,
    /// A service's registry login was set or removed (the target names the user, never the
    /// password).
    ServiceRegistryLogin,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::ProjectCreate => "project.create",
            AuditAction::ProjectDelete => "project.delete",
            AuditAction::ServiceCreate => "service.create",
            AuditAction::ServiceUpdate => "service.update",
            AuditAction::ServicePrivileges => "service.privileges",
            AuditAction::ServiceDelete => "service.delete",
            AuditAction::ServiceStop => "service.stop",
            AuditAction::DeploymentCreate => "deployment.create",
            AuditAction::DeploymentCancel => "deployment.cancel",
            AuditAction::HookSecretRotate => "hook.secret_rotate",
            AuditAction::HookSettings => "hook.settings",
            AuditAction::EnvSet => "env.set",
            AuditAction::EnvUnset => "env.unset",
            AuditAction::EnvReveal => "env.reveal",
            AuditAction::VolumeAdd => "volume.add",
            AuditAction::VolumeRemove => "volume.remove",
            AuditAction::NotificationChannelAdd => "notification.channel_add",
            AuditAction::NotificationChannelUpdate => "notification.channel_update",
            AuditAction::NotificationChannelRemove => "notification.channel_remove",
            AuditAction::NotificationTest => "notification.test",
            AuditAction::TokenCreate => "token.create",
            AuditAction::TokenRevoke => "token.revoke",
            AuditAction::UserCreate => "user.create",
            AuditAction::UserDisable => "user.disable",
            AuditAction::SignIn => "auth.signin",
            AuditAction::SignInFailed => "auth.signin_failed",
            AuditAction::SignOut => "auth.signout",
            AuditAction::SessionRevoke => "auth.session_revoke",
            AuditAction::PasswordChange => "auth.password_change",
            AuditAction::LinkCreate => "auth.link_create",
            AuditAction::TotpEnable => "auth.totp_enable",
            AuditAction::TotpDisable => "auth.totp_disable",
            AuditAction::RecoveryCodeUse => "auth.recovery_code_use",
            AuditAction::DeviceApprove => "auth.device_approve",
            AuditAction::DeviceDeny => "auth.device_deny",
            AuditAction::SigningKeyRotate => "auth.signing_key_rotate",
            AuditAction::GitHubAppConfigure => "github.app_configure",
            AuditAction::ServiceGitHubInstallation => "service.github_installation",
            AuditAction::TeamCreate => "team.create",
            AuditAction::TeamDelete => "team.delete",
            AuditAction::InvitationCreate => "team.invitation_create",
            AuditAction::InvitationAccept => "team.invitation_accept",
            AuditAction::InvitationRevoke => "team.invitation_revoke",
            AuditAction::MemberRole => "team.member_role",
            AuditAction::MemberRemove => "team.member_remove",
            AuditAction::GitHubLink => "auth.github_link",
            AuditAction::TrustAdd => "service.trust_add",
            AuditAction::TrustRemove => "service.trust_remove",
            AuditAction::PreviewSettings => "service.preview_settings",
            AuditAction::PreviewCreate => "preview.create",
            AuditAction::PreviewApprove => "preview.approve",
            AuditAction::PreviewRemove => "preview.remove",
            AuditAction::DomainAdd => "domain.add",
            AuditAction::DomainRemove => "domain.remove",
            AuditAction::DomainVerify => "domain.verify",
            AuditAction::DomainPrimary => "domain.primary",
            AuditAction::DomainSettings => "domain.settings",
            AuditAction::ServiceRegistryLogin => "service.registry_login",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
