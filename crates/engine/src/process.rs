//! Child processes, the only way Helvetia runs another program.
//!
//! A [`Program`] is an argument vector: there is no shell anywhere, so no user input can be
//! interpreted as shell syntax. Children get an explicit, minimal environment — never the
//! server's own, which may hold keys and database passwords — and are killed when the future
//! waiting for them is dropped or times out. What a child prints is read as it comes but only
//! [`OUTPUT_LIMIT`] of each stream is kept, so a child (or a hostile server talking to it)
//! printing for its whole deadline costs no more memory than a quiet one.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// The `PATH` children get: system directories only.
pub const CHILD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How much of each output stream [`Program::run`] keeps: the start of stdout (what callers
/// parse) and the end of stderr (where a failure is explained).
pub const OUTPUT_LIMIT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` did not finish within {timeout:?}")]
    Timeout { program: String, timeout: Duration },
}

/// A program to run: argv, environment, working directory and a deadline.
#[derive(Debug, Clone)]
pub struct Program {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    timeout: Duration,
}

/// What a finished program printed, within [`OUTPUT_LIMIT`] per stream.
#[derive(Debug, Clone)]
pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    /// The first [`OUTPUT_LIMIT`] bytes of stdout.
    pub stdout: String,
    /// The last [`OUTPUT_LIMIT`] bytes of stderr.
    pub stderr: String,
}

impl Program {
    /// `program` with the minimal environment (`PATH`, `LANG`) and a one-minute deadline.
    pub fn new(program: impl AsRef<OsStr>) -> Program {
        Program {
            program: program.as_ref().to_owned(),
            args: vec![],
            env: vec![
                ("PATH".into(), CHILD_PATH.into()),
                ("LANG".into(), "C.UTF-8".into()),
            ],
            cwd: None,
            timeout: Duration::from_secs(60),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Program {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Program
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Program {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Program {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Program {
        self.timeout = timeout;
        self
    }

    /// The program's name, for messages.
    pub fn name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    /// The configured command, ready to spawn; for callers that need to supervise the child
    /// themselves rather than wait for its output.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        command
    }

    /// Runs the program to completion and captures its output (within [`OUTPUT_LIMIT`]).
    pub async fn run(&self) -> Result<Output, ProcessError> {
        let mut command = self.command();
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let spawn_error = |source| ProcessError::Spawn {
            program: self.name(),
            source,
        };
        let mut child = command.spawn().map_err(spawn_error)?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(spawn_error(std::io::Error::other(
                "its output is not piped",
            )));
        };
        let finished = async {
            let (stdout, stderr, status) = tokio::join!(head(stdout), tail(stderr), child.wait());
            Ok::<_, std::io::Error>((stdout?, stderr?, status?))
        };
        let (stdout, stderr, status) = tokio::time::timeout(self.timeout, finished)
            .await
            .map_err(|_| ProcessError::Timeout {
                program: self.name(),
                timeout: self.timeout,
            })?
            .map_err(spawn_error)?;
        Ok(Output {
            success: status.success(),
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}

/// The first [`OUTPUT_LIMIT`] bytes of `stream`, read to its end (a child blocked on a full
/// pipe would never exit).
async fn head(mut stream: impl AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut buffer = vec![0; 8192];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(kept);
        }
        let room = OUTPUT_LIMIT - kept.len();
        kept.extend_from_slice(&buffer[..read.min(room)]);
    }
}

/// The last [`OUTPUT_LIMIT`] bytes of `stream`, read to its end.
async fn tail(mut stream: impl AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut kept = std::collections::VecDeque::with_capacity(OUTPUT_LIMIT);
    let mut buffer = vec![0; 8192];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(kept.into());
        }
        kept.extend(&buffer[..read]);
        let over = kept.len().saturating_sub(OUTPUT_LIMIT);
        kept.drain(..over);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn children_see_only_the_minimal_environment() {
        let output = Program::new("env").run().await.unwrap();
        assert!(output.success);
        let mut names: Vec<&str> = output
            .stdout
            .lines()
            .filter_map(|line| line.split('=').next())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["LANG", "PATH"]);
    }

    #[tokio::test]
    async fn arguments_are_never_interpreted_by_a_shell() {
        let output = Program::new("echo")
            .arg("$(id) `id` ; rm -rf / && echo pwned")
            .run()
            .await
            .unwrap();
        assert_eq!(output.stdout, "$(id) `id` ; rm -rf / && echo pwned\n");
    }

    #[tokio::test]
    async fn only_the_start_of_stdout_and_the_end_of_stderr_are_kept() {
        let output = Program::new("head")
            .args(["-c", "20000000", "/dev/zero"])
            .run()
            .await
            .unwrap();
        assert!(output.success);
        assert_eq!(output.stdout.len(), OUTPUT_LIMIT);
        // dd reports how much it copied on stderr, after the copy itself.
        let output = Program::new("dd")
            .args(["if=/dev/zero", "of=/dev/stderr", "bs=1M", "count=20"])
            .run()
            .await
            .unwrap();
        assert!(output.success);
        assert!(output.stderr.len() <= OUTPUT_LIMIT);
        assert!(output.stderr.contains(" copied"), "{:?}", output.stderr);
    }

    #[tokio::test]
    async fn slow_programs_time_out() {
        let error = Program::new("sleep")
            .arg("5")
            .timeout(Duration::from_millis(100))
            .run()
            .await
            .unwrap_err();
        assert!(matches!(error, ProcessError::Timeout { .. }), "{error}");
    }
}
