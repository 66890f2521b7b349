//! A service that deploys a registry image instead of building a repository: the image's
//! reference (`registry[:port]/path:tag` or `registry[:port]/path@sha256:…`) and the rules
//! it is held to.
//!
//! The grammar is Docker's distribution reference, narrowed: the registry is always named
//! (no implicit Docker Hub), and a tag or a digest is always given (no implicit `latest`), so
//! what a service runs is never a guess. No control character, space, `..` or leading `-`
//! can pass, so a reference is safe to hand to the engine and to print.

use std::fmt;

use crate::outbound::DestinationPolicy;
use crate::validation::Invalid;

/// The longest reference accepted.
pub const MAX_REFERENCE_LEN: usize = 512;
const MAX_TAG_LEN: usize = 128;

/// A validated image reference with its registry named.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(into = "String")]
pub struct ImageRef {
    /// `host` or `host:port`.
    registry: String,
    /// The repository inside the registry: `name` or `team/name`.
    path: String,
    target: ImageTarget,
}

/// What in a repository a reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageTarget {
    /// A tag, which may be moved: resolved to a digest at every deploy.
    Tag(String),
    /// A digest (`sha256:` and 64 hex digits): always the same image.
    Digest(String),
}

impl ImageRef {
    /// Parses `value` and checks its registry's host against `destinations` (a literal address
    /// or `localhost` now; a name is checked again when a deploy resolves it).
    pub fn parse(value: &str, destinations: DestinationPolicy) -> Result<Self, Invalid> {
        let reference = Self::parse_syntax(value)?;
        destinations
            .check_host(reference.host())
            .map_err(|refused| Invalid::new(format!("registry {refused}")))?;
        Ok(reference)
    }

    /// Parses a reference stored earlier: the policy was applied when it was accepted.
    pub fn parse_stored(value: &str) -> Result<Self, Invalid> {
        Self::parse_syntax(value)
    }

    fn parse_syntax(value: &str) -> Result<Self, Invalid> {
        if value.is_empty() {
            return Err(Invalid::new("must not be empty"));
        }
        if value.len() > MAX_REFERENCE_LEN {
            return Err(Invalid::new(format!(
                "must be at most {MAX_REFERENCE_LEN} characters"
            )));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
        {
            return Err(Invalid::new(format!(
                "must not contain {bad:?}: an image reference is ASCII without spaces"
            )));
        }
        let (name, target) = match value.split_once('@') {
            Some((name, digest)) => {
                check_digest(digest)?;
                (name, ImageTarget::Digest(digest.to_owned()))
            }
            None => {
                // The tag follows the last `:` after the last `/` (a port's `:` comes before).
                let last_slash = value.rfind('/').unwrap_or(0);
                match value[last_slash..].rfind(':') {
                    Some(at) => {
                        let (name, tag) = value.split_at(last_slash + at);
                        let tag = &tag[1..];
                        check_tag(tag)?;
                        (name, ImageTarget::Tag(tag.to_owned()))
                    }
                    None => {
                        return Err(Invalid::new(
                            "must end with a tag (`:1.2`) or a digest (`@sha256:…`)",
                        ));
                    }
                }
            }
        };
        let Some((registry, path)) = name.split_once('/') else {
            return Err(Invalid::new(
                "must name its registry, e.g. `registry.example.org/team/app:1.2` \
                 (Docker Hub is `docker.io/library/nginx:1.27`)",
            ));
        };
        check_registry(registry)?;
        for component in path.split('/') {
            check_path_component(component)?;
        }
        Ok(ImageRef {
            registry: registry.to_owned(),
            path: path.to_owned(),
            target,
        })
    }

    /// The registry's host, without the port.
    pub fn host(&self) -> &str {
        self.registry
            .split_once(':')
            .map_or(self.registry.as_str(), |(host, _)| host)
    }

    /// The registry's port, when one is written.
    pub fn port(&self) -> Option<u16> {
        self.registry
            .split_once(':')
            .and_then(|(_, port)| port.parse().ok())
    }

    /// `host` or `host:port`, as the engine's credentials name the registry.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository inside the registry.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `registry/path`: the reference without its tag or digest.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.registry, self.path)
    }

    pub fn target(&self) -> &ImageTarget {
        &self.target
    }

    /// The tag, for a reference by tag.
    pub fn tag(&self) -> Option<&str> {
        match &self.target {
            ImageTarget::Tag(tag) => Some(tag),
            ImageTarget::Digest(_) => None,
        }
    }

