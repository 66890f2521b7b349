//! How a service runs: its health check, its deploy timeouts and its resource limits.
//!
//! Every setting has a default that works with no configuration; the named constants below are
//! the one place those defaults live. The store keeps these settings as JSON, so adding one is
//! not a schema migration; unknown or missing fields take their defaults when read.

use std::time::Duration;

use crate::security::ContainerSecurity;
use crate::validation::{FieldErrors, Invalid};

/// Durations are stored and sent as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// The defaults of the duration fields in the OpenAPI document, in the milliseconds they are
/// sent in (the document would otherwise show `Duration`'s own serde form).
#[cfg(feature = "openapi")]
mod default_millis {
    use super::{DeployTimeouts, HealthCheck};

    pub fn interval() -> u128 {
        HealthCheck::DEFAULT_INTERVAL.as_millis()
    }
    pub fn timeout() -> u128 {
        HealthCheck::DEFAULT_TIMEOUT.as_millis()
    }
    pub fn build() -> u128 {
        DeployTimeouts::DEFAULT_BUILD.as_millis()
    }
    pub fn startup() -> u128 {
        DeployTimeouts::DEFAULT_STARTUP.as_millis()
    }
    pub fn drain() -> u128 {
        DeployTimeouts::DEFAULT_DRAIN.as_millis()
    }
    pub fn stop_grace() -> u128 {
        DeployTimeouts::DEFAULT_STOP_GRACE.as_millis()
    }
    pub fn worker_ready() -> u128 {
        DeployTimeouts::DEFAULT_WORKER_READY.as_millis()
    }
    pub fn release() -> u128 {
        DeployTimeouts::DEFAULT_RELEASE.as_millis()
    }
}

/// How the platform decides an app is healthy: probed from outside its container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheck {
    /// HTTP path to `GET`.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 1024, pattern = r"^/[^\x00-\x1f\x7f-\x9f ]*$")
    )]
    pub path: String,
    /// Check only that the port accepts TCP connections, not HTTP.
    pub tcp: bool,
    /// Lowest status that counts as healthy.
    #[cfg_attr(feature = "openapi", schema(minimum = 100, maximum = 599))]
    pub status_min: u16,
    /// Highest status that counts as healthy; not below `status_min`.
    #[cfg_attr(feature = "openapi", schema(minimum = 100, maximum = 599))]
    pub status_max: u16,
    /// How often a live app is probed, in milliseconds.
    #[serde(with = "millis", rename = "interval_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64, minimum = 1000, maximum = 3_600_000, default = default_millis::interval))]
    pub interval: Duration,
    /// How long one probe may take, in milliseconds.
    #[serde(with = "millis", rename = "timeout_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64, minimum = 1, maximum = 60_000, default = default_millis::timeout))]
    pub timeout: Duration,
    /// Consecutive successes before a new container counts as ready.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10))]
    pub healthy_threshold: u32,
    /// Consecutive failures before a live app counts as unhealthy.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10))]
    pub unhealthy_threshold: u32,
    /// Failures during this time after start do not count, in milliseconds.
    #[serde(with = "millis", rename = "start_period_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64, default = 0))]
    pub start_period: Duration,
}

impl HealthCheck {
    pub const DEFAULT_PATH: &str = "/";
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
    pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 1;
    pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;

    pub fn validate(&self, errors: &mut FieldErrors) {
        let path = &self.path;
        if !path.starts_with('/')
            || path.len() > 1024
            || path.chars().any(|c| c.is_control() || c == ' ')
        {
            errors.add(
                "health.path",
                Invalid::new("must start with '/' and contain no spaces"),
            );
        }
        if !(100..=599).contains(&self.status_min)
            || !(100..=599).contains(&self.status_max)
            || self.status_min > self.status_max
        {
            errors.add(
                "health.status",
                Invalid::new("must be a range of HTTP statuses within 100-599"),
            );
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(60) {
            errors.add(
                "health.timeout_ms",
                Invalid::new("must be between 1 ms and 60 s"),
            );
        }
        if self.interval < Duration::from_secs(1) || self.interval > Duration::from_secs(3600) {
            errors.add(
                "health.interval_ms",
                Invalid::new("must be between 1 s and 1 h"),
            );
        }
        if !(1..=10).contains(&self.healthy_threshold) {
            errors.add(
                "health.healthy_threshold",
                Invalid::new("must be between 1 and 10"),
            );
        }
        if !(1..=10).contains(&self.unhealthy_threshold) {
            errors.add(
                "health.unhealthy_threshold",
                Invalid::new("must be between 1 and 10"),
            );
        }
    }
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: Self::DEFAULT_PATH.to_owned(),
            tcp: false,
            status_min: 200,
            status_max: 399,
            interval: Self::DEFAULT_INTERVAL,
            timeout: Self::DEFAULT_TIMEOUT,
            healthy_threshold: Self::DEFAULT_HEALTHY_THRESHOLD,
            unhealthy_threshold: Self::DEFAULT_UNHEALTHY_THRESHOLD,
            start_period: Duration::ZERO,
        }
    }
}

