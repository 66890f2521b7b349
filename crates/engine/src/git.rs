//! Fetching code with the `git` command-line client.
//!
//! Inputs arrive as the core's validated [`RepoUrl`], [`GitRef`] and [`CommitSha`]; they are
//! passed as single arguments, after `--` where git allows it. Git runs with no user or system
//! configuration and with prompts disabled, so a missing credential fails fast instead of
//! hanging, and a hostile `~/.gitconfig` cannot add hooks or helpers.
//!
//! Every remote step goes through the [`Outbound`] policy first, and git is held to what it
//! checked: only the allowed protocols (`GIT_ALLOW_PROTOCOL`), no redirects (a redirect could
//! lead anywhere, and git would resolve the new host itself), and the connection pinned to the
//! checked addresses — curl's resolve list for http(s) (git ≥ 2.37), the address written into
//! the URL for ssh and the git protocol (ssh then checks host keys against the address, and a
//! git daemon serving virtual hosts sees the address as the host).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use helvetia_core::git::{CommitSha, GitRef, RepoUrl, Transport};

use crate::outbound::{Outbound, OutboundError};
use crate::process::{Output, ProcessError, Program};

const LS_REMOTE_TIMEOUT: Duration = Duration::from_secs(60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("branch `{branch}` does not exist in the repository")]
    BranchNotFound { branch: String },
    #[error("commit `{commit}` was not found on branch `{branch}`")]
    CommitNotFound { commit: String, branch: String },
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    #[error(
        "`{host}` has no such repository (or it is private and the service has no credentials for it)"
    )]
    RepositoryNotFound { host: String },
    #[error("`{host}` asks for credentials the service does not have")]
    NeedsCredentials { host: String },
    #[error(
        "`{host}` answered with a redirect, which Helvetia does not follow: use the repository's final URL"
    )]
    Redirected { host: String },
    /// Everything else a remote step can meet: refused, reset or timed-out connections, TLS
    /// failures, answers that are not git. One message for all of them, so that a repository
    /// URL cannot be used to tell open ports from closed ones; git's words go to the log.
    #[error(
        "could not fetch from `{host}`: the connection failed or what answered is not a git \
         repository (the server's log has git's output)"
    )]
    Unreachable { host: String },
    /// The workspace's filesystem (the server's build directory) is full.
    #[error("git {step} failed: no space left on the build directory's filesystem")]
    NoSpace { step: &'static str },
    #[error("git {step} failed: {detail}")]
    Failed { step: &'static str, detail: String },
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// A fetched commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
    pub message: String,
    pub author: String,
}

/// Runs git with a clean environment, reaching remotes only through the outbound policy.
#[derive(Clone)]
pub struct Git {
    binary: String,
    outbound: Arc<Outbound>,
    /// `GIT_ALLOW_PROTOCOL`: the transports a [`RepoUrl`] may use, and nothing git would
    /// otherwise reach on its own (submodule URLs, `ext::`).
    protocols: &'static str,
    /// An `Authorization` header for http(s) remotes (a GitHub App installation's token),
    /// handed to git through its environment: never in the URL or the arguments, where `ps`
    /// and error messages would show it.
    authorization: Option<String>,
}

impl std::fmt::Debug for Git {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Git")
            .field("binary", &self.binary)
            .field("protocols", &self.protocols)
            .field("authorized", &self.authorization.is_some())
            .finish_non_exhaustive()
    }
}

/// How a remote step reaches its repository.
struct Target {
    /// What git is given: the URL, with the checked address in place of the host where the
    /// transport cannot be pinned otherwise.
    url: String,
    /// `-c` options pinning curl to the checked addresses.
    options: Vec<String>,
    /// The host as the user wrote it, for errors; `None` for a repository on this disk.
    host: Option<String>,
}

impl Git {
    /// Local repositories (`file://` and paths) are reachable only with `allow_local`.
    pub fn new(outbound: Arc<Outbound>, allow_local: bool) -> Git {
        Git {
            binary: "git".into(),
            outbound,
            protocols: if allow_local {
                "https:http:ssh:git:file"
            } else {
                "https:http:ssh:git"
            },
            authorization: None,
        }
    }