    /// This image pinned to `digest`: `registry/path@digest`.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}@{digest}", self.repository())
    }

    /// Whether a registry's notification about `repository` (its path, or `registry/path`)
    /// and `tag` concerns this reference: same repository, and the tag this service follows.
    /// A digest reference never moves, so no notification concerns it.
    pub fn is_moved_by(&self, repository: &str, tag: Option<&str>) -> bool {
        let same_repository = repository == self.path || repository == self.repository();
        same_repository && self.tag().is_some() && self.tag() == tag
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            ImageTarget::Tag(tag) => write!(f, "{}/{}:{tag}", self.registry, self.path),
            ImageTarget::Digest(digest) => write!(f, "{}/{}@{digest}", self.registry, self.path),
        }
    }
}

impl From<ImageRef> for String {
    fn from(reference: ImageRef) -> String {
        reference.to_string()
    }
}

/// The OpenAPI pattern of a reference: what [`ImageRef::parse_syntax`] accepts.
pub const REFERENCE_PATTERN: &str = concat!(
    r"^(?=[^/]*[.:]|localhost/)",
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
    r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+",
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$",
);

fn check_digest(digest: &str) -> Result<(), Invalid> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| Invalid::new("digest must be `sha256:` and 64 hex digits"))?;
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Invalid::new(
            "digest must be `sha256:` and 64 lowercase hex digits",
        ));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), Invalid> {
    let valid = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(Invalid::new(format!(
            "tag `{tag}` must be 1 to {MAX_TAG_LEN} letters, digits, `_`, `.` or `-`, \
             not starting with `.` or `-`"
        )))
    }
}

