//! App containers as the store tracks them, and the address pool of project networks.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::validation::Invalid;

/// Where a container is in its life. Only `serving` containers receive traffic.
///
/// ```text
/// starting ──► ready ──► serving ──► draining ──► stopped
///     └──────────┴──────────┴────────────┴──────► failed
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    /// Created (or about to be); not yet known to answer.
    Starting,
    /// Passed its readiness probe; waiting for the switch.
    Ready,
    /// Receives traffic.
    Serving,
    /// No longer routed; finishing its open connections.
    Draining,
    Stopped,
    Failed,
}

impl ContainerState {
    pub const ALL: [ContainerState; 6] = [
        ContainerState::Starting,
        ContainerState::Ready,
        ContainerState::Serving,
        ContainerState::Draining,
        ContainerState::Stopped,
        ContainerState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Starting => "starting",
            ContainerState::Ready => "ready",
            ContainerState::Serving => "serving",
            ContainerState::Draining => "draining",
            ContainerState::Stopped => "stopped",
            ContainerState::Failed => "failed",
        }
    }

    /// True while the engine should have this container.
    pub fn is_active(self) -> bool {
        match self {
            ContainerState::Starting
            | ContainerState::Ready
            | ContainerState::Serving
            | ContainerState::Draining => true,
            ContainerState::Stopped | ContainerState::Failed => false,
        }
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ContainerState {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        ContainerState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| Invalid::new(format!("unknown container state `{s}`")))
    }
}

/// How a container is doing, as the health monitor last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Unhealthy,
    /// Exited and being restarted by the engine.
    Restarting,
    Stopped,
    /// Killed by the kernel for exceeding its memory limit.
    OomKilled,
}

impl Health {
    pub const ALL: [Health; 5] = [
        Health::Healthy,
        Health::Unhealthy,
        Health::Restarting,
        Health::Stopped,
        Health::OomKilled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Restarting => "restarting",
            Health::Stopped => "stopped",
            Health::OomKilled => "oom_killed",
        }
    }

    /// Whether a serving container in this health gets traffic (the store's routing table
    /// selects the same): one the engine is restarting, or a `recreate` deploy stopped, has no
    /// process behind its address.
    pub fn is_routed(self) -> bool {
        match self {
            Health::Healthy | Health::Unhealthy | Health::OomKilled => true,
            Health::Restarting | Health::Stopped => false,
        }
    }
}

impl FromStr for Health {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Health::ALL
            .into_iter()
            .find(|health| health.as_str() == s)
            .ok_or_else(|| Invalid::new(format!("unknown health `{s}`")))
    }
}

/// Something that happened to a service's containers, for `services show` and the API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceEvent {
    pub id: i64,
    /// The container it happened to, if any.
    pub container: Option<String>,
    pub kind: ServiceEventKind,
    pub message: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: jiff::Timestamp,
}

/// One line a container wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutputLine {
    pub container: String,
    pub stream: OutputStream,
    /// When the engine received it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: jiff::Timestamp,
    pub line: String,
}

/// Which of a container's outputs a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// What kind of thing happened to a service's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ServiceEventKind {
    /// It answers its health check (again).
    Healthy,
    /// It failed its health check enough times in a row, or its image's own check says so.
    Unhealthy,
    /// The engine started it again after it exited.
    Restarted,
    /// Its process exited; the engine restarts it.
    Exited,
    /// The kernel killed it for exceeding its memory limit.
    OomKilled,
    /// It came back from a restart at another address; its route follows.
    AddressChanged,
    /// It was stopped on request.
    Stopped,
}