    /// This git, sending GitHub's installation `token` to http(s) remotes (as GitHub asks:
    /// Basic `x-access-token:TOKEN`). Redirects stay off, so the header reaches no other host.
    pub fn with_installation_token(&self, token: &str) -> Git {
        use base64::Engine as _;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        Git {
            authorization: Some(format!("Authorization: Basic {basic}")),
            ..self.clone()
        }
    }

    fn program(&self) -> Program {
        let program = Program::new(&self.binary)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_ALLOW_PROTOCOL", self.protocols)
            .env("HOME", "/nonexistent")
            // Without a configured identity some git versions refuse to create repositories.
            .env("GIT_AUTHOR_NAME", "helvetia")
            .env("GIT_AUTHOR_EMAIL", "helvetia@localhost")
            .env("GIT_COMMITTER_NAME", "helvetia")
            .env("GIT_COMMITTER_EMAIL", "helvetia@localhost")
            .args(["-c", "http.followRedirects=false"]);
        match &self.authorization {
            // Configuration from the environment (git ≥ 2.31), for this command only.
            Some(header) => program
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", header),
            None => program,
        }
    }

    /// Whether this git can be pinned to checked addresses over http(s): `http.curloptResolve`
    /// arrived in git 2.37, and an older git ignores it and resolves names itself.
    pub async fn pins_http(&self) -> Result<bool, GitError> {
        let output = self.run("version", self.program().arg("version")).await?;
        let version = output.stdout.trim().trim_start_matches("git version ");
        let mut numbers = version.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
        let major = numbers.next().unwrap_or(0);
        let minor = numbers.next().unwrap_or(0);
        Ok((major, minor) >= (2, 37))
    }

    /// Fetches `what` from the target into `dir`; a ref the repository lacks is `missing()`.
    async fn fetch(
        &self,
        target: &Target,
        dir: &Path,
        extra: &[&str],
        what: &str,
        missing: impl FnOnce() -> GitError,
    ) -> Result<(), GitError> {
        let fetched = self
            .program()
            .current_dir(dir)
            .timeout(FETCH_TIMEOUT)
            .args(&target.options)
            // The received pack is kept and indexed as it is: unpacking a small fetch into
            // loose objects (git's default under 100 objects) compresses each one again,
            // which doubled the fetch of a 2 MB repository (bench/deploy).
            .args(["-c", "fetch.unpackLimit=1"])
            .args(["fetch", "--quiet", "--no-tags"])
            .args(extra)
            .args(["--", &target.url, what])
            .run()
            .await?;
        if fetched.success {
            Ok(())
        } else if ref_missing(&fetched.stderr) {
            Err(missing())
        } else {
            Err(remote_failure("fetch", target, &fetched.stderr))
        }
    }

    /// Checks `repo`'s destination against the policy and pins git to what was checked.
    async fn target(&self, repo: &RepoUrl) -> Result<Target, GitError> {
        let Some(remote) = repo.remote() else {
            return Ok(Target {
                url: repo.as_str().to_owned(),
                options: vec![],
                host: None,
            });
        };
        let addresses = self.outbound.resolve(&remote.host, remote.port).await?;
        let literal = remote
            .host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok();
        let mut target = Target {
            url: repo.as_str().to_owned(),
            options: vec![],
            host: Some(remote.host.clone()),
        };
        match remote.transport {
            Transport::Https | Transport::Http if !literal => {
                let listed: Vec<String> = addresses.iter().map(bracketed).collect();
                target.options = vec![
                    "-c".into(),
                    format!(
                        "http.curloptResolve={}:{}:{}",
                        remote.host,
                        remote.port,
                        listed.join(",")
                    ),
                ];
            }
            Transport::Https | Transport::Http => {}
            Transport::Ssh | Transport::Git => {
                let pinned = addresses
                    .first()
                    .and_then(|first| with_address(repo, first.ip()));
                target.url = pinned.ok_or_else(|| GitError::Failed {
                    step: "pin",
                    detail: "the checked address cannot be written into the URL".into(),
                })?;
            }
        }
        Ok(target)
    }