/// How long each step of a deploy may take.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct DeployTimeouts {
    /// From image build start to image, in milliseconds.
    #[serde(with = "millis", rename = "build_ms")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = u64, minimum = 10_000, maximum = 21_600_000, default = default_millis::build)
    )]
    pub build: Duration,
    /// From container start to ready, in milliseconds.
    #[serde(with = "millis", rename = "startup_ms")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = u64, minimum = 1000, maximum = 3_600_000, default = default_millis::startup)
    )]
    pub startup: Duration,
    /// How long an old container may keep connections after traffic moved away, in ms.
    #[serde(with = "millis", rename = "drain_ms")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = u64, minimum = 0, maximum = 3_600_000, default = default_millis::drain)
    )]
    pub drain: Duration,
    /// Between SIGTERM and SIGKILL when a container stops, in milliseconds.
    #[serde(with = "millis", rename = "stop_grace_ms")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = u64, minimum = 0, maximum = 600_000, default = default_millis::stop_grace)
    )]
    pub stop_grace: Duration,
    /// How long a worker (a service without a port) must keep running to count as ready.
    #[serde(with = "millis", rename = "worker_ready_ms")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = u64, minimum = 0, maximum = 600_000, default = default_millis::worker_ready)
    )]
    pub worker_ready: Duration,
    /// How long the release command may run.
    #[serde(with = "millis", rename = "release_ms")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = u64, minimum = 1000, maximum = 21_600_000, default = default_millis::release)
    )]
    pub release: Duration,
}

impl DeployTimeouts {
    pub const DEFAULT_BUILD: Duration = Duration::from_secs(15 * 60);
    pub const DEFAULT_STARTUP: Duration = Duration::from_secs(60);
    pub const DEFAULT_DRAIN: Duration = Duration::from_secs(30);
    pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);
    pub const DEFAULT_WORKER_READY: Duration = Duration::from_secs(10);
    pub const DEFAULT_RELEASE: Duration = Duration::from_secs(10 * 60);

    pub fn validate(&self, errors: &mut FieldErrors) {
        let ranges = [
            (
                "timeouts.build_ms",
                self.build,
                Duration::from_secs(10),
                Duration::from_secs(6 * 3600),
            ),
            (
                "timeouts.startup_ms",
                self.startup,
                Duration::from_secs(1),
                Duration::from_secs(3600),
            ),
            (
                "timeouts.drain_ms",
                self.drain,
                Duration::ZERO,
                Duration::from_secs(3600),
            ),
            (
                "timeouts.stop_grace_ms",
                self.stop_grace,
                Duration::ZERO,
                Duration::from_secs(600),
            ),
            (
                "timeouts.worker_ready_ms",
                self.worker_ready,
                Duration::ZERO,
                Duration::from_secs(600),
            ),
            (
                "timeouts.release_ms",
                self.release,
                Duration::from_secs(1),
                Duration::from_secs(6 * 3600),
            ),
        ];
        for (field, value, min, max) in ranges {
            if value < min || value > max {
                errors.add(
                    field,
                    Invalid::new(format!("must be between {min:?} and {max:?}")),
                );
            }
        }
    }
}

impl Default for DeployTimeouts {
    fn default() -> Self {
        DeployTimeouts {
            build: Self::DEFAULT_BUILD,
            startup: Self::DEFAULT_STARTUP,
            drain: Self::DEFAULT_DRAIN,
            stop_grace: Self::DEFAULT_STOP_GRACE,
            worker_ready: Self::DEFAULT_WORKER_READY,
            release: Self::DEFAULT_RELEASE,
        }
    }
}

