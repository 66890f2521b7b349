//! `helvetia server`'s build settings: where builds run (`--builder`) and the caps of builds
//! on Helvetia's own builder engine — server defaults and the most a service may ask for.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use helvetia_core::runtime::ResourceLimits;
use helvetia_core::stack::StackImages;
use helvetia_core::validation::FieldErrors;
use helvetia_server::{BuilderConfig, RegistryAddress, RegistryConfig};

use crate::settings_parsers::{find_executable, parse_bytes};

/// Where builds run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuilderMode {
    /// A builder engine of Helvetia's own, its steps within memory, CPU and pids caps.
    Isolated,
    /// The host engine's BuildKit, uncapped.
    Host,
}

#[derive(Debug, Args, Clone)]
pub struct BuilderArgs {
    /// Where builds run: `isolated` (a builder engine of Helvetia's own whose steps run within
    /// caps) or `host` (the host engine's BuildKit, uncapped). [default: isolated where it can
    /// run — as root, with the memory, cpu and pids cgroup controllers — else host]
    #[arg(long, env = "HELVETIA_BUILDER", value_enum)]
    pub builder: Option<BuilderMode>,
    /// The `dockerd` executable the isolated builder runs. Looked up in PATH when it has no `/`.
    #[arg(long, env = "HELVETIA_DOCKERD_BIN", default_value = "dockerd")]
    pub dockerd_bin: PathBuf,
    /// The isolated builder's bridge address with its prefix: its build steps' network, which
    /// reaches nothing.
    #[arg(
        long,
        env = "HELVETIA_BUILDER_BRIDGE_ADDRESS",
        default_value = "10.213.0.1/24"
    )]
    pub builder_bridge_address: String,
    /// Where Helvetia runs Debian's `docker-registry` between build and run (the builder
    /// pushes, the host engine pulls by digest): `auto` (a loopback port chosen at the first
    /// start and kept in the data dir; without `docker-registry` installed, images are
    /// copied), a loopback address `127.0.0.1:PORT`, or `off` (images are copied from the
    /// builder to the host engine directly).
    #[arg(
        long,
        env = "HELVETIA_REGISTRY_ADDRESS",
        value_name = "auto|off|ADDRESS",
        default_value = "auto",
        value_parser = parse_registry_address
    )]
    pub registry_address: RegistryChoice,
    /// The `docker-registry` executable. Looked up in PATH when it has no `/`.
    #[arg(long, env = "HELVETIA_REGISTRY_BIN", default_value = "docker-registry")]
    pub registry_bin: PathBuf,
    /// Memory of a build (all its steps together) for services that set none.
    #[arg(long, env = "HELVETIA_BUILD_MEMORY", default_value = "2G", value_parser = parse_bytes)]
    pub build_memory: u64,
    /// CPU of a build, in cores, for services that set none.
    #[arg(long, env = "HELVETIA_BUILD_CPUS", default_value_t = 1.0)]
    pub build_cpus: f64,
    /// Processes and threads of a build for services that set none.
    #[arg(long, env = "HELVETIA_BUILD_PIDS", default_value_t = 4096)]
    pub build_pids: u32,
    /// The most memory a service's build may ask for.
    #[arg(long, env = "HELVETIA_MAX_BUILD_MEMORY", default_value = "8G", value_parser = parse_bytes)]
    pub max_build_memory: u64,
    /// The most CPU a service's build may ask for, in cores.
    #[arg(long, env = "HELVETIA_MAX_BUILD_CPUS", default_value_t = 4.0)]
    pub max_build_cpus: f64,
    /// The most processes a service's build may ask for.
    #[arg(long, env = "HELVETIA_MAX_BUILD_PIDS", default_value_t = 32_768)]
    pub max_build_pids: u32,
    /// A base image of the Dockerfiles Helvetia generates for repositories without one, as
    /// KEY=IMAGE (repeatable; keys: node, python, go, go-runtime, static, procfile).
    /// [default: the official slim images]
    #[arg(
        long = "stack-image",
        env = "HELVETIA_STACK_IMAGES",
        value_delimiter = ',',
        value_name = "KEY=IMAGE"
    )]
    pub stack_images: Vec<String>,
}

