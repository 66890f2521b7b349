//! What a user may ask git to fetch: repository URLs, branch names and commit SHAs.
//!
//! These values end up as arguments of a `git` child process. Even with no shell involved, git
//! itself interprets some inputs as commands or options: `ext::sh -c …` runs a program, a URL or
//! ref starting with `-` becomes an option, `ssh://-oProxyCommand=…` reaches ssh. Every such form
//! is refused here, before any process starts, so the git adapter can trust its inputs.

use std::fmt;

use crate::outbound::DestinationPolicy;
use crate::validation::{Invalid, is_control};

/// Which repository locations the server accepts, from its configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepoPolicy {
    /// `file://` URLs and absolute paths on the server's own disk. Off by default: on a shared
    /// server they would let a user deploy any repository readable by Helvetia.
    pub allow_local: bool,
    /// Where a remote repository may be. A literal address is checked when the URL is accepted;
    /// a name is checked by the git adapter, once resolved, before every fetch.
    pub destinations: DestinationPolicy,
}

/// How git reaches a remote repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Https,
    Http,
    Ssh,
    /// The unauthenticated git daemon protocol.
    Git,
}

impl Transport {
    /// The name `GIT_ALLOW_PROTOCOL` knows it by.
    pub fn protocol(self) -> &'static str {
        match self {
            Transport::Https => "https",
            Transport::Http => "http",
            Transport::Ssh => "ssh",
            Transport::Git => "git",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Transport::Https => 443,
            Transport::Http => 80,
            Transport::Ssh => 22,
            Transport::Git => 9418,
        }
    }
}

/// Where a remote repository is: what git connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub transport: Transport,
    /// As the URL spells it (an IPv6 address in brackets).
    pub host: String,
    pub port: u16,
}

const MAX_URL_LEN: usize = 2048;

/// A git repository location that is safe to hand to `git clone`/`git fetch` as one argument.
///
/// Credentials are never part of it: they are stored separately and passed to git through its
/// configuration environment, so they cannot leak through a URL into a log or an error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct RepoUrl(String);

impl RepoUrl {
    /// A URL a user may configure now: well formed, local only if allowed, and not naming a
    /// refused address.
    pub fn parse(value: &str, policy: RepoPolicy) -> Result<Self, Invalid> {
        let repo = Self::parse_syntax(value, policy.allow_local)?;
        if let Some(remote) = repo.remote() {
            policy
                .destinations
                .check_host(&remote.host)
                .map_err(|refused| Invalid::new(refused.to_string()))?;
        }
        Ok(repo)
    }

    /// A URL read back from the store: it passed the policy in force when it was written, and
    /// the git adapter checks the current one before fetching.
    pub fn parse_stored(value: &str) -> Result<Self, Invalid> {
        Self::parse_syntax(value, true)
    }