/// Resource limits of a service's containers. `None` takes the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ResourceLimits {
    /// Memory in bytes, at least 6 MiB; the container gets no swap beyond it. At most the
    /// server's maximum.
    #[cfg_attr(feature = "openapi", schema(minimum = 6_291_456))]
    pub memory_bytes: Option<u64>,
    /// CPU in cores, fractions allowed (`0.5`), at least 0.01. At most the server's maximum.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.01))]
    pub cpus: Option<f64>,
    /// Maximum number of processes and threads, at least 8. At most the server's maximum.
    #[cfg_attr(feature = "openapi", schema(minimum = 8))]
    pub pids: Option<u32>,
}

impl ResourceLimits {
    /// These limits with every unset one taken from `defaults`.
    pub fn or(self, defaults: ResourceLimits) -> ResourceLimits {
        ResourceLimits {
            memory_bytes: self.memory_bytes.or(defaults.memory_bytes),
            cpus: self.cpus.or(defaults.cpus),
            pids: self.pids.or(defaults.pids),
        }
    }

    /// Checks the limits are sane and within `maximum`; errors are reported under
    /// `<field>.<limit>`.
    pub fn validate(&self, field: &str, maximum: &ResourceLimits, errors: &mut FieldErrors) {
        if let Some(memory) = self.memory_bytes {
            if memory < 6 * 1024 * 1024 {
                errors.add(
                    &format!("{field}.memory_bytes"),
                    Invalid::new("must be at least 6 MiB"),
                );
            } else if maximum.memory_bytes.is_some_and(|max| memory > max) {
                errors.add(
                    &format!("{field}.memory_bytes"),
                    Invalid::new("exceeds the server's maximum"),
                );
            }
        }
        if let Some(cpus) = self.cpus {
            if !cpus.is_finite() || cpus < 0.01 {
                errors.add(
                    &format!("{field}.cpus"),
                    Invalid::new("must be at least 0.01"),
                );
            } else if maximum.cpus.is_some_and(|max| cpus > max) {
                errors.add(
                    &format!("{field}.cpus"),
                    Invalid::new("exceeds the server's maximum"),
                );
            }
        }
        if let Some(pids) = self.pids {
            if pids < 8 {
                errors.add(&format!("{field}.pids"), Invalid::new("must be at least 8"));
            } else if maximum.pids.is_some_and(|max| pids > max) {
                errors.add(
                    &format!("{field}.pids"),
                    Invalid::new("exceeds the server's maximum"),
                );
            }
        }
    }

    /// CPU as billionths of a core, the engine's unit.
    pub fn nano_cpus(&self) -> Option<i64> {
        self.cpus.map(|cpus| (cpus * 1e9).round() as i64)
    }
}

/// Everything about how a service runs, as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    pub health: HealthCheck,
    pub timeouts: DeployTimeouts,
    pub limits: ResourceLimits,
    /// Caps of the service's builds on the isolated builder (`--builder isolated`): memory,
    /// CPU and processes of all its steps together; the wall time is `timeouts.build`. `None`
    /// takes the server's default; at most the server's maximum.
    pub build_limits: ResourceLimits,
    /// Apply environment changes at once with a zero-downtime redeploy (the default), or hold
    /// them until the next deploy.
    pub auto_redeploy: bool,
    /// Identical containers serving the service; the edge router balances across them. At
    /// most the server's maximum.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub replicas: u32,
    /// How a deploy replaces the old containers. `None`: `recreate` when the service has
    /// volumes (two copies must not write them at once), else `start_first`.
    pub strategy: Option<DeployStrategy>,
    /// Replaces the image's command (an argument vector, run without a shell): at least one
    /// argument, at most 16 KiB, no NUL bytes.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub command: Option<Vec<String>>,
    /// Runs once per deployment, in a one-off container from the new image, before any new
    /// container takes traffic (database migrations, say). A failure fails the deployment.
    /// The same form as `command`.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub release_command: Option<Vec<String>>,
    /// Capabilities given back and a read-only root filesystem (see the README's "Security").
    pub security: ContainerSecurity,
}

/// How a deploy replaces a service's containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeployStrategy {
    /// Start the new containers, switch when they are ready, then drain the old ones: no
    /// downtime, two versions overlap briefly.
    StartFirst,
    /// Stop the old containers first, then start the new ones: never two copies at once, a
    /// short gap without service.
    Recreate,
}