    async fn run(&self, step: &'static str, program: Program) -> Result<Output, GitError> {
        let started = std::time::Instant::now();
        let output = program.run().await?;
        tracing::debug!(
            step,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "git"
        );
        if output.success {
            Ok(output)
        } else {
            Err(local_failure(step, &output.stderr))
        }
    }

    /// The commit at the head of `branch`, without fetching anything.
    pub async fn resolve_branch(
        &self,
        repo: &RepoUrl,
        branch: &GitRef,
    ) -> Result<String, GitError> {
        let target = self.target(repo).await?;
        let reference = format!("refs/heads/{branch}");
        let output = self
            .program()
            .args(&target.options)
            .args(["ls-remote", "--exit-code", "--", &target.url, &reference])
            .timeout(LS_REMOTE_TIMEOUT)
            .run()
            .await?;
        // `--exit-code` makes git exit with 2 when the ref does not exist.
        if output.code == Some(2) {
            return Err(GitError::BranchNotFound {
                branch: branch.to_string(),
            });
        }
        if !output.success {
            return Err(remote_failure("ls-remote", &target, &output.stderr));
        }
        output
            .stdout
            .lines()
            .find_map(|line| {
                let (sha, name) = line.split_once('\t')?;
                (name == reference).then(|| sha.to_owned())
            })
            .ok_or_else(|| GitError::BranchNotFound {
                branch: branch.to_string(),
            })
    }

    /// Fetches exactly one commit into `dir` (which must exist and be empty) and checks it out.
    /// A full commit id is fetched alone (shallow); a branch head is fetched shallow; an
    /// abbreviated id needs the branch's history to be resolved.
    pub async fn checkout(
        &self,
        repo: &RepoUrl,
        branch: &GitRef,
        commit: Option<&CommitSha>,
        dir: &Path,
    ) -> Result<Commit, GitError> {
        let target = self.target(repo).await?;
        self.run("init", self.program().args(["init", "--quiet"]).arg(dir))
            .await?;
        let branch_ref = format!("refs/heads/{branch}");
        let in_dir = || self.program().current_dir(dir).timeout(FETCH_TIMEOUT);
        let branch_missing = || GitError::BranchNotFound {
            branch: branch.to_string(),
        };
        let target_ref = match commit {
            Some(sha) if sha.is_full() => {
                let commit_missing = || GitError::CommitNotFound {
                    commit: sha.to_string(),
                    branch: branch.to_string(),
                };
                self.fetch(
                    &target,
                    dir,
                    &["--depth", "1"],
                    sha.as_str(),
                    commit_missing,
                )
                .await?;
                sha.to_string()
            }
            Some(short) => {
                self.fetch(&target, dir, &[], &branch_ref, branch_missing)
                    .await?;
                let verify = format!("{short}^{{commit}}");
                let resolved = in_dir()
                    .args([
                        "rev-parse",
                        "--verify",
                        "--quiet",
                        "--end-of-options",
                        &verify,
                    ])
                    .run()
                    .await?;
                if !resolved.success {
                    return Err(GitError::CommitNotFound {
                        commit: short.to_string(),
                        branch: branch.to_string(),
                    });
                }
                resolved.stdout.trim().to_owned()
            }
            None => {
                self.fetch(&target, dir, &["--depth", "1"], &branch_ref, branch_missing)
                    .await?;
                "FETCH_HEAD".to_owned()
            }
        };
        self.run(
            "checkout",
            in_dir().args([
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "--quiet",
                "--detach",
                &target_ref,
                "--",
            ]),
        )
        .await?;
        let log = self
            .run(
                "log",
                in_dir().args(["log", "-1", "--format=%H%x00%an <%ae>%x00%B", "HEAD", "--"]),
            )
            .await?;
        let mut parts = log.stdout.splitn(3, '\0');
        let sha = parts.next().unwrap_or_default().trim().to_owned();
        let author = parts.next().unwrap_or_default().to_owned();
        let message = parts.next().unwrap_or_default().trim().to_owned();
        Ok(Commit {
            sha,
            message,
            author,
        })
    }

