//! Fetching code with the `git` command-line client.
//!
//! Inputs arrive as the core's validated [`RepoUrl`], [`GitRef`] and [`CommitSha`]; they are
//! passed as single arguments, after `--` where git allows it. Git runs with no user or system
//! configuration and with prompts disabled, so a missing credential fails fast instead of
//! hanging, and a hostile `~/.gitconfig` cannot add hooks or helpers.

use std::path::Path;
use std::time::Duration;

use helvetia_core::git::{CommitSha, GitRef, RepoUrl};

use crate::process::{Output, ProcessError, Program};

const LS_REMOTE_TIMEOUT: Duration = Duration::from_secs(60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("branch `{branch}` does not exist in the repository")]
    BranchNotFound { branch: String },
    #[error("commit `{commit}` was not found on branch `{branch}`")]
    CommitNotFound { commit: String, branch: String },
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

/// Runs git with a clean environment.
#[derive(Debug, Clone)]
pub struct Git {
    binary: String,
}

impl Default for Git {
    fn default() -> Self {
        Git {
            binary: "git".into(),
        }
    }
}

impl Git {
    fn program(&self) -> Program {
        Program::new(&self.binary)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("HOME", "/nonexistent")
            // Without a configured identity some git versions refuse to create repositories.
            .env("GIT_AUTHOR_NAME", "helvetia")
            .env("GIT_AUTHOR_EMAIL", "helvetia@localhost")
            .env("GIT_COMMITTER_NAME", "helvetia")
            .env("GIT_COMMITTER_EMAIL", "helvetia@localhost")
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
            Err(GitError::Failed {
                step,
                detail: last_lines(&output.stderr, 5),
            })
        }
    }

    /// The commit at the head of `branch`, without fetching anything.
    pub async fn resolve_branch(
        &self,
        repo: &RepoUrl,
        branch: &GitRef,
    ) -> Result<String, GitError> {
        let reference = format!("refs/heads/{branch}");
        let output = self
            .program()
            .args(["ls-remote", "--exit-code", "--", repo.as_str(), &reference])
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
            return Err(GitError::Failed {
                step: "ls-remote",
                detail: last_lines(&output.stderr, 5),
            });
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
        self.run("init", self.program().args(["init", "--quiet"]).arg(dir))
            .await?;
        let branch_ref = format!("refs/heads/{branch}");
        let in_dir = || self.program().current_dir(dir).timeout(FETCH_TIMEOUT);
        let target = match commit {
            Some(sha) if sha.is_full() => {
                let fetched = self
                    .run(
                        "fetch",
                        in_dir()
                            .args(["fetch", "--quiet", "--depth", "1", "--no-tags", "--"])
                            .arg(repo.as_str())
                            .arg(sha.as_str()),
                    )
                    .await;
                if let Err(GitError::Failed { .. }) = fetched {
                    return Err(GitError::CommitNotFound {
                        commit: sha.to_string(),
                        branch: branch.to_string(),
                    });
                }
                fetched?;
                sha.to_string()
            }
            Some(short) => {
                self.run(
                    "fetch",
                    in_dir()
                        .args(["fetch", "--quiet", "--no-tags", "--"])
                        .arg(repo.as_str())
                        .arg(&branch_ref),
                )
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
                let fetched = self
                    .run(
                        "fetch",
                        in_dir()
                            .args(["fetch", "--quiet", "--depth", "1", "--no-tags", "--"])
                            .arg(repo.as_str())
                            .arg(&branch_ref),
                    )
                    .await;
                if let Err(GitError::Failed { detail, .. }) = &fetched
                    && detail.contains("couldn't find remote ref")
                {
                    return Err(GitError::BranchNotFound {
                        branch: branch.to_string(),
                    });
                }
                fetched?;
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
                &target,
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
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}