fn check_registry(registry: &str) -> Result<(), Invalid> {
    let (host, port) = match registry.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    if port.is_none() && !host.contains('.') && host != "localhost" {
        return Err(Invalid::new(format!(
            "`{registry}` is not a registry: name one with a dot or a port \
             (e.g. `registry.example.org/{registry}/…`; Docker Hub is `docker.io`)"
        )));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !host.split('.').all(label_ok) {
        return Err(Invalid::new(format!(
            "registry host `{host}` must be a host name or an IPv4 address"
        )));
    }
    if let Some(port) = port {
        let valid = !port.starts_with('0')
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid {
            return Err(Invalid::new(format!(
                "registry port `{port}` must be between 1 and 65535"
            )));
        }
    }
    Ok(())
}

/// One `/`-separated component of a repository path: lowercase letters and digits, separated
/// by `.`, `_`, `__` or dashes.
fn check_path_component(component: &str) -> Result<(), Invalid> {
    let invalid = || {
        Invalid::new(format!(
            "repository path component `{component}` must be lowercase letters and digits, \
             separated by `.`, `_`, `__` or `-`"
        ))
    };
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(invalid());
    }
    let mut index = 0;
    while index < bytes.len() {
        if alnum(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let allowed = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !allowed {
            return Err(invalid());
        }
    }
    Ok(())
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ImageRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::validation::string_schema(
            "An image reference naming its registry and a tag or a digest: \
             `registry.example.org[:port]/team/app:1.2` or `…/app@sha256:<64 hex digits>`. \
             Which registries are reachable is the server's policy (loopback and private \
             addresses only with `--allow-private-destinations`).",
            MAX_REFERENCE_LEN,
            REFERENCE_PATTERN,
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ImageRef {}

/// A registry user name: printable ASCII without spaces or `:` (basic auth's separator).
pub fn check_registry_user(user: &str) -> Result<(), Invalid> {
    let valid = !user.is_empty()
        && user.len() <= 255
        && user.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if valid {
        Ok(())
    } else {
        Err(Invalid::new(
            "must be 1 to 255 printable ASCII characters without spaces or `:`",
        ))
    }
}

/// A registry password or token: not empty, at most 4096 bytes, no control characters.
pub fn check_registry_password(password: &str) -> Result<(), Invalid> {
    if password.is_empty() || password.len() > 4096 {
        return Err(Invalid::new("must be 1 to 4096 bytes"));
    }
    if password.chars().any(char::is_control) {
        return Err(Invalid::new("must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: DestinationPolicy = DestinationPolicy {
        allow_private: true,
    };
    const CLOSED: DestinationPolicy = DestinationPolicy {
        allow_private: false,
    };
    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_by_tag_and_by_digest() {
        let by_tag = ImageRef::parse("127.0.0.1:5000/team/app:v1.2", OPEN).unwrap();
        assert_eq!(by_tag.registry(), "127.0.0.1:5000");
        assert_eq!(by_tag.host(), "127.0.0.1");
        assert_eq!(by_tag.port(), Some(5000));
        assert_eq!(by_tag.path(), "team/app");
        assert_eq!(by_tag.tag(), Some("v1.2"));
        assert_eq!(by_tag.to_string(), "127.0.0.1:5000/team/app:v1.2");
        let by_digest = ImageRef::parse(&format!("ghcr.io/a/b@{DIGEST}"), CLOSED).unwrap();
        assert_eq!(by_digest.target(), &ImageTarget::Digest(DIGEST.into()));
        assert_eq!(by_digest.pinned(DIGEST), format!("ghcr.io/a/b@{DIGEST}"));
        assert!(ImageRef::parse("localhost/app:1", OPEN).is_ok());
    }

    #[test]
    fn hostile_and_vague_references_are_refused() {
        for bad in [
            "",
            "nginx:latest",
            "library/nginx:1",
            "ghcr.io/app",
            "ghcr.io/app:",
            "ghcr.io/App:1",
            "ghcr.io/app:-x",
            "ghcr.io/../app:1",
            "ghcr.io//app:1",
            "-ghcr.io/app:1",
            "ghcr.io/app:1 --privileged",
            "ghcr.io/app:1\n",
            "ghcr.io/app@sha256:abc",
            "ghcr.io/app@md5:0123",
            "ghcr.io:0/app:1",
            "ghcr.io:65536/app:1",
            "user:pw@ghcr.io/app:1",
            "[::1]:5000/app:1",
            "ghcr.io/a/b:c/d",
            "ghcr.io/app:ü",
        ] {
            assert!(ImageRef::parse(bad, OPEN).is_err(), "{bad:?} was accepted");
        }
        let long = format!("ghcr.io/{}:1", "a".repeat(MAX_REFERENCE_LEN));
        assert!(ImageRef::parse(&long, OPEN).is_err());
    }

    #[test]
    fn the_destination_policy_applies_to_the_registry() {
        let refused = ImageRef::parse("127.0.0.1:5000/app:1", CLOSED).unwrap_err();
        assert!(refused.to_string().contains("loopback"), "{refused}");
        assert!(ImageRef::parse("169.254.169.254/app:1", OPEN).is_err());
        assert!(ImageRef::parse("localhost:5000/app:1", CLOSED).is_err());
        assert!(ImageRef::parse_stored("127.0.0.1:5000/app:1").is_ok());
    }

    #[test]
    fn the_pattern_accepts_what_the_parser_accepts() {
        let pattern = regex_lite_free::compile();
        for (value, accepted) in [
            ("127.0.0.1:5000/team/app:v1.2", true),
            ("localhost/app:1", true),
            ("ghcr.io/a__b/c-d.e:_x", true),
            ("nginx:latest", false),
            ("ghcr.io/App:1", false),
            ("ghcr.io:65536/app:1", false),
            ("ghcr.io/app", false),
        ] {
            assert_eq!(
                ImageRef::parse_stored(value).is_ok(),
                accepted,
                "parser on {value}"
            );
            assert_eq!(pattern(value), accepted, "pattern on {value}");
        }
    }

    /// The pattern's lookahead is outside the `regex` crate's syntax: it is checked here as
    /// the lookahead plus the rest.
    mod regex_lite_free {
        pub fn compile() -> impl Fn(&str) -> bool {
            let rest = super::REFERENCE_PATTERN.replacen(r"(?=[^/]*[.:]|localhost/)", "", 1);
            let rest = regex::Regex::new(&rest).unwrap();
            move |value: &str| {
                let first = value.split('/').next().unwrap_or_default();
                let named = first.contains(['.', ':']) || value.starts_with("localhost/");
                named && rest.is_match(value)
            }
        }
    }

    #[test]
    fn notifications_match_the_followed_tag() {
        let reference = ImageRef::parse("127.0.0.1:5000/team/app:v1", OPEN).unwrap();
        assert!(reference.is_moved_by("team/app", Some("v1")));
        assert!(reference.is_moved_by("127.0.0.1:5000/team/app", Some("v1")));
        assert!(!reference.is_moved_by("team/app", Some("v2")));
        assert!(!reference.is_moved_by("team/other", Some("v1")));
        assert!(!reference.is_moved_by("team/app", None));
    }

    #[test]
    fn registry_logins() {
        assert!(check_registry_user("ci-bot").is_ok());
        for bad in ["", "a b", "a:b", "a\nb"] {
            assert!(check_registry_user(bad).is_err());
        }
        assert!(check_registry_password("s3cret token!").is_ok());
        assert!(check_registry_password("a\nb").is_err());
        assert!(check_registry_password("").is_err());
    }
}