    /// The files that differ between commits `before` and `after` of `repo`, fetched into
    /// `dir` (which must exist and be empty) without their contents where the remote allows
    /// (`--filter=blob:none`: a diff of names needs only trees).
    pub async fn changed_files(
        &self,
        repo: &RepoUrl,
        before: &CommitSha,
        after: &CommitSha,
        dir: &Path,
    ) -> Result<Vec<String>, GitError> {
        let target = self.target(repo).await?;
        self.run("init", self.program().args(["init", "--quiet"]).arg(dir))
            .await?;
        for commit in [before, after] {
            let missing = || GitError::CommitNotFound {
                commit: commit.to_string(),
                branch: "any branch".into(),
            };
            self.fetch(
                &target,
                dir,
                &["--depth", "1", "--filter=blob:none"],
                commit.as_str(),
                missing,
            )
            .await?;
        }
        let diff = self
            .run(
                "diff",
                self.program().current_dir(dir).args([
                    "diff",
                    "--name-only",
                    "--no-renames",
                    "-z",
                    before.as_str(),
                    after.as_str(),
                    "--",
                ]),
            )
            .await?;
        Ok(diff
            .stdout
            .split('\0')
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

/// True when git reached the repository and it lacks the ref or commit asked for.
fn ref_missing(stderr: &str) -> bool {
    [
        "couldn't find remote ref",
        "not our ref",
        "unadvertised object",
    ]
    .iter()
    .any(|phrase| stderr.contains(phrase))
}

/// What a failed remote step tells the user. Git's words name the repository's own answers
/// (missing, private, moved); everything else becomes [`GitError::Unreachable`], and git's
/// output goes to the server's log for the operator.
fn remote_failure(step: &'static str, target: &Target, stderr: &str) -> GitError {
    let Some(host) = target.host.clone().filter(|_| !no_space(stderr)) else {
        return local_failure(step, stderr);
    };
    let detail = last_lines(stderr, 5);
    tracing::info!(step, host, detail, "git could not read a remote repository");
    let said = |phrases: &[&str]| phrases.iter().any(|phrase| stderr.contains(phrase));
    if said(&["returned error: 30"]) {
        GitError::Redirected { host }
    } else if said(&[
        "returned error: 401",
        "returned error: 403",
        "Authentication failed",
        "could not read Username",
        "could not read Password",
        "Permission denied (publickey",
        "Host key verification failed",
    ]) {
        GitError::NeedsCredentials { host }
    } else if said(&[
        "returned error: 404",
        "Repository not found",
        "does not appear to be a git repository",
        "access denied or repository not exported",
    ]) {
        GitError::RepositoryNotFound { host }
    } else {
        GitError::Unreachable { host }
    }
}

/// What a step that failed on this machine tells the user: a full build directory by name
/// (a fetch that meets it is not the remote's fault), else git's last words.
fn local_failure(step: &'static str, stderr: &str) -> GitError {
    if no_space(stderr) {
        GitError::NoSpace { step }
    } else {
        GitError::Failed {
            step,
            detail: last_lines(stderr, 5),
        }
    }
}

/// Whether git met ENOSPC (its messages are in English: git runs with `LANG=C.UTF-8`).
fn no_space(stderr: &str) -> bool {
    stderr.contains("No space left on device")
}

/// An address as curl's resolve list and URLs write it.
fn bracketed(address: &SocketAddr) -> String {
    match address {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    }
}

/// `repo` with `address` as its host: `ssh://user@host:port/path`, `git://host/path` and
/// `user@host:path`.
fn with_address(repo: &RepoUrl, address: std::net::IpAddr) -> Option<String> {
    let url = repo.as_str();
    if url.contains("://") {
        let mut parsed = url::Url::parse(url).ok()?;
        parsed.set_ip_host(address).ok()?;
        return Some(parsed.into());
    }
    let host = bracketed(&SocketAddr::new(address, 0));
    let (user_host, path) = url.split_once(':')?;
    Some(match user_host.split_once('@') {
        Some((user, _)) => format!("{user}@{host}:{path}"),
        None => format!("{host}:{path}"),
    })
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{IpAddr, Ipv4Addr};
    use std::path::PathBuf;

    use helvetia_core::git::RepoPolicy;
    use helvetia_core::outbound::DestinationPolicy;
    use helvetia_test_support::FixtureRepo;
    use helvetia_test_support::dns::TestDns;
    use helvetia_test_support::http::{Serve, TestHttp};

    use super::*;
    use crate::outbound::ResolverSetting;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const PRIVATE_OK: RepoPolicy = RepoPolicy {
        allow_local: false,
        destinations: DestinationPolicy {
            allow_private: true,
        },
    };

    #[test]
    fn a_full_build_directory_is_named_whether_a_remote_was_reached_or_not() {
        let remote = Target {
            url: "https://git.example.org/a.git".into(),
            options: vec![],
            host: Some("git.example.org".into()),
        };
        let full = "error: unable to write file .git/objects/pack/tmp_pack_x: No space left on \
                    device\nfatal: index-pack failed";
        let failure = remote_failure("fetch", &remote, full);
        assert!(
            matches!(failure, GitError::NoSpace { step: "fetch" }),
            "{failure:?}"
        );
        assert!(failure.to_string().contains("no space left"), "{failure}");
        let refused = remote_failure(
            "fetch",
            &remote,
            "fatal: unable to access: Connection refused",
        );
        assert!(
            matches!(refused, GitError::Unreachable { .. }),
            "{refused:?}"
        );
        assert!(matches!(
            local_failure("init", full),
            GitError::NoSpace { step: "init" }
        ));
        assert!(matches!(
            local_failure("init", "fatal: something else"),
            GitError::Failed { step: "init", .. }
        ));
    }

    fn git(dns: &TestDns, allow_private: bool) -> Git {
        let policy = DestinationPolicy { allow_private };
        let outbound = Outbound::new(policy, ResolverSetting::Server(dns.address())).unwrap();
        Git::new(Arc::new(outbound), false)
    }

    fn url(url: &str) -> RepoUrl {
        RepoUrl::parse(url, PRIVATE_OK).unwrap()
    }

    fn main() -> GitRef {
        GitRef::parse("main").unwrap()
    }

    /// A fixture repository served over git's dumb HTTP protocol on a loopback port.
    async fn served_repository() -> (FixtureRepo, TestHttp) {
        let repo = FixtureRepo::new("web");
        let bare = PathBuf::from(repo.url());
        let info = std::process::Command::new("git")
            .arg("update-server-info")
            .current_dir(&bare)
            .status()
            .unwrap();
        assert!(info.success());
        let http = TestHttp::start(Serve::Files(bare.parent().unwrap().to_owned())).await;
        (repo, http)
    }

    #[tokio::test]
    async fn an_installation_token_reaches_git_through_its_environment_only() {
        let dns = TestDns::start(&[]).await;
        let git = git(&dns, false).with_installation_token("ghs_secret-token");
        let command = git.program().arg("version").command();
        let command = command.as_std();
        let argv: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
        assert!(!argv.iter().any(|a| a.contains("ghs_")), "{argv:?}");
        let envs: std::collections::HashMap<_, _> = command
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_string_lossy(), v?.to_string_lossy())))
            .collect();
        assert_eq!(envs["GIT_CONFIG_KEY_0"], "http.extraHeader");
        // base64("x-access-token:ghs_secret-token")
        assert_eq!(
            envs["GIT_CONFIG_VALUE_0"],
            "Authorization: Basic eC1hY2Nlc3MtdG9rZW46Z2hzX3NlY3JldC10b2tlbg=="
        );
        assert!(!format!("{git:?}").contains("ghs_"));
        // The plain git has no header.
        let plain = super::Git::new(git.outbound.clone(), false);
        let command = plain.program().command();
        assert!(
            !command
                .as_std()
                .get_envs()
                .any(|(k, _)| k == "GIT_CONFIG_VALUE_0")
        );
    }

