//! A service's settings: where its code is, how to build it, which port it listens on.
//!
//! [`ServiceInput`] is what a client sends (every field optional, unvalidated);
//! [`ServiceSettings`] is what the rest of Helvetia works with (complete and valid). Creating a
//! service fills the gaps with defaults; updating one overlays the input on the current settings.

use std::fmt;

use jiff::Timestamp;

use crate::git::{GitRef, RepoPolicy, RepoUrl};
use crate::image::ImageRef;
use crate::name::{ProjectName, ServiceName};
use crate::preview::PreviewLabel;
use crate::runtime::RuntimeSettings;
use crate::validation::{FieldErrors, Invalid, is_control};

/// The TCP port the service's container listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "i64", into = "u16")]
pub struct Port(u16);

impl Port {
    pub const DEFAULT: Port = Port(8080);

    pub fn new(value: i64) -> Result<Self, Invalid> {
        match u16::try_from(value) {
            Ok(port) if port != 0 => Ok(Port(port)),
            _ => Err(Invalid::new("must be a port between 1 and 65535")),
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for Port {
    type Error = Invalid;
    fn try_from(value: i64) -> Result<Self, Invalid> {
        Port::new(value)
    }
}

impl From<Port> for u16 {
    fn from(port: Port) -> u16 {
        port.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

const MAX_PATH_LEN: usize = 1024;

/// A path inside the repository (the Dockerfile, the build context): relative, with no `..`
/// component, so a build can never read outside its checkout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct RepoPath(String);

impl RepoPath {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if value.is_empty() {
            return Err(Invalid::new("must not be empty"));
        }
        if value.len() > MAX_PATH_LEN {
            return Err(Invalid::new(format!(
                "must be at most {MAX_PATH_LEN} characters"
            )));
        }
        if value.chars().any(is_control) {
            return Err(Invalid::new("must not contain control characters"));
        }
        if value.starts_with('/') || value.starts_with('-') {
            return Err(Invalid::new(
                "must be a path relative to the repository root, not starting with '/' or '-'",
            ));
        }
        if value.split('/').any(|part| part == "..") {
            return Err(Invalid::new("must not contain `..` components"));
        }
        Ok(RepoPath(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for RepoPath {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::validation::string_schema(
            "A path relative to the repository's root: not starting with `/` or `-`, no \
                 `..` component, no control characters; at most 1024 bytes.",
            MAX_PATH_LEN,
            r"^(?!/)(?!-)(?!(.*/)?\.\.(/|$))[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$",
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for RepoPath {}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A service: one app built from one repository (or run from one registry image), reachable at
/// `<service>.<project>.<base-domain>`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Service {
    pub id: i64,
    pub project_id: i64,
    pub project: ProjectName,
    pub name: ServiceName,
    #[serde(flatten)]
    pub settings: ServiceSettings,
    pub runtime: RuntimeSettings,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Counts the changes of the service's settings: 1 when created, one more per change.
    pub revision: i64,
    /// The GitHub repository the service was created from, whose App installation's tokens
    /// clone it; `None` for a repository reached without credentials.
    pub github: Option<GitHubLink>,
    /// Set for a preview: the service it previews and what tells it apart.
    pub preview: Option<PreviewOf>,
    /// The user name its image is pulled as, for a service run from a registry that wants a
    /// login (its password is sealed apart, never part of the service).
    pub registry_user: Option<String>,
}

/// What makes a service a preview of another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreviewOf {
    pub parent_id: i64,
    pub parent: ServiceName,
    pub label: PreviewLabel,
}

/// A service's link to a repository on GitHub through an installation of the instance's App.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GitHubLink {
    pub installation_id: i64,
    /// GitHub's id of the repository: unchanged when it is renamed or moved, so webhook
    /// deliveries are matched by it.
    pub repository_id: i64,
    /// `owner/name`, as GitHub spelled it when the link was made.
    pub full_name: String,
}

/// A service's validated settings. The API shows them as `helvetia_api_types::ServiceSettings`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceSettings {
    pub source: ServiceSource,
    pub branch: GitRef,
    pub dockerfile: RepoPath,
    pub context: RepoPath,
    /// `None` for a worker: a service that serves no HTTP and gets no route.
    pub port: Option<Port>,
}

/// Where a service's code comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceSource {
    /// A git repository, fetched and built at each deploy.
    Repository(RepoUrl),
    /// A registry image, pulled (a tag resolved to its digest) at each deploy: no clone, no
    /// build.
    Image(ImageRef),
}

impl ServiceSettings {
    /// The repository it is built from; `None` for a service run from an image.
    pub fn repo(&self) -> Option<&RepoUrl> {
        match &self.source {
            ServiceSource::Repository(repo) => Some(repo),
            ServiceSource::Image(_) => None,
        }
    }

    /// The image it runs; `None` for a service built from a repository.
    pub fn image(&self) -> Option<&ImageRef> {
        match &self.source {
            ServiceSource::Image(image) => Some(image),
            ServiceSource::Repository(_) => None,
        }
    }
}

/// Settings as a client sends them. Absent fields take defaults on create and keep their value
/// on update.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    /// Git repository URL (https, http, ssh, git or `user@host:path`), without credentials.
    /// Which locations are accepted is the server's policy (local paths only with
    /// `--allow-local-repos`; loopback and private addresses only with
    /// `--allow-private-destinations`; link-local and metadata addresses never): a refused one
    /// is a 422.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 2048,
            pattern = r"^[^-\s\x00-\x1f\x7f-\x9f][^\s\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub repo: Option<String>,
    /// A registry image to run instead of building a repository:
    /// `registry[:port]/path:tag` or `registry[:port]/path@sha256:…`. A tag is resolved to its
    /// digest at every deploy. Setting it replaces `repo` (and setting `repo` replaces it).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<ImageRef>))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The user the image is pulled as; `""` removes the login. Needs `registry_password`.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 0, max_length = 255, pattern = r"^[!-9;-~]*$")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_user: Option<String>,
    /// The password or token of `registry_user`: sealed, never shown again.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 4096,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_password: Option<String>,
    /// Branch deployed by default. Default: `main`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<GitRef>))]
    pub branch: Option<String>,
    /// Dockerfile path inside the repository. Default: `Dockerfile`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<RepoPath>))]
    pub dockerfile: Option<String>,
    /// Build context inside the repository. Default: `.`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<RepoPath>))]
    pub context: Option<String>,
    /// Port the app listens on inside its container (default 8080), or `"none"` for a worker
    /// that serves no HTTP.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<PortInput>))]
    pub port: Option<PortInput>,
    /// Changes to the runtime settings (health check, timeouts, limits) as a JSON merge patch:
    /// fields sent replace, `null` resets to the default, others are kept.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::runtime::RuntimeSettings>))]
    pub runtime: Option<serde_json::Value>,
}

/// A port as a client sends it: a number, or `"none"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum PortInput {
    Number(i64),
    Keyword(String),
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for PortInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .description(Some(
                "A port between 1 and 65535, or `\"none\"` for a worker.",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(65535)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["none"])),
            )
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for PortInput {}

impl PortInput {
    fn parse(&self) -> Result<Option<Port>, Invalid> {
        match self {
            PortInput::Number(port) => Port::new(*port).map(Some),
            PortInput::Keyword(keyword) if keyword == "none" => Ok(None),
            PortInput::Keyword(_) => Err(Invalid::new(
                "must be a port between 1 and 65535, or \"none\"",
            )),
        }
    }
}

pub const DEFAULT_BRANCH: &str = "main";
pub const DEFAULT_DOCKERFILE: &str = "Dockerfile";
pub const DEFAULT_CONTEXT: &str = ".";

impl ServiceSettings {
    /// Settings for a new service. The repository (or the image) is required; everything else
    /// has a default.
    pub fn create(input: &ServiceInput, policy: RepoPolicy) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let source = match (&input.repo, &input.image) {
            (Some(repo), None) => errors
                .check("repo", RepoUrl::parse(repo, policy))
                .map(ServiceSource::Repository),
            (None, Some(image)) => errors
                .check("image", ImageRef::parse(image, policy.destinations))
                .map(ServiceSource::Image),
            (Some(_), Some(_)) => {
                errors.add(
                    "image",
                    Invalid::new("give either `repo` or `image`, not both"),
                );
                None
            }
            (None, None) => {
                errors.add("repo", Invalid::new("is required (or `image`)"));
                None
            }
        };
        let branch = errors.check(
            "branch",
            GitRef::parse(input.branch.as_deref().unwrap_or(DEFAULT_BRANCH)),
        );
        let dockerfile = errors.check(
            "dockerfile",
            RepoPath::parse(input.dockerfile.as_deref().unwrap_or(DEFAULT_DOCKERFILE)),
        );
        let context = errors.check(
            "context",
            RepoPath::parse(input.context.as_deref().unwrap_or(DEFAULT_CONTEXT)),
        );
        let port = match &input.port {
            Some(port) => errors.check("port", port.parse()),
            None => Some(Some(Port::DEFAULT)),
        };
        errors.finish(|| {
            Some(ServiceSettings {
                source: source?,
                branch: branch?,
                dockerfile: dockerfile?,
                context: context?,
                port: port?,
            })
        })
    }

    /// These settings with the fields present in `input` replaced.
    pub fn update(&self, input: &ServiceInput, policy: RepoPolicy) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut next = self.clone();
        match (&input.repo, &input.image) {
            (Some(_), Some(_)) => {
                errors.add(
                    "image",
                    Invalid::new("give either `repo` or `image`, not both"),
                );
            }
            (Some(repo), None) => {
                if let Some(repo) = errors.check("repo", RepoUrl::parse(repo, policy)) {
                    next.source = ServiceSource::Repository(repo);
                }
            }
            (None, Some(image)) => {
                if let Some(image) =
                    errors.check("image", ImageRef::parse(image, policy.destinations))
                {
                    next.source = ServiceSource::Image(image);
                }
            }
            (None, None) => {}
        }
        if let Some(branch) = &input.branch {
            next.branch = errors
                .check("branch", GitRef::parse(branch))
                .unwrap_or(next.branch);
        }
        if let Some(dockerfile) = &input.dockerfile {
            next.dockerfile = errors
                .check("dockerfile", RepoPath::parse(dockerfile))
                .unwrap_or(next.dockerfile);
        }
        if let Some(context) = &input.context {
            next.context = errors
                .check("context", RepoPath::parse(context))
                .unwrap_or(next.context);
        }
        if let Some(port) = &input.port {
            next.port = errors.check("port", port.parse()).unwrap_or(next.port);
        }
        errors.finish(|| Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RepoPolicy = RepoPolicy {
        allow_local: false,
        destinations: crate::outbound::DestinationPolicy {
            allow_private: false,
        },
    };

    fn input(repo: &str) -> ServiceInput {
        ServiceInput {
            repo: Some(repo.to_owned()),
            ..ServiceInput::default()
        }
    }

    #[test]
    fn create_fills_defaults() {
        let settings =
            ServiceSettings::create(&input("https://example.org/a.git"), POLICY).unwrap();
        assert_eq!(settings.branch.as_str(), "main");
        assert_eq!(settings.dockerfile.as_str(), "Dockerfile");
        assert_eq!(settings.context.as_str(), ".");
        assert_eq!(settings.port, Some(Port::DEFAULT));
    }

    #[test]
    fn create_reports_every_bad_field() {
        let bad = ServiceInput {
            repo: None,
            branch: Some("-x".into()),
            dockerfile: Some("../Dockerfile".into()),
            context: Some("/etc".into()),
            port: Some(PortInput::Number(70000)),
            ..ServiceInput::default()
        };
        let errors = ServiceSettings::create(&bad, POLICY).unwrap_err();
        let fields: Vec<_> = errors.fields().keys().map(String::as_str).collect();
        assert_eq!(fields, ["branch", "context", "dockerfile", "port", "repo"]);
    }

    #[test]
    fn update_keeps_absent_fields() {
        let settings =
            ServiceSettings::create(&input("https://example.org/a.git"), POLICY).unwrap();
        let patch = ServiceInput {
            port: Some(PortInput::Number(3000)),
            ..ServiceInput::default()
        };
        let next = settings.update(&patch, POLICY).unwrap();
        assert_eq!(next.port.map(Port::get), Some(3000));
        let worker = settings
            .update(
                &ServiceInput {
                    port: Some(PortInput::Keyword("none".into())),
                    ..ServiceInput::default()
                },
                POLICY,
            )
            .unwrap();
        assert_eq!(worker.port, None);
        assert_eq!(next.source, settings.source);
        assert!(
            settings
                .update(
                    &ServiceInput {
                        port: Some(PortInput::Number(0)),
                        ..patch
                    },
                    POLICY
                )
                .is_err()
        );
    }

    #[test]
    fn a_service_runs_a_repository_or_an_image() {
        let open = RepoPolicy {
            allow_local: false,
            destinations: crate::outbound::DestinationPolicy {
                allow_private: true,
            },
        };
        let image = ServiceInput {
            image: Some("127.0.0.1:5000/app:1".into()),
            ..ServiceInput::default()
        };
        let settings = ServiceSettings::create(&image, open).unwrap();
        assert_eq!(
            settings.image().map(ToString::to_string).as_deref(),
            Some("127.0.0.1:5000/app:1")
        );
        assert!(settings.repo().is_none());
        // Loopback registries follow the destination policy, like repositories.
        let refused = ServiceSettings::create(&image, POLICY).unwrap_err();
        assert!(refused.fields().contains_key("image"));
        let both = ServiceInput {
            repo: Some("https://example.org/a.git".into()),
            ..image.clone()
        };
        assert!(ServiceSettings::create(&both, open).is_err());
        let back = settings
            .update(&input("https://example.org/a.git"), open)
            .unwrap();
        assert!(back.image().is_none() && back.repo().is_some());
        let again = back.update(&image, open).unwrap();
        assert_eq!(again.source, settings.source);
    }

    #[test]
    fn ports() {
        assert!(Port::new(1).is_ok());
        assert!(Port::new(65535).is_ok());
        for bad in [0, -1, 65536] {
            assert!(Port::new(bad).is_err());
        }
    }
}