/// The build settings of the configuration file, under the flags' names.
#[derive(Debug, Default)]
pub struct BuilderFile {
    pub builder: Option<BuilderMode>,
    pub dockerd_bin: Option<PathBuf>,
    pub builder_bridge_address: Option<String>,
    pub registry_address: Option<String>,
    pub registry_bin: Option<PathBuf>,
    pub build_memory: Option<String>,
    pub build_cpus: Option<f64>,
    pub build_pids: Option<u32>,
    pub max_build_memory: Option<String>,
    pub max_build_cpus: Option<f64>,
    pub max_build_pids: Option<u32>,
    pub stack_images: Option<Vec<String>>,
}

impl BuilderArgs {
    /// The base images of generated Dockerfiles: the defaults, with `--stack-image`s over them.
    pub fn stack_images(&self) -> anyhow::Result<StackImages> {
        let mut images = StackImages::default();
        for assignment in &self.stack_images {
            images
                .set(assignment)
                .map_err(|e| anyhow::anyhow!("--stack-image {e}"))?;
        }
        Ok(images)
    }

    /// Takes from `file` every setting the user left at its default (`defaulted`).
    pub fn apply_file(
        &mut self,
        file: BuilderFile,
        defaulted: impl Fn(&str) -> bool,
    ) -> anyhow::Result<()> {
        let take = |key: &str| defaulted(key);
        if let Some(mode) = file.builder.filter(|_| take("builder")) {
            self.builder = Some(mode);
        }
        if let Some(path) = file.dockerd_bin.filter(|_| take("dockerd_bin")) {
            self.dockerd_bin = path;
        }
        if let Some(path) = file.registry_bin.filter(|_| take("registry_bin")) {
            self.registry_bin = path;
        }
        if let Some(address) = file
            .builder_bridge_address
            .filter(|_| take("builder_bridge_address"))
        {
            self.builder_bridge_address = address;
        }
        if let Some(text) = file.registry_address.filter(|_| take("registry_address")) {
            self.registry_address = parse_registry_address(&text)
                .map_err(|e| anyhow::anyhow!("registry_address: {e}"))?;
        }
        for (key, text, setting) in [
            ("build_memory", file.build_memory, &mut self.build_memory),
            (
                "max_build_memory",
                file.max_build_memory,
                &mut self.max_build_memory,
            ),
        ] {
            if let Some(text) = text.filter(|_| take(key)) {
                *setting = parse_bytes(&text).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
            }
        }
        for (key, value, setting) in [
            ("build_cpus", file.build_cpus, &mut self.build_cpus),
            (
                "max_build_cpus",
                file.max_build_cpus,
                &mut self.max_build_cpus,
            ),
        ] {
            if let Some(value) = value.filter(|_| take(key)) {
                *setting = value;
            }
        }
        if let Some(images) = file.stack_images.filter(|_| take("stack_images")) {
            self.stack_images = images;
        }
        for (key, value, setting) in [
            ("build_pids", file.build_pids, &mut self.build_pids),
            (
                "max_build_pids",
                file.max_build_pids,
                &mut self.max_build_pids,
            ),
        ] {
            if let Some(value) = value.filter(|_| take(key)) {
                *setting = value;
            }
        }
        Ok(())
    }