impl ServiceEventKind {
    pub const ALL: [ServiceEventKind; 7] = [
        ServiceEventKind::Healthy,
        ServiceEventKind::Unhealthy,
        ServiceEventKind::Restarted,
        ServiceEventKind::Exited,
        ServiceEventKind::OomKilled,
        ServiceEventKind::AddressChanged,
        ServiceEventKind::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceEventKind::Healthy => "healthy",
            ServiceEventKind::Unhealthy => "unhealthy",
            ServiceEventKind::Restarted => "restarted",
            ServiceEventKind::Exited => "exited",
            ServiceEventKind::OomKilled => "oom_killed",
            ServiceEventKind::AddressChanged => "address_changed",
            ServiceEventKind::Stopped => "stopped",
        }
    }
}

impl fmt::Display for ServiceEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceEventKind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        ServiceEventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| Invalid::new(format!("unknown service event kind `{s}`")))
    }
}

/// A container as the store records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerRecord {
    pub id: i64,
    pub deployment_id: i64,
    pub service_id: i64,
    /// The engine's name for it (`core::scope::Scope::container`).
    pub name: String,
    pub engine_id: Option<String>,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub state: ContainerState,
    pub health: Option<Health>,
}

/// The IPv4 range project networks are carved from, in equal subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetPool {
    base: u32,
    pool_prefix: u8,
    subnet_prefix: u8,
}

impl SubnetPool {
    /// The default pool: 10.208.0.0/13 in /24s, room for 2048 projects of 253 containers.
    pub const DEFAULT: &str = "10.208.0.0/13";
    pub const DEFAULT_SUBNET_PREFIX: u8 = 24;

    /// Parses `a.b.c.d/len` and the size of each subnet (`/24` = 256 addresses).
    pub fn parse(pool: &str, subnet_prefix: u8) -> Result<SubnetPool, Invalid> {
        let (address, prefix) = pool
            .split_once('/')
            .ok_or_else(|| Invalid::new("must look like 10.208.0.0/13"))?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| Invalid::new("has an invalid IPv4 address"))?;
        let pool_prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 30)
            .ok_or_else(|| Invalid::new("has an invalid prefix length"))?;
        if !(pool_prefix..=28).contains(&subnet_prefix) {
            return Err(Invalid::new(format!(
                "subnets of /{subnet_prefix} do not fit in a /{pool_prefix} pool"
            )));
        }
        let mask = u32::MAX
            .checked_shl(32 - u32::from(pool_prefix))
            .unwrap_or(0);
        let base = u32::from(address);
        if base & !mask != 0 {
            return Err(Invalid::new("the address has bits set beyond the prefix"));
        }
        Ok(SubnetPool {
            base,
            pool_prefix,
            subnet_prefix,
        })
    }

    /// Every subnet of the pool, in order, as `a.b.c.d/len`.
    pub fn subnets(&self) -> impl Iterator<Item = String> + '_ {
        let count = 1u64 << (self.subnet_prefix - self.pool_prefix);
        let step = 1u64 << (32 - self.subnet_prefix);
        (0..count).map(move |i| {
            let address = Ipv4Addr::from((u64::from(self.base) + i * step) as u32);
            format!("{address}/{}", self.subnet_prefix)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_event_kinds_are_stored_as_the_words_the_api_shows() {
        for kind in ServiceEventKind::ALL {
            assert_eq!(kind.as_str().parse::<ServiceEventKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
        assert!("rebooted".parse::<ServiceEventKind>().is_err());
    }

    #[test]
    fn pools_split_into_subnets() {
        let pool = SubnetPool::parse(SubnetPool::DEFAULT, 24).unwrap();
        let subnets: Vec<String> = pool.subnets().collect();
        assert_eq!(subnets.len(), 2048);
        assert_eq!(subnets[0], "10.208.0.0/24");
        assert_eq!(subnets[1], "10.208.1.0/24");
        assert_eq!(subnets[2047], "10.215.255.0/24");
        assert!(SubnetPool::parse("10.208.1.0/13", 24).is_err());
        assert!(SubnetPool::parse("10.0.0.0/24", 16).is_err());
        assert!(SubnetPool::parse("nonsense", 24).is_err());
    }
}
