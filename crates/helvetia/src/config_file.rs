//! `helvetia server`'s optional TOML configuration file: every setting the user left at its
//! default (no flag, no environment variable) is taken from it.

use anyhow::Context;
use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::builder_config::{BuilderFile, BuilderMode};
use crate::logging::LogFormat;
use crate::server_config::{
    ServerArgs, TraefikMode, parse_bytes, parse_duration, parse_public_url, parse_resolver,
    parse_trusted_proxies,
};

/// The optional configuration file. Unknown keys are an error, so a typo is not ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    base_domain: Option<String>,
    allow_local_repos: Option<bool>,
    allow_private_destinations: Option<bool>,
    signup_domains: Option<Vec<String>>,
    signup_github_orgs: Option<Vec<String>>,
    public_addresses: Option<Vec<std::net::IpAddr>>,
    resolver: Option<String>,
    concurrency: Option<usize>,
    shutdown_grace: Option<String>,
    log_format: Option<LogFormat>,
    traefik: Option<TraefikMode>,
    traefik_bin: Option<PathBuf>,
    http_address: Option<String>,
    traefik_api: Option<String>,
    traefik_dynamic_dir: Option<PathBuf>,
    traefik_entry_point: Option<String>,
    network_pool: Option<String>,
    default_memory: Option<String>,
    default_cpus: Option<f64>,
    max_memory: Option<String>,
    max_cpus: Option<f64>,
    images_kept: Option<usize>,
    disk_budget: Option<String>,
    max_replicas: Option<u32>,
    log_max_size: Option<String>,
    log_retention: Option<String>,
    log_keep_deployments: Option<i64>,
    max_log_followers: Option<usize>,
    metrics_interval: Option<String>,
    metrics_raw_retention: Option<String>,
    metrics_minute_retention: Option<String>,
    metrics_hour_retention: Option<String>,
    metrics_listen: Option<SocketAddr>,
    public_url: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    github_url: Option<String>,
    github_api_url: Option<String>,
    builder: Option<BuilderMode>,
    dockerd_bin: Option<PathBuf>,
    builder_bridge_address: Option<String>,
    registry_address: Option<String>,
    registry_bin: Option<PathBuf>,
    build_memory: Option<String>,
    build_cpus: Option<f64>,
    build_pids: Option<u32>,
    max_build_memory: Option<String>,
    max_build_cpus: Option<f64>,
    max_build_pids: Option<u32>,
    stack_images: Option<Vec<String>>,
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
        from_file!(allow_private_destinations);
        from_file!(signup_domains);
        from_file!(signup_github_orgs);
        from_file!(public_addresses);
        from_file!(concurrency);
        from_file!(log_format);
        from_file!(traefik);
        from_file!(traefik_bin);
        from_file!(http_address);
        from_file!(traefik_dynamic_dir);
        from_file!(traefik_entry_point);
        from_file!(network_pool);
        from_file!(default_cpus);
        from_file!(max_cpus);
        from_file!(images_kept);
        from_file!(max_replicas);
        from_file!(log_keep_deployments);
        from_file!(max_log_followers);
        from_file!(metrics_listen);
        let metrics_durations = [
            (
                "metrics_interval",
                &mut self.metrics_interval,
                file.metrics_interval,
            ),
            (
                "metrics_raw_retention",
                &mut self.metrics_raw_retention,
                file.metrics_raw_retention,
            ),
            (
                "metrics_minute_retention",
                &mut self.metrics_minute_retention,
                file.metrics_minute_retention,
            ),
            (
                "metrics_hour_retention",
                &mut self.metrics_hour_retention,
                file.metrics_hour_retention,
            ),
        ];
        for (id, setting, text) in metrics_durations {
            if defaulted(matches, id)
                && let Some(text) = text
            {
                *setting = parse_duration(&text).map_err(anyhow::Error::msg)?;
            }
        }
        let sizes = [
            ("log_max_size", &mut self.log_max_size, file.log_max_size),
            ("disk_budget", &mut self.disk_budget, file.disk_budget),
            (
                "default_memory",
                &mut self.default_memory,
                file.default_memory,
            ),
            ("max_memory", &mut self.max_memory, file.max_memory),
        ];
        for (id, setting, text) in sizes {
            if defaulted(matches, id)
                && let Some(text) = text
            {
                *setting = parse_bytes(&text).map_err(|e| anyhow::anyhow!("{id}: {e}"))?;
            }
        }
        if defaulted(matches, "log_retention")
            && let Some(retention) = file.log_retention
        {
            self.log_retention = parse_duration(&retention).map_err(anyhow::Error::msg)?;
        }
        if defaulted(matches, "resolver")
            && let Some(resolver) = file.resolver
        {
            self.resolver = Some(parse_resolver(&resolver).map_err(anyhow::Error::msg)?);
        }
        if defaulted(matches, "public_url")
            && let Some(url) = file.public_url
        {
            self.public_url =
                Some(parse_public_url(&url).map_err(|e| anyhow::anyhow!("public_url: {e}"))?);
        }
        let builder = BuilderFile {
            builder: file.builder,
            dockerd_bin: file.dockerd_bin,
            builder_bridge_address: file.builder_bridge_address,
            registry_address: file.registry_address,
            registry_bin: file.registry_bin,
            build_memory: file.build_memory,
            build_cpus: file.build_cpus,
            build_pids: file.build_pids,
            max_build_memory: file.max_build_memory,
            max_build_cpus: file.max_build_cpus,
            max_build_pids: file.max_build_pids,
            stack_images: file.stack_images,
        };
        (self.builder).apply_file(builder, |key| defaulted(matches, key))?;
        let (web, api) = (file.github_url, file.github_api_url);
        (self.github).apply_file(web, api, |key| defaulted(matches, key))?;
        if defaulted(matches, "trusted_proxies")
            && let Some(list) = file.trusted_proxies
        {
            self.trusted_proxies = Some(
                parse_trusted_proxies(&list.join(","))
                    .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?,
            );
        }
        if defaulted(matches, "traefik_api") && file.traefik_api.is_some() {
            self.traefik_api = file.traefik_api;
        }
        if defaulted(matches, "shutdown_grace")
            && let Some(grace) = file.shutdown_grace
        {
            self.shutdown_grace = parse_duration(&grace).map_err(anyhow::Error::msg)?;
        }
        Ok(self)
    }
}