    #[tokio::test]
    async fn git_connects_only_to_the_address_the_policy_checked() {
        let dns = TestDns::start(&[("repo.test", LOOPBACK)]).await;
        let (_repo, http) = served_repository().await;
        let repo = url(&format!("http://repo.test:{}/repo.git", http.port()));

        let refused = git(&dns, false).resolve_branch(&repo, &main()).await;
        assert!(matches!(refused, Err(GitError::Outbound(_))), "{refused:?}");
        assert_eq!(http.requests(), Vec::<String>::new(), "connected anyway");

        // Only the test resolver knows `repo.test`: git reaches it because it is pinned to the
        // checked address, not because it resolved the name again.
        let git = git(&dns, true);
        let head = git.resolve_branch(&repo, &main()).await.unwrap();
        // The dumb protocol cannot fetch shallow: an abbreviated id fetches the whole branch.
        let short = CommitSha::parse(&head[..12]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let branch = main();
        let commit = git.checkout(&repo, &branch, Some(&short), dir.path());
        assert_eq!(commit.await.unwrap().sha, head);
    }

    #[tokio::test]
    async fn the_installed_git_can_be_pinned() {
        let dns = TestDns::start(&[]).await;
        assert!(git(&dns, false).pins_http().await.unwrap());
    }

    #[tokio::test]
    async fn a_redirect_to_another_host_is_not_followed() {
        let dns = TestDns::start(&[("origin.test", LOOPBACK)]).await;
        let (_repo, elsewhere) = served_repository().await;
        let redirect = Serve::RedirectTo(format!("http://127.0.0.1:{}", elsewhere.port()));
        let origin = TestHttp::start(redirect).await;
        let repo = url(&format!("http://origin.test:{}/repo.git", origin.port()));

        let error = git(&dns, true)
            .resolve_branch(&repo, &main())
            .await
            .unwrap_err();
        assert!(matches!(error, GitError::Redirected { .. }), "{error}");
        assert!(!origin.requests().is_empty());
        assert_eq!(elsewhere.requests(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_refused_connection_reads_like_a_port_that_answers_something_else() {
        let dns = TestDns::start(&[("svc.test", LOOPBACK)]).await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        // Like a database or cache: it answers, in a protocol that is not git's.
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open_port = open.local_addr().unwrap().port();
        let answering = tokio::spawn(async move {
            loop {
                let (mut stream, _) = open.accept().await.unwrap();
                let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, b"-ERR unknown\r\n").await;
            }
        });
        let git = git(&dns, true);
        for scheme in ["http", "git"] {
            let mut errors = vec![];
            for port in [closed_port, open_port] {
                let repo = url(&format!("{scheme}://svc.test:{port}/x.git"));
                errors.push(
                    git.resolve_branch(&repo, &main())
                        .await
                        .unwrap_err()
                        .to_string(),
                );
            }
            assert_eq!(errors[0], errors[1], "{scheme}");
            assert!(
                errors[0].starts_with("could not fetch from `svc.test`"),
                "{errors:?}"
            );
        }
        answering.abort();
    }

    #[tokio::test]
    async fn local_repositories_need_the_setting_even_when_stored() {
        let dns = TestDns::start(&[]).await;
        let fixture = FixtureRepo::new("web");
        let stored = RepoUrl::parse_stored(&fixture.url()).unwrap();
        let outbound = Outbound::new(
            DestinationPolicy::default(),
            ResolverSetting::Server(dns.address()),
        );
        let outbound = Arc::new(outbound.unwrap());
        let refused = Git::new(outbound.clone(), false)
            .resolve_branch(&stored, &main())
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("not allowed"), "{refused}");
        let allowed = Git::new(outbound, true)
            .resolve_branch(&stored, &main())
            .await;
        assert!(allowed.is_ok(), "{allowed:?}");
    }
}
