//! The HTTP API's contract: every JSON body the server accepts or answers, in one place.
//!
//! The server serialises its answers from these types (and derives the OpenAPI schemas from
//! them); the CLI deserialises the same answers into them. A field renamed here changes both
//! sides at once; a CLI talking to a server of another version fails to read an answer that
//! lacks a field it knows instead of showing a blank. Where the core's own types already are
//! exactly what goes over the wire (a deployment, a transition, a container, a token), they
//! are used as they are and re-exported here; the views below add what the API shows beside
//! them (a service's URL, a volume's size).
//!
//! Only data: no I/O, no validation beyond the shape (the server checks values with the
//! core's validators).

mod accounts;
mod certificates;
mod deployments;
mod devices;
mod disk;
mod domains;
mod env;
mod github;
mod hooks;
mod metrics;
mod notifications;
mod oidc;
mod previews;
mod projects;
mod services;
mod teams;
mod tokens;
mod volumes;

pub use accounts::{
    ChangePassword, DisableTotp, GitHubAuthorize, GitHubInstallation, GitHubRepository,
    RecoveryCodes, RefreshToken, SignIn, SignedIn, SigningKeyRotated, TotpCode, TotpEnrolment,
};
pub use certificates::CertificateView;
pub use deployments::{CreateDeployment, DeploymentDetail, LogLines, Rollback, StatusEvent};
pub use devices::{
    DEVICE_CODE_GRANT, DecideDeviceLogin, DeviceLogin, DeviceLoginDecided, DeviceToken,
    DeviceTokenError, PollDeviceLogin, StartDeviceLogin,
};
pub use disk::{DiskBytes, DiskView};
pub use domains::{AddDomain, SetBasicAuth, SetHsts, UploadCertificate};
pub use env::{EnvChanged, EnvVarView, ImportEnv, RevealedVar, SetEnv, UnsetEnv, VarScope};
pub use github::{GitHubAppInput, GitHubAppView, GitHubManifestForm, StartGitHubManifest};
pub use hooks::{HookReceipt, HookResult, HookSecret, HookView, UpdateHook};
pub use metrics::{CurrentMetrics, MetricsHealth, MetricsSeries};
pub use notifications::{
    AttemptView, ChannelView, CreateChannel, CreatedChannel, MessageView, SmtpInput, TestQueued,
    UpdateChannel,
};
pub use oidc::{CreateTrust, OidcDeploy};
pub use previews::{ApprovePreview, DeployPreview, PreviewDeployed, PreviewView};
pub use projects::CreateProject;
pub use services::{
    CreateService, DetectedStack, GitHubSource, ServiceGitHub, ServiceSettings, ServiceStatus,
    ServiceView, UpdatedService,
};
pub use teams::{
    AcceptInvitation, CreateInvitation, CreateTeam, CreateUser, CreatedInvitation, CreatedUser,
    InvitationView, MemberView, OneTimeLink, PasswordReset, SetRole, SignUp, TeamView, UserView,
};
pub use tokens::{CreateToken, CreatedToken, Me, MeUser, TeamRole};
pub use volumes::{AddVolume, VolumeChange, VolumeView};

pub use helvetia_core::audit::AuditEntry;
pub use helvetia_core::auth::{ApiToken, Role, Scope};
pub use helvetia_core::certificate::{
    Certificate, CertificateKind, CertificateSource, CertificateState,
};
pub use helvetia_core::container::{ContainerRecord, Health, OutputLine, ServiceEvent};
pub use helvetia_core::deployment::{
    Deployment, DeploymentCause, DeploymentStatus, LogLine, Transition,
};
pub use helvetia_core::domain::{BasicAuthUser, Domain, Hsts, Verification};
pub use helvetia_core::env::EnvVarInput;
pub use helvetia_core::metrics::{ContainerSample, Resolution, SeriesPoint, Usage};
pub use helvetia_core::notification::{
    ChannelKind, EventKind, MessageStatus, NotificationEvent, SmtpTls,
};
pub use helvetia_core::oidc::Trust;
pub use helvetia_core::preview::{PreviewSettings, PreviewSettingsInput};
pub use helvetia_core::project::Project;
pub use helvetia_core::runtime::RuntimeSettings;
pub use helvetia_core::service::{PortInput, ServiceInput};
pub use helvetia_core::volume::Volume;
pub use helvetia_core::webhook::{Delivery, Outcome, Source, Verdict};