impl DeployStrategy {
    /// The strategy in effect: the chosen one, else `recreate` for services with volumes.
    pub fn effective(chosen: Option<DeployStrategy>, has_volumes: bool) -> DeployStrategy {
        match chosen {
            Some(strategy) => strategy,
            None if has_volumes => DeployStrategy::Recreate,
            None => DeployStrategy::StartFirst,
        }
    }
}

/// What the server allows services to ask for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuntimeBounds {
    pub limits: ResourceLimits,
    /// The most a service's builds may ask for.
    pub build_limits: ResourceLimits,
    pub max_replicas: u32,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            health: HealthCheck::default(),
            timeouts: DeployTimeouts::default(),
            limits: ResourceLimits::default(),
            build_limits: ResourceLimits::default(),
            auto_redeploy: true,
            replicas: 1,
            strategy: None,
            command: None,
            release_command: None,
            security: ContainerSecurity::default(),
        }
    }
}

impl RuntimeSettings {
    /// These settings with `patch` applied as a JSON merge patch (RFC 7396): fields present
    /// replace, `null` resets to the default, absent fields keep their value. The result is
    /// validated, limits against `maximum`.
    pub fn merged(
        &self,
        patch: &serde_json::Value,
        bounds: &RuntimeBounds,
    ) -> Result<RuntimeSettings, FieldErrors> {
        let mut document = serde_json::to_value(self).unwrap_or_default();
        if !patch.is_null() {
            merge_patch(&mut document, patch);
        }
        // serde reads a struct from an array of its fields too; the settings and each of their
        // sections are objects, as documented.
        for (field, section) in [
            ("runtime", Some(&document)),
            ("health", document.get("health")),
            ("timeouts", document.get("timeouts")),
            ("limits", document.get("limits")),
            ("build_limits", document.get("build_limits")),
            ("security", document.get("security")),
        ] {
            if section.is_some_and(|section| !section.is_object()) {
                return Err(FieldErrors::single(
                    field,
                    Invalid::new("must be an object"),
                ));
            }
        }
        let next: RuntimeSettings = serde_json::from_value(document)
            .map_err(|e| FieldErrors::single("runtime", Invalid::new(e.to_string())))?;
        let mut errors = FieldErrors::new();
        next.health.validate(&mut errors);
        next.timeouts.validate(&mut errors);
        next.limits.validate("limits", &bounds.limits, &mut errors);
        next.build_limits
            .validate("build_limits", &bounds.build_limits, &mut errors);
        if !(1..=bounds.max_replicas).contains(&next.replicas) {
            errors.add(
                "replicas",
                Invalid::new(format!("must be between 1 and {}", bounds.max_replicas)),
            );
        }
        for (field, command) in [
            ("command", &next.command),
            ("release_command", &next.release_command),
        ] {
            if let Some(argv) = command
                && (argv.is_empty()
                    || argv.iter().any(|arg| arg.contains('\0'))
                    || argv.concat().len() > 16 * 1024)
            {
                errors.add(
                    field,
                    Invalid::new(
                        "must be a non-empty argument list, at most 16 KiB, without NUL bytes",
                    ),
                );
            }
        }
        errors.finish(|| Some(next))
    }

    /// True when changing from `self` to `next` needs new containers (a redeploy) rather than
    /// only new probing.
    pub fn needs_new_containers(&self, next: &RuntimeSettings) -> bool {
        self.limits != next.limits
            || self.timeouts.stop_grace != next.timeouts.stop_grace
            || self.replicas != next.replicas
            || self.command != next.command
            || self.security != next.security
    }
}

fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(existing) = target {
        for (key, value) in fields {
            if value.is_null() {
                existing.remove(key);
            } else {
                merge_patch(
                    existing
                        .entry(key.clone())
                        .or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_means_defaults() {
        let settings: RuntimeSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, RuntimeSettings::default());
        assert_eq!(settings.health.path, "/");
        assert_eq!(settings.timeouts.drain, Duration::from_secs(30));
    }

    #[test]
    fn round_trips_as_milliseconds() {
        let mut settings = RuntimeSettings::default();
        settings.timeouts.drain = Duration::from_millis(1500);
        let json = serde_json::to_string(&settings).unwrap();
        assert!(json.contains("\"drain_ms\":1500"), "{json}");
        assert_eq!(
            serde_json::from_str::<RuntimeSettings>(&json).unwrap(),
            settings
        );
    }

    #[test]
    fn merge_patch_replaces_resets_and_keeps() {
        let maximum = RuntimeBounds {
            limits: ResourceLimits {
                memory_bytes: Some(1 << 30),
                cpus: Some(2.0),
                pids: None,
            },
            build_limits: ResourceLimits {
                memory_bytes: Some(2 << 30),
                cpus: Some(2.0),
                pids: Some(4096),
            },
            max_replicas: 5,
        };
        let mut current = RuntimeSettings::default();
        current.limits.cpus = Some(0.5);
        current.health.path = "/health".into();
        let patch = serde_json::json!({
            "limits": {"memory_bytes": 268435456, "cpus": null},
            "health": {"interval_ms": 5000},
        });
        let next = current.merged(&patch, &maximum).unwrap();
        assert_eq!(next.limits.memory_bytes, Some(256 << 20));
        assert_eq!(next.limits.cpus, None, "null resets to the server default");
        assert_eq!(next.health.path, "/health", "absent fields are kept");
        assert_eq!(next.health.interval, Duration::from_secs(5));
        assert!(current.needs_new_containers(&next));

        let tcp = current
            .merged(&serde_json::json!({"health": {"tcp": true}}), &maximum)
            .unwrap();
        assert!(tcp.health.tcp);
        let reset = current
            .merged(&serde_json::json!({"health": {"path": null}}), &maximum)
            .unwrap();
        assert_eq!(reset.health.path, "/");
        assert!(!current.needs_new_containers(&tcp));
        let scaled = current
            .merged(&serde_json::json!({"replicas": 3}), &maximum)
            .unwrap();
        assert!(current.needs_new_containers(&scaled));

        // Build caps are the service's own, checked against the server's build maxima; they
        // change no running container.
        let capped = current
            .merged(
                &serde_json::json!({"build_limits": {"memory_bytes": 268435456, "pids": 64}}),
                &maximum,
            )
            .unwrap();
        assert_eq!(capped.build_limits.memory_bytes, Some(256 << 20));
        assert!(!current.needs_new_containers(&capped));
        let errors = current
            .merged(
                &serde_json::json!({"build_limits": {"memory_bytes": 4294967296u64, "pids": 2}}),
                &maximum,
            )
            .unwrap_err();
        assert!(errors.fields().contains_key("build_limits.memory_bytes"));
        assert!(errors.fields().contains_key("build_limits.pids"));
        let hardened = current
            .merged(
                &serde_json::json!({"security": {"read_only_root": true, "cap_add": ["CHOWN"]}}),
                &maximum,
            )
            .unwrap();
        assert!(hardened.security.read_only_root);
        assert!(current.needs_new_containers(&hardened));
        assert_eq!(
            DeployStrategy::effective(None, true),
            DeployStrategy::Recreate
        );
        assert_eq!(
            DeployStrategy::effective(Some(DeployStrategy::StartFirst), true),
            DeployStrategy::StartFirst
        );

        for bad in [
            serde_json::json!({"limits": {"cpus": 8}}),
            serde_json::json!({"health": {"path": "no-slash"}}),
            serde_json::json!({"health": {"status_min": 500, "status_max": 200}}),
            serde_json::json!({"timeouts": {"startup_ms": 0}}),
            serde_json::json!({"unknown": 1}),
            serde_json::json!({"limits": {"memory_bytes": "lots"}}),
            serde_json::json!({"replicas": 0}),
            serde_json::json!({"replicas": 6}),
            serde_json::json!({"command": []}),
            serde_json::json!({"strategy": "sometimes"}),
            serde_json::json!({"security": {"cap_add": ["SYS_ADMIN"]}}),
            serde_json::json!({"security": ["CHOWN"]}),
        ] {
            assert!(current.merged(&bad, &maximum).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_fall_back_to_defaults_and_respect_the_maximum() {
        let defaults = ResourceLimits {
            memory_bytes: Some(512 << 20),
            cpus: Some(1.0),
            pids: Some(512),
        };
        let own = ResourceLimits {
            cpus: Some(0.5),
            ..ResourceLimits::default()
        };
        let merged = own.or(defaults);
        assert_eq!(merged.cpus, Some(0.5));
        assert_eq!(merged.memory_bytes, Some(512 << 20));
        assert_eq!(merged.nano_cpus(), Some(500_000_000));
        let mut errors = FieldErrors::new();
        ResourceLimits {
            cpus: Some(4.0),
            ..own
        }
        .validate("limits", &defaults, &mut errors);
        assert!(errors.fields().contains_key("limits.cpus"));
    }
}
