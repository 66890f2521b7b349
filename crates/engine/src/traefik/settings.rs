//! How Helvetia runs Traefik ([`TraefikSettings`]) and Traefik's static configuration rendered
//! from it, with the hash by which a running Traefik started the same way is recognised.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{MANAGED_ENTRY_POINT, SECURE_ENTRY_POINT, TraefikError};

pub(super) const STATIC_CONFIG_FILE: &str = "traefik.toml";
pub(super) const LOG_FILE: &str = "traefik.log";
/// Traefik's own stdout and stderr: what it prints before its log is set up, and crashes.
pub(super) const OUTPUT_FILE: &str = "traefik.out";
const DYNAMIC_DIR: &str = "dynamic";

/// The entry point serving Traefik's API and `/ping`; Traefik serves the insecure API on the
/// entry point with this name.
const API_ENTRY_POINT: &str = "traefik";

/// How long Traefik waits after a change to its dynamic configuration before applying it; its
/// default (2 s) would delay every deploy's switch of traffic.
const PROVIDERS_THROTTLE: &str = "10ms";

/// Where and how Helvetia runs Traefik.
#[derive(Clone)]
pub struct TraefikSettings {
    /// The `traefik` executable.
    pub binary: PathBuf,
    /// Holds the static configuration, the dynamic configuration directory, the pid file and
    /// Traefik's logs. Relative paths are resolved against the current directory.
    pub state_dir: PathBuf,
    /// Where Traefik accepts the traffic it routes, e.g. `:80` or `127.0.0.1:8081`.
    pub entry_point_address: String,
    /// Where Traefik accepts HTTPS, e.g. `:443`; none: plain HTTP only.
    pub secure_address: Option<String>,
    /// Where Traefik serves its API; it has no authentication, so it must be a loopback
    /// address, e.g. `127.0.0.1:7301`.
    pub api_address: String,
    /// Environment variables Traefik gets beyond `PATH` (e.g. `LEGO_CA_CERTIFICATES`).
    pub extra_env: Vec<(String, String)>,
    /// Addresses and CIDR blocks (`--trusted-proxies`) whose `X-Forwarded-*` headers the
    /// entry point passes on; from anyone else it replaces them with what it saw itself.
    pub trusted_ips: Vec<String>,
    /// The installation's id, marked in the dynamic configuration so that only this
    /// installation's Traefik is taken for it.
    pub instance: String,
}

impl fmt::Debug for TraefikSettings {
    /// Values of `extra_env` may be credentials (a DNS provider's token), so only their names
    /// are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: Vec<&str> = self
            .extra_env
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        f.debug_struct("TraefikSettings")
            .field("binary", &self.binary)
            .field("state_dir", &self.state_dir)
            .field("entry_point_address", &self.entry_point_address)
            .field("api_address", &self.api_address)
            .field("extra_env", &env)
            .field("trusted_ips", &self.trusted_ips)
            .field("instance", &self.instance)
            .finish()
    }
}

impl TraefikSettings {
    /// The directory Traefik's file provider watches.
    pub fn dynamic_dir(&self) -> PathBuf {
        self.state_dir.join(DYNAMIC_DIR)
    }