    /// Where builds run, and the build caps' defaults and maxima.
    pub fn settings(&self) -> anyhow::Result<(BuilderConfig, ResourceLimits, ResourceLimits)> {
        let defaults = ResourceLimits {
            memory_bytes: Some(self.build_memory),
            cpus: Some(self.build_cpus),
            pids: Some(self.build_pids),
        };
        let maxima = ResourceLimits {
            memory_bytes: Some(self.max_build_memory),
            cpus: Some(self.max_build_cpus),
            pids: Some(self.max_build_pids),
        };
        let mut problems = FieldErrors::new();
        defaults.validate("build", &maxima, &mut problems);
        if !problems.is_empty() {
            bail!("the default build caps must be valid and within the maximum: {problems}");
        }
        check_bridge_address(&self.builder_bridge_address)?;
        let dockerd = find_executable(
            &self.dockerd_bin,
            "install Docker's engine (Debian: docker.io) or pass --dockerd-bin",
        );
        let registry_bin = || {
            find_executable(
                &self.registry_bin,
                "install Debian's docker-registry or pass --registry-bin",
            )
        };
        let registry = match self.registry_address {
            RegistryChoice::Off => None,
            RegistryChoice::Address(address) => Some(RegistryConfig {
                binary: registry_bin()?,
                address: RegistryAddress::Fixed(address),
            }),
            RegistryChoice::Auto => match registry_bin() {
                Ok(binary) => Some(RegistryConfig {
                    binary,
                    address: RegistryAddress::PerInstallation,
                }),
                Err(error) => {
                    tracing::warn!(
                        "built images are copied from the builder to the host engine without \
                         a registry: {error}"
                    );
                    None
                }
            },
        };
        let isolated = |dockerd| BuilderConfig::Isolated {
            dockerd,
            bridge_address: self.builder_bridge_address.clone(),
            registry: registry.clone(),
        };
        let config = match self.builder {
            Some(BuilderMode::Host) => BuilderConfig::Host,
            Some(BuilderMode::Isolated) => isolated(dockerd?),
            // Isolated by default, where it can run; said so when it cannot.
            None => match BuilderConfig::isolation_available()
                .and_then(|()| dockerd.map_err(|error| error.to_string()))
            {
                Ok(dockerd) => isolated(dockerd),
                Err(why) => {
                    tracing::warn!(
                        "builds run in the host engine, uncapped: the isolated builder cannot \
                         run here ({why})"
                    );
                    BuilderConfig::Host
                }
            },
        };
        Ok((config, defaults, maxima))
    }
}

/// `--registry-address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryChoice {
    Auto,
    Off,
    Address(std::net::SocketAddr),
}

fn parse_registry_address(text: &str) -> Result<RegistryChoice, String> {
    match text {
        "auto" => Ok(RegistryChoice::Auto),
        "off" => Ok(RegistryChoice::Off),
        _ => match text.parse::<std::net::SocketAddr>() {
            Ok(address) if address.ip().is_loopback() => Ok(RegistryChoice::Address(address)),
            Ok(_) => Err(format!(
                "`{text}` must be a loopback address: the registry has no authentication"
            )),
            Err(_) => Err(format!(
                "`{text}` is not `auto`, `off` or an address like 127.0.0.1:5000"
            )),
        },
    }
}

/// An IPv4 address with a prefix of 8 to 30 bits; it reaches `ip address add` as one argument.
fn check_bridge_address(text: &str) -> anyhow::Result<()> {
    let valid = text.split_once('/').is_some_and(|(address, prefix)| {
        address.parse::<Ipv4Addr>().is_ok()
            && prefix
                .parse::<u8>()
                .is_ok_and(|prefix| (8..=30).contains(&prefix))
    });
    if !valid {
        bail!(
            "--builder-bridge-address `{text}` must be an IPv4 address with a prefix, e.g. 10.213.0.1/24"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_per_installation_off_or_on_a_loopback_address() {
        assert_eq!(parse_registry_address("auto"), Ok(RegistryChoice::Auto));
        assert_eq!(parse_registry_address("off"), Ok(RegistryChoice::Off));
        assert_eq!(
            parse_registry_address("127.0.0.1:5055"),
            Ok(RegistryChoice::Address("127.0.0.1:5055".parse().unwrap()))
        );
        assert!(parse_registry_address("0.0.0.0:5055").is_err());
        assert!(parse_registry_address("registry:5000").is_err());
    }

    #[test]
    fn the_bridge_address_is_an_address_with_a_prefix() {
        assert!(check_bridge_address("10.213.0.1/24").is_ok());
        for bad in [
            "10.213.0.1",
            "10.213.0.1/31",
            "x/24",
            "10.0.0.1/24 dev lo",
            "-1/24",
        ] {
            assert!(check_bridge_address(bad).is_err(), "{bad}");
        }
    }
}
