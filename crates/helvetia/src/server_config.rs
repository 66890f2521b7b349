//! `helvetia server`'s settings: defaults, then an optional TOML file, then `HELVETIA_*`
//! environment variables, then flags — each later source overriding the earlier ones.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use helvetia_core::git::RepoPolicy;
use helvetia_core::job::QueueSettings;
use helvetia_server::ServerConfig;
use helvetia_store::Location;
use serde::Deserialize;

use crate::logging::LogFormat;

#[derive(Debug, Args, Clone)]
pub struct ServerArgs {
    /// Address the API listens on.
    #[arg(long, env = "HELVETIA_LISTEN", default_value = "127.0.0.1:7300")]
    pub listen: SocketAddr,
    /// Where state lives: the SQLite database, the admin token, locks.
    /// [default: /var/lib/helvetia as root, else ~/.local/share/helvetia]
    #[arg(long, env = "HELVETIA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use this PostgreSQL database (postgres://…) instead of SQLite in the data dir.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Services are served at <service>.<project>.<base-domain>.
    #[arg(long, env = "HELVETIA_BASE_DOMAIN", default_value = ServerConfig::DEFAULT_BASE_DOMAIN)]
    pub base_domain: String,
    /// Accept repositories on this server's disk (file:// URLs and absolute paths). Off by
    /// default: on a shared server they would expose any repository Helvetia can read.
    #[arg(long, env = "HELVETIA_ALLOW_LOCAL_REPOS")]
    pub allow_local_repos: bool,
    /// Jobs (deployments) run at the same time.
    #[arg(long, env = "HELVETIA_CONCURRENCY", default_value_t = QueueSettings::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// How long shutdown waits for running deployments, e.g. `30s`.
    #[arg(long, env = "HELVETIA_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Log format.
    #[arg(long, env = "HELVETIA_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// A TOML file with any of these settings (keys as the flags, with `_`: `base_domain = …`).
    #[arg(long, env = "HELVETIA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The optional configuration file. Unknown keys are an error, so a typo is not ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    base_domain: Option<String>,
    allow_local_repos: Option<bool>,
    concurrency: Option<usize>,
    shutdown_grace: Option<String>,
    log_format: Option<LogFormat>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("`{text}` is not a duration like 30s or 2m: {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("`{text}` must not be negative"))
}

/// True when the user did not set `id` by flag or environment.
fn defaulted(matches: &ArgMatches, id: &str) -> bool {
    !matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

impl ServerArgs {
    /// Fills every setting the user left at its default from the configuration file.
    pub fn apply_file(mut self, matches: &ArgMatches) -> anyhow::Result<ServerArgs> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?;
        let file: FileSettings = toml::from_str(&text)
            .with_context(|| format!("in the configuration file {}", path.display()))?;
        macro_rules! from_file {
            ($field:ident) => {
                if defaulted(matches, stringify!($field)) {
                    if let Some(value) = file.$field {
                        self.$field = value.into();
                    }
                }
            };
        }
        from_file!(listen);
        from_file!(data_dir);
        from_file!(database_url);
        from_file!(base_domain);
        from_file!(allow_local_repos);
        from_file!(concurrency);
        from_file!(log_format);
        if defaulted(matches, "shutdown_grace") {
            if let Some(grace) = file.shutdown_grace {
                self.shutdown_grace = parse_duration(&grace).map_err(anyhow::Error::msg)?;
            }
        }
        Ok(self)
    }

    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        if is_root() {
            return Ok(PathBuf::from("/var/lib/helvetia"));
        }
        match std::env::var_os("HOME") {
            Some(home) => Ok(Path::new(&home).join(".local/share/helvetia")),
            None => bail!("set --data-dir (or HELVETIA_DATA_DIR): there is no HOME to default to"),
        }
    }

    pub fn into_config(self) -> anyhow::Result<ServerConfig> {
        let data_dir = self.data_dir()?;
        let database = match &self.database_url {
            Some(url) if !url.is_empty() => Location::from_url(url)?,
            _ => Location::SqliteFile(data_dir.join("helvetia.db")),
        };
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        let base_domain = self.base_domain.trim_end_matches('.').to_ascii_lowercase();
        if base_domain.is_empty()
            || !base_domain
                .split('.')
                .all(|label| helvetia_core::name::ProjectName::parse(label).is_ok())
        {
            bail!(
                "--base-domain `{}` is not a valid domain name",
                self.base_domain
            );
        }
        Ok(ServerConfig {
            data_dir,
            database,
            repo_policy: RepoPolicy {
                allow_local: self.allow_local_repos,
            },
            base_domain,
            queue: QueueSettings {
                concurrency: self.concurrency,
                ..QueueSettings::default()
            },
            shutdown_grace: self.shutdown_grace,
        })
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|uids| uids.split_whitespace().next().map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}
