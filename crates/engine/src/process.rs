//! Child processes, the only way Helvetia runs another program.
//!
//! A [`Program`] is an argument vector: there is no shell anywhere, so no user input can be
//! interpreted as shell syntax. Children get an explicit, minimal environment — never the
//! server's own, which may hold keys and database passwords — and are killed when the future
//! waiting for them is dropped or times out.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// The `PATH` children get: system directories only.
pub const CHILD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

/// What a finished program printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
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

    /// Runs the program to completion and captures its output.
    pub async fn run(&self) -> Result<Output, ProcessError> {
        let mut command = self.command();
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = command.spawn().map_err(|source| ProcessError::Spawn {
            program: self.name(),
            source,
        })?;
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| ProcessError::Timeout {
                program: self.name(),
                timeout: self.timeout,
            })?
            .map_err(|source| ProcessError::Spawn {
                program: self.name(),
                source,
            })?;
        Ok(Output {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
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