    fn parse_syntax(value: &str, allow_local: bool) -> Result<Self, Invalid> {
        let policy = RepoPolicy {
            allow_local,
            ..RepoPolicy::default()
        };
        if value.is_empty() {
            return Err(Invalid::new("must not be empty"));
        }
        if value.len() > MAX_URL_LEN {
            return Err(Invalid::new(format!(
                "must be at most {MAX_URL_LEN} characters"
            )));
        }
        if value.chars().any(|c| is_control(c) || c.is_whitespace()) {
            return Err(Invalid::new(
                "must not contain spaces or control characters",
            ));
        }
        if value.starts_with('-') {
            return Err(Invalid::new("must not start with '-'"));
        }
        if uses_transport_helper(value) {
            return Err(Invalid::new(
                "git transport helpers (`<transport>::<address>`, e.g. `ext::`) are not allowed",
            ));
        }
        if value.contains("://") {
            check_url(value, policy)?;
        } else if value.starts_with('/') {
            check_local_path(value, policy)?;
        } else if let Some((user_host, path)) = value.split_once(':') {
            check_scp_like(user_host, path)?;
        } else {
            return Err(Invalid::new(
                "must be an https://, http://, ssh:// or git:// URL, or user@host:path",
            ));
        }
        Ok(RepoUrl(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for a repository on the server's own disk.
    pub fn is_local(&self) -> bool {
        self.0.starts_with('/') || self.0.starts_with("file://")
    }

    /// Where git connects for this repository; `None` for a local one.
    pub fn remote(&self) -> Option<Remote> {
        if self.is_local() {
            return None;
        }
        if self.0.contains("://") {
            let url = url::Url::parse(&self.0).ok()?;
            let transport = match url.scheme() {
                "https" => Transport::Https,
                "http" => Transport::Http,
                "ssh" => Transport::Ssh,
                "git" => Transport::Git,
                _ => return None,
            };
            return Some(Remote {
                transport,
                host: url.host_str()?.to_owned(),
                port: url.port().unwrap_or(transport.default_port()),
            });
        }
        let (user_host, _) = self.0.split_once(':')?;
        let host = user_host
            .split_once('@')
            .map_or(user_host, |(_, host)| host);
        Some(Remote {
            transport: Transport::Ssh,
            host: host.to_owned(),
            port: Transport::Ssh.default_port(),
        })
    }
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Git treats `<scheme chars>::<rest>` as "run the helper `git-remote-<scheme>`" (see
/// `transport_get` in git's transport.c); `ext` runs an arbitrary command.
fn uses_transport_helper(value: &str) -> bool {
    let scheme_len = value
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'))
        .count();
    scheme_len > 0 && value[scheme_len..].starts_with("::")
}

fn check_url(value: &str, policy: RepoPolicy) -> Result<(), Invalid> {
    let url =
        url::Url::parse(value).map_err(|e| Invalid::new(format!("is not a valid URL: {e}")))?;
    match url.scheme() {
        "https" | "http" | "git" => {
            if !url.username().is_empty() || url.password().is_some() {
                return Err(Invalid::new(
                    "must not contain credentials; store them as the service's git credentials",
                ));
            }
        }
        "ssh" => {
            if url.password().is_some() {
                return Err(Invalid::new(
                    "must not contain a password; use an SSH key or stored credentials",
                ));
            }
        }
        "file" => {
            if !policy.allow_local {
                return Err(Invalid::new(
                    "local repositories are disabled on this server (see --allow-local-repos)",
                ));
            }
            return check_path_chars(url.path());
        }
        other => {
            return Err(Invalid::new(format!(
                "scheme `{other}` is not supported; use https, http, ssh or git"
            )));
        }
    }
    let host = url.host_str().unwrap_or_default();
    check_host(host)?;
    if url.path().trim_start_matches('/').is_empty() {
        return Err(Invalid::new("must name a repository path"));
    }
    Ok(())
}

fn check_local_path(value: &str, policy: RepoPolicy) -> Result<(), Invalid> {
    if !policy.allow_local {
        return Err(Invalid::new(
            "local repositories are disabled on this server (see --allow-local-repos)",
        ));
    }
    check_path_chars(value)
}

fn check_path_chars(path: &str) -> Result<(), Invalid> {
    if path.split('/').any(|part| part == "..") {
        return Err(Invalid::new("must not contain `..` components"));
    }
    Ok(())
}

/// `user@host:path`, which git sends to ssh.
fn check_scp_like(user_host: &str, path: &str) -> Result<(), Invalid> {
    let host = match user_host.split_once('@') {
        Some((user, host)) => {
            if user.is_empty()
                || !user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                || user.starts_with('-')
            {
                return Err(Invalid::new("has an invalid user name"));
            }
            host
        }
        None => user_host,
    };
    if host.contains(['[', ']']) {
        return Err(Invalid::new(
            "has an invalid host name (write an IPv6 address as ssh://user@[address]/path)",
        ));
    }
    check_host(host)?;
    if path.is_empty() || path.starts_with('-') {
        return Err(Invalid::new("must name a repository path"));
    }
    Ok(())
}

fn check_host(host: &str) -> Result<(), Invalid> {
    let host_ok = !host.is_empty()
        && !host.starts_with('-')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    if host_ok {
        Ok(())
    } else {
        Err(Invalid::new("has an invalid host name"))
    }
}

const MAX_REF_LEN: usize = 255;

/// A branch name, following `git check-ref-format --branch`, and never an option.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct GitRef(String);

impl GitRef {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if value.is_empty() {
            return Err(Invalid::new("must not be empty"));
        }
        if value.len() > MAX_REF_LEN {
            return Err(Invalid::new(format!(
                "must be at most {MAX_REF_LEN} characters"
            )));
        }
        if value.starts_with('-') {
            return Err(Invalid::new("must not start with '-'"));
        }
        if let Some(c) = value
            .chars()
            .find(|&c| is_control(c) || c == ' ' || "~^:?*[\\".contains(c))
        {
            return Err(Invalid::new(format!("must not contain {c:?}")));
        }
        if value.contains("..") || value.contains("@{") || value.contains("//") {
            return Err(Invalid::new("must not contain `..`, `@{` or `//`"));
        }
        if value == "@" || value.ends_with('/') || value.ends_with('.') || value.ends_with(".lock")
        {
            return Err(Invalid::new("is not a valid branch name"));
        }
        if value
            .split('/')
            .any(|part| part.starts_with('.') || part.is_empty())
        {
            return Err(Invalid::new(
                "must not have a path component starting with '.'",
            ));
        }
        Ok(GitRef(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// [`GitRef::parse`] as a regular expression, for the OpenAPI document.
#[cfg(feature = "openapi")]
const GIT_REF_PATTERN: &str = r"^(?!-)(?!/)(?!\.)(?!@$)(?!.*\.\.)(?!.*@\{)(?!.*//)(?!.*/\.)(?!.*/$)(?!.*\.$)(?!.*\.lock$)[^\x00-\x1f\x7f-\x9f\u2028\u2029 ~^:?*\[\\]+$";

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for GitRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::validation::string_schema(
            "A branch name as `git check-ref-format --branch` accepts it, not starting with \
                 `-`; at most 255 bytes.",
            MAX_REF_LEN,
            GIT_REF_PATTERN,
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for GitRef {}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A commit id: 7 to 64 hexadecimal digits (SHA-1 or SHA-256), kept in lowercase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct CommitSha(String);

impl CommitSha {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let ok = (7..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(CommitSha(value.to_ascii_lowercase()))
        } else {
            Err(Invalid::new("must be 7 to 64 hexadecimal digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when this is a complete object id rather than an abbreviation.
    pub fn is_full(&self) -> bool {
        self.0.len() == 40 || self.0.len() == 64
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REMOTE_ONLY: RepoPolicy = RepoPolicy {
        allow_local: false,
        destinations: DestinationPolicy {
            allow_private: false,
        },
    };
    const LOCAL_OK: RepoPolicy = RepoPolicy {
        allow_local: true,
        destinations: DestinationPolicy {
            allow_private: false,
        },
    };
    const PRIVATE_OK: RepoPolicy = RepoPolicy {
        allow_local: false,
        destinations: DestinationPolicy {
            allow_private: true,
        },
    };

    #[test]
    fn accepts_ordinary_remotes() {
        for ok in [
            "https://github.com/helvetia/demo.git",
            "http://gitea.internal:3000/team/app",
            "ssh://git@github.com/helvetia/demo.git",
            "git://example.org/repo.git",
            "git@github.com:helvetia/demo.git",
            "https://[2001:db8::1]:8443/repo.git",
        ] {
            assert!(RepoUrl::parse(ok, REMOTE_ONLY).is_ok(), "{ok}");
        }
    }

    #[test]
    fn literal_internal_addresses_are_refused_when_the_url_is_accepted() {
        for internal in [
            "http://169.254.169.254/latest/meta-data",
            "http://[fd00:ec2::254]/repo",
            "https://metadata.google.internal/computeMetadata/v1",
            "git://169.254.1.1/x",
        ] {
            assert!(RepoUrl::parse(internal, PRIVATE_OK).is_err(), "{internal}");
        }
        for private in [
            "http://127.0.0.1:6379/x",
            "http://0x7f.1:8080/repo",
            "git://10.0.0.5:6379/x",
            "git://0x0a000005/x",
            "ssh://git@192.168.1.10/repo.git",
            "git@10.1.2.3:team/app.git",
            "https://[::1]:8443/repo.git",
            "https://localhost/repo.git",
        ] {
            let refused = RepoUrl::parse(private, REMOTE_ONLY)
                .unwrap_err()
                .to_string();
            assert!(
                refused.contains("--allow-private-destinations"),
                "{private}: {refused}"
            );
            assert!(RepoUrl::parse(private, PRIVATE_OK).is_ok(), "{private}");
        }
        // What was stored under another policy still reads back; the fetch checks it again.
        assert!(RepoUrl::parse_stored("http://169.254.169.254/x").is_ok());
    }

    #[test]
    fn remotes_name_their_transport_host_and_port() {
        let remote = |url: &str| RepoUrl::parse(url, PRIVATE_OK).unwrap().remote().unwrap();
        for (url, transport, host, port) in [
            (
                "https://github.com/a/b",
                Transport::Https,
                "github.com",
                443,
            ),
            (
                "http://gitea.lan:3000/a/b",
                Transport::Http,
                "gitea.lan",
                3000,
            ),
            ("ssh://git@[::1]:2222/a", Transport::Ssh, "[::1]", 2222),
            (
                "git://example.org/r.git",
                Transport::Git,
                "example.org",
                9418,
            ),
            ("git@github.com:a/b.git", Transport::Ssh, "github.com", 22),
        ] {
            assert_eq!(
                remote(url),
                Remote {
                    transport,
                    host: host.into(),
                    port
                },
                "{url}"
            );
        }
        let local = RepoUrl::parse("/srv/app.git", LOCAL_OK).unwrap();
        assert_eq!(local.remote(), None);
    }

    #[test]
    fn refuses_hostile_urls() {
        for bad in [
            "",
            "-uhttps://x",
            "--upload-pack=touch /tmp/pwned",
            "ext::sh -c touch% /tmp/pwned",
            "ext::sh",
            "fd::17",
            "transport+x::whatever",
            "https://user:token@github.com/a/b",
            "https://ghp_token@github.com/a/b",
            "ssh://git:secret@github.com/a/b",
            "ssh://-oProxyCommand=touch%20x/a",
            "-oProxyCommand=x:repo",
            "git@-oProxyCommand=x:repo",
            "host:-path",
            "https://github.com/a/b\n",
            "https://github.com/a/b\u{0}",
            "https://github.com/a b",
            "ftp://example.org/repo",
            "git@[::1]:repo",
            "relative/path",
            "https://",
        ] {
            assert!(RepoUrl::parse(bad, LOCAL_OK).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_repositories_need_the_policy() {
        for local in ["/srv/git/app.git", "file:///srv/git/app.git"] {
            assert!(RepoUrl::parse(local, REMOTE_ONLY).is_err(), "{local}");
            assert!(RepoUrl::parse(local, LOCAL_OK).is_ok(), "{local}");
        }
        assert!(RepoUrl::parse("/srv/../etc", LOCAL_OK).is_err());
    }

    #[test]
    fn accepts_ordinary_branches() {
        for ok in ["main", "feature/login", "release-1.2", "v2.0.1", "user/née"] {
            assert!(GitRef::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_hostile_branches() {
        for bad in [
            "",
            "-b",
            "--upload-pack=x",
            "a..b",
            "../../etc/passwd",
            "a b",
            "a\nb",
            "a\tb",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[",
            "a\\b",
            "@",
            "a@{1}",
            "a/",
            "a.",
            "a.lock",
            ".hidden",
            "a/.b",
            "a//b",
        ] {
            assert!(GitRef::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shell_syntax_is_a_legal_branch_name() {
        // Git allows it, and it is harmless because no shell ever sees a branch name: the
        // guarantee comes from passing argument vectors, not from this parser.
        assert!(GitRef::parse("$(id)").is_ok());
    }

    #[test]
    fn commit_shas() {
        assert!(CommitSha::parse("abc1234").is_ok());
        assert_eq!(CommitSha::parse("ABCDEF0").unwrap().as_str(), "abcdef0");
        assert!(CommitSha::parse(&"a".repeat(40)).unwrap().is_full());
        for bad in ["abc", "-abcdef0", "abcdefg", &"a".repeat(65)] {
            assert!(CommitSha::parse(bad).is_err(), "{bad}");
        }
    }
}