    /// The base URL of Traefik's API.
    /// The port of the HTTPS entry point, when there is one.
    pub fn secure_port(&self) -> Option<u16> {
        let address = self.secure_address.as_ref()?;
        address.rsplit_once(':')?.1.parse().ok()
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_address)
    }

    /// The entry points whose ports Helvetia holds while a Traefik starts (gate.rs): the
    /// services' HTTP and HTTPS ones, never the API's.
    pub(super) fn gated_addresses(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.entry_point_address.as_str()).chain(self.secure_address.as_deref())
    }

    pub(super) fn config_file(&self) -> PathBuf {
        self.state_dir.join(STATIC_CONFIG_FILE)
    }

    /// A copy with an absolute state directory: the path is part of Traefik's command line,
    /// by which a running Traefik is recognised.
    pub(super) fn resolved(&self) -> Result<TraefikSettings, TraefikError> {
        let state_dir =
            std::path::absolute(&self.state_dir).map_err(|source| TraefikError::Io {
                action: "resolving the state directory",
                path: self.state_dir.clone(),
                source,
            })?;
        let api_is_loopback = self
            .api_address
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|address| address.ip().is_loopback());
        if !api_is_loopback {
            return Err(TraefikError::InvalidSettings(format!(
                "the API address {:?} is not a loopback address with a port; Traefik's API has \
                 no authentication",
                self.api_address
            )));
        }
        Ok(TraefikSettings {
            state_dir,
            ..self.clone()
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StaticConfig<'a> {
    global: Global,
    entry_points: BTreeMap<&'static str, EntryPoint<'a>>,
    api: Api,
    ping: Ping,
    log: Log<'a>,
    providers: Providers<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Global {
    check_new_version: bool,
    send_anonymous_usage: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryPoint<'a> {
    address: &'a str,
    /// Lets a restarting Traefik's port be held by Helvetia's gate until it has loaded its
    /// routes (gate.rs).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reuse_port: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    forwarded_headers: Option<ForwardedHeaders<'a>>,
    http: EntryPointHttp,
}

#[derive(Serialize)]
struct ForwardedHeaders<'a> {
    #[serde(rename = "trustedIPs")]
    trusted_ips: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryPointHttp {
    alias_headers_strategy: &'static str,
}

/// Request headers whose names alias another's (`X_Forwarded_For`, `X.Forwarded.For`: CGI,
/// WSGI, PHP and nginx read each as `X-Forwarded-For`) are dropped before routing, so a client
/// cannot spoof a header Traefik sets for the app — the way nginx drops underscored headers by
/// default. Traefik's own default keeps them (and warns about it).
const ALIAS_HEADERS_STRATEGY: &str = "delete";

impl<'a> EntryPoint<'a> {
    fn at(address: &'a str, reuse_port: bool) -> EntryPoint<'a> {
        EntryPoint {
            address,
            reuse_port,
            forwarded_headers: None,
            http: EntryPointHttp {
                alias_headers_strategy: ALIAS_HEADERS_STRATEGY,
            },
        }
    }
}

#[derive(Serialize)]
struct Api {
    insecure: bool,
    dashboard: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ping {
    entry_point: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Log<'a> {
    level: &'static str,
    file_path: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Providers<'a> {
    providers_throttle_duration: &'static str,
    file: FileProvider<'a>,
}

#[derive(Serialize)]
struct FileProvider<'a> {
    directory: &'a str,
    watch: bool,
}

/// Traefik's static configuration for `settings` (whose state directory is absolute).
pub(super) fn render_static_config(settings: &TraefikSettings) -> Result<String, TraefikError> {
    let utf8 = |path: PathBuf| {
        path.to_str().map(str::to_owned).ok_or_else(|| {
            TraefikError::InvalidSettings(format!("{} is not valid UTF-8", path.display()))
        })
    };
    let log_file = utf8(settings.state_dir.join(LOG_FILE))?;
    let dynamic_dir = utf8(settings.dynamic_dir())?;
    let mut entry_points = BTreeMap::from([
        (
            MANAGED_ENTRY_POINT,
            EntryPoint {
                forwarded_headers: (!settings.trusted_ips.is_empty()).then_some(ForwardedHeaders {
                    trusted_ips: &settings.trusted_ips,
                }),
                ..EntryPoint::at(&settings.entry_point_address, true)
            },
        ),
        (
            API_ENTRY_POINT,
            EntryPoint::at(&settings.api_address, false),
        ),
    ]);
    if let Some(address) = &settings.secure_address {
        entry_points.insert(
            SECURE_ENTRY_POINT,
            EntryPoint {
                forwarded_headers: (!settings.trusted_ips.is_empty()).then_some(ForwardedHeaders {
                    trusted_ips: &settings.trusted_ips,
                }),
                ..EntryPoint::at(address, true)
            },
        );
    }
    let config = StaticConfig {
        global: Global {
            check_new_version: false,
            send_anonymous_usage: false,
        },
        entry_points,
        api: Api {
            insecure: true,
            dashboard: false,
        },
        ping: Ping {
            entry_point: API_ENTRY_POINT,
        },
        log: Log {
            level: "INFO",
            file_path: &log_file,
        },
        providers: Providers {
            providers_throttle_duration: PROVIDERS_THROTTLE,
            file: FileProvider {
                directory: &dynamic_dir,
                watch: true,
            },
        },
    };
    toml::to_string(&config).map_err(|error| TraefikError::InvalidSettings(error.to_string()))
}

/// The addresses of the entry points a Traefik started with `static_config` listens on with
/// `SO_REUSEPORT`: a gate can join their ports' groups while it runs.
pub(super) fn reuse_port_addresses(static_config: &str) -> Vec<String> {
    let Ok(config) = static_config.parse::<toml::Table>() else {
        return vec![];
    };
    let entry_points = config.get("entryPoints").and_then(toml::Value::as_table);
    entry_points
        .into_iter()
        .flat_map(|table| table.values())
        .filter(|entry_point| entry_point.get("reusePort") == Some(&toml::Value::Boolean(true)))
        .filter_map(|entry_point| entry_point.get("address")?.as_str().map(str::to_owned))
        .collect()
}

/// A hash of everything a Traefik is started with — its static configuration, its binary and
/// its environment — so a Traefik started differently is replaced rather than adopted.
/// Environment values may be credentials; only their hash is written down.
pub(super) fn launch_hash(settings: &TraefikSettings, static_config: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(static_config.as_bytes());
    hasher.update(b"\0");
    hasher.update(settings.binary.as_os_str().as_encoded_bytes());
    for (name, value) in &settings.extra_env {
        hasher.update(b"\0");
        hasher.update(name.as_bytes());
        hasher.update(b"=");
        hasher.update(value.as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(state_dir: &str) -> TraefikSettings {
        TraefikSettings {
            binary: "traefik".into(),
            instance: "0a1b".into(),
            state_dir: state_dir.into(),
            entry_point_address: ":80".into(),
            secure_address: None,
            api_address: "127.0.0.1:7301".into(),
            extra_env: vec![("DNS_TOKEN".into(), "secret".into())],
            trusted_ips: vec![],
        }
    }

    #[test]
    fn the_entry_points_with_reuse_port_are_found_in_a_static_configuration() {
        let mut with_https = settings("/var/lib/helvetia/traefik");
        with_https.secure_address = Some(":443".into());
        let config = render_static_config(&with_https).unwrap();
        let mut found = reuse_port_addresses(&config);
        found.sort();
        assert_eq!(found, [":443", ":80"]);
        assert_eq!(
            with_https.gated_addresses().collect::<Vec<_>>(),
            [":80", ":443"]
        );
        assert!(reuse_port_addresses("not toml [").is_empty());
    }

    #[test]
    fn renders_the_static_configuration() {
        assert_eq!(
            render_static_config(&settings("/var/lib/helvetia/traefik")).unwrap(),
            r#"[global]
checkNewVersion = false
sendAnonymousUsage = false

[entryPoints.traefik]
address = "127.0.0.1:7301"

[entryPoints.traefik.http]
aliasHeadersStrategy = "delete"

[entryPoints.web]
address = ":80"
reusePort = true

[entryPoints.web.http]
aliasHeadersStrategy = "delete"

[api]
insecure = true
dashboard = false

[ping]
entryPoint = "traefik"

[log]
level = "INFO"
filePath = "/var/lib/helvetia/traefik/traefik.log"

[providers]
providersThrottleDuration = "10ms"

[providers.file]
directory = "/var/lib/helvetia/traefik/dynamic"
watch = true
"#
        );
    }

    #[test]
    fn the_entry_point_keeps_forwarded_headers_of_trusted_proxies_only() {
        let mut settings = settings("/tmp/traefik");
        settings.trusted_ips = vec!["10.0.0.0/8".into(), "127.0.0.0/8".into()];
        let rendered: toml::Table =
            toml::from_str(&render_static_config(&settings).unwrap()).unwrap();
        let web = &rendered["entryPoints"]["web"];
        assert_eq!(
            web["forwardedHeaders"]["trustedIPs"],
            toml::Value::Array(vec!["10.0.0.0/8".into(), "127.0.0.0/8".into()])
        );
        assert!(
            rendered["entryPoints"]["traefik"]
                .get("forwardedHeaders")
                .is_none()
        );
    }

    #[test]
    fn paths_cannot_inject_configuration() {
        let state_dir = "/tmp/x\"\n[api]\ndashboard = true\n#";
        let rendered: toml::Table =
            toml::from_str(&render_static_config(&settings(state_dir)).unwrap()).unwrap();
        assert_eq!(rendered["api"]["dashboard"].as_bool(), Some(false));
        assert_eq!(
            rendered["providers"]["file"]["directory"].as_str(),
            Some(format!("{state_dir}/dynamic").as_str())
        );
    }

    #[test]
    fn the_api_must_listen_on_loopback() {
        let mut exposed = settings("/tmp/traefik");
        for address in [":7301", "0.0.0.0:7301", "10.0.0.1:7301", "localhost"] {
            exposed.api_address = address.into();
            assert!(
                matches!(exposed.resolved(), Err(TraefikError::InvalidSettings(_))),
                "{address}"
            );
        }
        exposed.api_address = "[::1]:7301".into();
        assert!(exposed.resolved().is_ok());
    }

    #[test]
    fn debug_output_hides_environment_values() {
        let shown = format!("{:?}", settings("/tmp/traefik"));
        assert!(shown.contains("DNS_TOKEN"));
        assert!(!shown.contains("secret"));
    }

    #[test]
    fn any_change_to_how_traefik_is_started_changes_the_launch_hash() {
        let base = settings("/tmp/traefik");
        let hash = launch_hash(&base, "config");
        assert_eq!(hash, launch_hash(&base.clone(), "config"));
        assert_ne!(hash, launch_hash(&base, "other config"));
        let mut binary = base.clone();
        binary.binary = "/opt/traefik/bin/traefik".into();
        assert_ne!(hash, launch_hash(&binary, "config"));
        let mut env = base.clone();
        env.extra_env[0].1 = "rotated".into();
        assert_ne!(hash, launch_hash(&env, "config"));
    }
}
