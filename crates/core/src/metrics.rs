//! Container metrics: what one reading of the engine's stats means, and the rules for storing
//! and showing series of them.
//!
//! The engine answers `GET /containers/{id}/stats?stream=false&one-shot=true` with cumulative
//! counters ([`StatsDocument`]): CPU time, bytes received and sent, bytes read and written. A
//! one-shot answer carries no previous reading (its `precpu_stats` are empty), so the collector
//! keeps each container's last [`Reading`] and turns two consecutive ones into a [`Usage`]: CPU
//! as a share of one core (Δ container CPU time / Δ system CPU time × online CPUs × 100) and of
//! the container's limit, rates per second, and memory without page cache.
//!
//! Memory "used" is what `docker stats` shows: the usage minus the inactive file cache, which
//! the kernel reclaims before it would kill the container. The statistic is called
//! `total_inactive_file` on cgroup v1 hosts and `inactive_file` on cgroup v2 hosts; the unit
//! tests run on answers recorded from both shapes (`tests/data`).
//!
//! Stored series come in three [`Resolution`]s — raw samples, 1-minute and 1-hour averages —
//! each kept for its own [`Retention`]. [`plan_series`] picks a query's step and resolution;
//! [`sparkline`] draws a series as one line of text for the CLI.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::validation::Invalid;

/// The fields of the engine's stats answer that Helvetia reads; everything else is skipped
/// while parsing. Both cgroup versions' shapes parse into it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StatsDocument {
    /// When the engine read the counters; the zero time (year 1) for a stopped container.
    read: Option<Timestamp>,
    cpu_stats: CpuStats,
    memory_stats: MemoryStats,
    /// Per network interface; absent for a container without networking.
    networks: Option<HashMap<String, InterfaceStats>>,
    blkio_stats: BlkioStats,
    pids_stats: PidsStats,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct CpuStats {
    cpu_usage: CpuUsage,
    /// The whole host's CPU time, in nanoseconds (all CPUs together).
    system_cpu_usage: Option<u64>,
    online_cpus: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct CpuUsage {
    /// The container's CPU time, in nanoseconds.
    total_usage: u64,
    /// Per-CPU times (cgroup v1 only); only their number is used, when `online_cpus` is missing.
    percpu_usage: Option<Vec<IgnoredAny>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct MemoryStats {
    usage: u64,
    limit: u64,
    stats: Option<MemoryDetail>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct MemoryDetail {
    /// cgroup v1: page cache not recently used, including sub-cgroups. Its presence marks v1.
    total_inactive_file: Option<u64>,
    /// cgroup v2 (on v1, the same without sub-cgroups).
    inactive_file: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct InterfaceStats {
    rx_bytes: u64,
    tx_bytes: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct BlkioStats {
    /// `null` on cgroup v2 when the container did no I/O.
    io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct BlkioEntry {
    /// `Read`, `Write`, `Sync`, `Async`, `Total` on cgroup v1; `read`, `write` on v2.
    op: String,
    value: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct PidsStats {
    current: u64,
}

/// A container's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub at: Timestamp,
    pub cpu_total_ns: u64,
    pub system_cpu_ns: u64,
    pub online_cpus: u32,
    /// Memory in use without the page cache the kernel can reclaim.
    pub memory_used: u64,
    pub memory_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

impl StatsDocument {
    /// The counters, or `None` when the engine had none: the container was not running.
    pub fn reading(&self) -> Option<Reading> {
        let at = self.read.filter(|at| at.as_second() > 0)?;
        let system_cpu_ns = self.cpu_stats.system_cpu_usage.filter(|ns| *ns > 0)?;
        let online_cpus = self
            .cpu_stats
            .online_cpus
            .filter(|n| *n > 0)
            .or_else(|| {
                let listed = self.cpu_stats.cpu_usage.percpu_usage.as_ref()?.len();
                u32::try_from(listed).ok().filter(|n| *n > 0)
            })
            .unwrap_or(1);
        let (net_rx, net_tx) =
            self.networks
                .iter()
                .flatten()
                .fold((0u64, 0u64), |(rx, tx), (_, interface)| {
                    (
                        rx.saturating_add(interface.rx_bytes),
                        tx.saturating_add(interface.tx_bytes),
                    )
                });
        let (block_read, block_write) = self
            .blkio_stats
            .io_service_bytes_recursive
            .iter()
            .flatten()
            .fold((0u64, 0u64), |(read, write), entry| {
                // What the docker CLI counts: the first letter, in either case.
                match entry.op.as_bytes().first() {
                    Some(b'r' | b'R') => (read.saturating_add(entry.value), write),
                    Some(b'w' | b'W') => (read, write.saturating_add(entry.value)),
                    _ => (read, write),
                }
            });
        Some(Reading {
            at,
            cpu_total_ns: self.cpu_stats.cpu_usage.total_usage,
            system_cpu_ns,
            online_cpus,
            memory_used: self.memory_used(),
            memory_limit: self.memory_stats.limit,
            net_rx,
            net_tx,
            block_read,
            block_write,
            pids: self.pids_stats.current,
        })
    }

    /// Usage without the inactive page cache, as `docker stats` computes it.
    fn memory_used(&self) -> u64 {
        let memory = &self.memory_stats;
        let detail = memory.stats.as_ref();
        let inactive = match detail.and_then(|d| d.total_inactive_file) {
            Some(v1) => v1,
            None => detail.and_then(|d| d.inactive_file).unwrap_or(0),
        };
        if inactive < memory.usage {
            memory.usage - inactive
        } else {
            memory.usage
        }
    }
}

/// What a container used between two readings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// CPU as a percentage of one core (150 = one and a half cores busy).
    pub cpu_percent: f64,
    /// CPU as a percentage of the container's limit (of all the host's CPUs when it has none).
    pub cpu_limit_percent: f64,
    /// Memory in use without reclaimable page cache.
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    pub net_rx_bytes_per_second: f64,
    pub net_tx_bytes_per_second: f64,
    pub block_read_bytes_per_second: f64,
    pub block_write_bytes_per_second: f64,
    /// Processes and threads.
    pub pids: u64,
}

impl Reading {
    /// What the container used since `previous`. `cpu_limit` is the container's CPU limit in
    /// cores (`None`: no limit). `None` when the counters went backwards (the container was
    /// restarted and its counters began again) or no time passed.
    pub fn usage_since(&self, previous: &Reading, cpu_limit: Option<f64>) -> Option<Usage> {
        let seconds = self.at.duration_since(previous.at).as_secs_f64();
        let cpu = self.cpu_total_ns.checked_sub(previous.cpu_total_ns)?;
        let system = self.system_cpu_ns.checked_sub(previous.system_cpu_ns)?;
        if seconds <= 0.0 || system == 0 {
            return None;
        }
        let rate = |now: u64, before: u64| Some(now.checked_sub(before)? as f64 / seconds);
        let cpu_percent = cpu as f64 / system as f64 * f64::from(self.online_cpus) * 100.0;
        let cores = cpu_limit
            .filter(|cores| *cores > 0.0)
            .unwrap_or(f64::from(self.online_cpus));
        Some(Usage {
            cpu_percent,
            cpu_limit_percent: cpu_percent / cores,
            memory_bytes: self.memory_used,
            memory_limit_bytes: self.memory_limit,
            net_rx_bytes_per_second: rate(self.net_rx, previous.net_rx)?,
            net_tx_bytes_per_second: rate(self.net_tx, previous.net_tx)?,
            block_read_bytes_per_second: rate(self.block_read, previous.block_read)?,
            block_write_bytes_per_second: rate(self.block_write, previous.block_write)?,
            pids: self.pids,
        })
    }
}

/// One container's usage at one time, as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerSample {
    pub container: String,
    pub deployment_id: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    #[serde(flatten)]
    pub usage: Usage,
    /// How often the engine has restarted the container.
    pub restarts: i64,
}

/// A service's usage over one step of a series: each container's average over the step,
/// added up over the containers (`cpu_limit_percent` is their mean instead, a share of each
/// one's own limit).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    /// The start of the step.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// How many containers reported during the step.
    pub containers: i64,
    #[serde(flatten)]
    pub usage: Usage,
    /// Engine restarts, added up over the containers (the highest count each reported).
    pub restarts: i64,
}

/// A container whose memory use reaches this share of its limit is reported as near it.
pub const MEMORY_WARNING_RATIO: f64 = 0.9;

/// True when `used` is at least [`MEMORY_WARNING_RATIO`] of a (non-zero) `limit`.
pub fn memory_near_limit(used: u64, limit: u64) -> bool {
    limit > 0 && used as f64 >= limit as f64 * MEMORY_WARNING_RATIO
}

/// How finely a stored series is kept.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// One row per collected sample.
    Raw,
    /// Averages over whole minutes.
    Minute,
    /// Averages over whole hours.
    Hour,
}

impl Resolution {
    /// From finest to coarsest.
    pub const ALL: [Resolution; 3] = [Resolution::Raw, Resolution::Minute, Resolution::Hour];

    /// The width of the buckets rows are averaged over, in seconds (0 for raw samples): also
    /// how the store tells resolutions apart.
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Raw => 0,
            Resolution::Minute => 60,
            Resolution::Hour => 3600,
        }
    }

    /// Every resolution averaged from another, finest first, so a round of roll-ups averages
    /// hours from the minutes it just completed. Raw samples are collected, never averaged.
    pub const ROLL_UPS: [RollUp; 2] = [
        RollUp {
            into: Resolution::Minute,
            from: Resolution::Raw,
        },
        RollUp {
            into: Resolution::Hour,
            from: Resolution::Minute,
        },
    ];

    fn coarser(self) -> Option<Resolution> {
        match self {
            Resolution::Raw => Some(Resolution::Minute),
            Resolution::Minute => Some(Resolution::Hour),
            Resolution::Hour => None,
        }
    }
}

/// Rows of `into` are averages of rows of `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollUp {
    pub into: Resolution,
    pub from: Resolution,
}

/// How long each resolution is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub raw: Duration,
    pub minute: Duration,
    pub hour: Duration,
}

impl Retention {
    pub const DEFAULT_RAW: Duration = Duration::from_secs(24 * 3600);
    pub const DEFAULT_MINUTE: Duration = Duration::from_secs(7 * 24 * 3600);
    pub const DEFAULT_HOUR: Duration = Duration::from_secs(90 * 24 * 3600);

    pub fn of(&self, resolution: Resolution) -> Duration {
        match resolution {
            Resolution::Raw => self.raw,
            Resolution::Minute => self.minute,
            Resolution::Hour => self.hour,
        }
    }

    /// Each resolution must outlive the bucket of the next coarser one, or there would be
    /// nothing left to average from: raw samples at least 2 minutes, minute averages at least
    /// 2 hours.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.raw < Duration::from_secs(120) {
            return Err(Invalid::new("raw samples must be kept at least 2 minutes"));
        }
        if self.minute < Duration::from_secs(2 * 3600) {
            return Err(Invalid::new(
                "minute averages must be kept at least 2 hours",
            ));
        }
        if self.hour < Duration::from_secs(3600) {
            return Err(Invalid::new("hour averages must be kept at least 1 hour"));
        }
        Ok(())
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw: Self::DEFAULT_RAW,
            minute: Self::DEFAULT_MINUTE,
            hour: Self::DEFAULT_HOUR,
        }
    }
}

/// How a series is read: buckets of `step`, averaged from rows of `resolution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesPlan {
    pub step: Duration,
    pub resolution: Resolution,
}

/// The most points one series has; a finer step is widened to fit.
pub const MAX_POINTS: u64 = 2000;
/// About how many points a series has when no step is asked for.
const DEFAULT_POINTS: u64 = 120;
/// Steps chosen when none is asked for: round numbers on a clock.
const ROUND_STEPS: [u64; 20] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    172_800, 604_800,
];

/// Plans a series from `from` to `to`, at `now`: the asked `step` (never finer than the
/// collector's `interval`; by default the range in about 120 round steps), read from the
/// coarsest resolution whose buckets fit in a step and which still holds `from`. A step is a
/// whole number of the chosen resolution's buckets.
pub fn plan_series(
    from: Timestamp,
    to: Timestamp,
    step: Option<Duration>,
    interval: Duration,
    now: Timestamp,
    retention: &Retention,
) -> Result<SeriesPlan, Invalid> {
    if to <= from {
        return Err(Invalid::new("`to` must be after `from`"));
    }
    let span = to.duration_since(from).as_secs_f64().ceil() as u64;
    let floor = interval.as_secs().max(1);
    let mut seconds = match step {
        Some(step) if step.is_zero() => return Err(Invalid::new("the step must not be zero")),
        Some(step) => step.as_secs().max(floor),
        None => {
            let wanted = span.div_ceil(DEFAULT_POINTS).max(floor);
            ROUND_STEPS
                .into_iter()
                .find(|round| *round >= wanted)
                .unwrap_or(wanted)
        }
    };
    seconds = seconds.max(span.div_ceil(MAX_POINTS));
    let mut resolution = Resolution::ALL
        .into_iter()
        .rev()
        .find(|r| r.seconds() as u64 <= seconds)
        .unwrap_or(Resolution::Raw);
    let oldest_kept = |r: Resolution| {
        jiff::SignedDuration::try_from(retention.of(r))
            .ok()
            .and_then(|kept| now.checked_sub(kept).ok())
            .unwrap_or(Timestamp::MIN)
    };
    while from < oldest_kept(resolution)
        && let Some(coarser) = resolution.coarser()
    {
        resolution = coarser;
    }
    let bucket = resolution.seconds().max(1) as u64;
    Ok(SeriesPlan {
        step: Duration::from_secs(seconds.div_ceil(bucket) * bucket),
        resolution,
    })
}

/// The eight heights of a sparkline, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// `values` drawn as one line of at most `width` bars, scaled from their minimum to their
/// maximum; missing values are blanks. Longer series are averaged down to `width`.
pub fn sparkline(values: &[Option<f64>], width: usize) -> String {
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let columns = values.len().min(width);
    let averaged: Vec<Option<f64>> = (0..columns)
        .map(|column| {
            let start = column * values.len() / columns;
            let end = ((column + 1) * values.len() / columns).max(start + 1);
            let present: Vec<f64> = values[start..end]
                .iter()
                .flatten()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
        })
        .collect();
    let present = averaged.iter().flatten();
    let low = present.clone().copied().fold(f64::INFINITY, f64::min);
    let high = present.copied().fold(f64::NEG_INFINITY, f64::max);
    averaged
        .iter()
        .map(|value| match value {
            None => ' ',
            Some(_) if high <= low => BARS[0],
            Some(v) => {
                let level = ((v - low) / (high - low) * (BARS.len() - 1) as f64).round();
                BARS[(level as usize).min(BARS.len() - 1)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Reading {
        serde_json::from_str::<StatsDocument>(json)
            .unwrap()
            .reading()
            .unwrap()
    }

    const V1_A: &str = include_str!("../tests/data/docker-stats-cgroup-v1-a.json");
    const V1_B: &str = include_str!("../tests/data/docker-stats-cgroup-v1-b.json");
    const V1_PAGE_CACHE: &str =
        include_str!("../tests/data/docker-stats-cgroup-v1-page-cache.json");
    const V2_A: &str = include_str!("../tests/data/docker-stats-cgroup-v2-a.json");
    const V2_B: &str = include_str!("../tests/data/docker-stats-cgroup-v2-b.json");

    #[test]
    fn reads_a_recorded_cgroup_v1_answer() {
        let reading = parse(V1_B);
        assert_eq!(
            reading.at,
            "2026-11-26T12:51:24.314006362Z".parse().unwrap()
        );
        assert_eq!(reading.online_cpus, 2);
        assert_eq!(reading.cpu_total_ns, 7_120_662_566);
        assert_eq!(reading.system_cpu_ns, 14_517_680_000_000);
        // The fixture holds a 100,000,000-byte string; the rest is busybox.
        assert_eq!(reading.memory_used, 101_040_128);
        assert_eq!(reading.memory_limit, 512 << 20);
        assert_eq!((reading.net_rx, reading.net_tx), (876, 0));
        assert_eq!((reading.block_read, reading.block_write), (0, 0));
        assert_eq!(reading.pids, 2);
    }

    #[test]
    fn cpu_from_two_recorded_cgroup_v1_answers() {
        let usage = parse(V1_B).usage_since(&parse(V1_A), Some(0.5)).unwrap();
        // The fixture spins one core under a 0.5-CPU limit.
        assert!((usage.cpu_percent - 49.9).abs() < 0.1, "{usage:?}");
        assert!((usage.cpu_limit_percent - 99.8).abs() < 0.2, "{usage:?}");
        assert_eq!(usage.memory_bytes, 101_040_128);
        let unlimited = parse(V1_B).usage_since(&parse(V1_A), None).unwrap();
        assert!(
            (unlimited.cpu_limit_percent - usage.cpu_percent / 2.0).abs() < 1e-9,
            "without a limit, a share of the host's 2 CPUs"
        );
    }

    #[test]
    fn page_cache_is_not_counted_on_cgroup_v1() {
        let reading = parse(V1_PAGE_CACHE);
        // usage 44,163,072 of which 41,943,040 is the inactive file cache of a 40 MiB file.
        assert_eq!(reading.memory_used, 44_163_072 - 41_943_040);
    }

    #[test]
    fn reads_the_cgroup_v2_shape() {
        let before = parse(V2_A);
        let after = parse(V2_B);
        assert_eq!(after.online_cpus, 4);
        assert_eq!(after.memory_used, 141_000_000 - 31_000_000, "inactive_file");
        assert_eq!(after.memory_limit, 256 << 20);
        assert_eq!((after.block_read, after.block_write), (5 << 20, 2 << 20));
        assert_eq!(after.pids, 3);
        let usage = after.usage_since(&before, Some(2.0)).unwrap();
        // 1.5 s of CPU in 8 s of the host's 4 CPUs' time: 75 % of one core.
        assert!((usage.cpu_percent - 75.0).abs() < 1e-9, "{usage:?}");
        assert!((usage.cpu_limit_percent - 37.5).abs() < 1e-9, "{usage:?}");
        assert!((usage.net_rx_bytes_per_second - 10_000.0).abs() < 1e-9);
        assert!((usage.net_tx_bytes_per_second - 2_000.0).abs() < 1e-9);
        assert!((usage.block_read_bytes_per_second - 2_097_152.0).abs() < 1e-9);
        assert!((usage.block_write_bytes_per_second - 1_048_576.0).abs() < 1e-9);
    }

    #[test]
    fn cgroup_v1_block_io_counts_reads_and_writes_of_every_device() {
        let document = serde_json::json!({
            "read": "2026-11-26T10:00:00Z",
            "cpu_stats": {"cpu_usage": {"total_usage": 1, "percpu_usage": [1, 0, 0]},
                          "system_cpu_usage": 10},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 4096},
                {"major": 8, "minor": 0, "op": "Write", "value": 8192},
                {"major": 8, "minor": 0, "op": "Sync", "value": 12288},
                {"major": 8, "minor": 0, "op": "Total", "value": 12288},
                {"major": 8, "minor": 16, "op": "Read", "value": 1024},
            ]},
        });
        let reading = serde_json::from_value::<StatsDocument>(document)
            .unwrap()
            .reading()
            .unwrap();
        assert_eq!((reading.block_read, reading.block_write), (5120, 8192));
        assert_eq!(reading.online_cpus, 3, "counted from percpu_usage");
        assert_eq!((reading.net_rx, reading.memory_used), (0, 0));
    }

    #[test]
    fn a_stopped_container_has_no_reading() {
        let stopped = r#"{"read": "0001-01-01T00:00:00Z", "preread": "0001-01-01T00:00:00Z",
            "cpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
            "memory_stats": {}, "blkio_stats": {"io_service_bytes_recursive": null}}"#;
        let document: StatsDocument = serde_json::from_str(stopped).unwrap();
        assert_eq!(document.reading(), None);
    }

    #[test]
    fn restarted_counters_give_no_usage() {
        let before = parse(V1_B);
        let after = parse(V1_A);
        assert_eq!(
            after.usage_since(&before, None),
            None,
            "time went backwards"
        );
        let mut restarted = before;
        restarted.at = before.at + jiff::SignedDuration::from_secs(5);
        restarted.cpu_total_ns = 10;
        assert_eq!(restarted.usage_since(&before, None), None);
    }

    #[test]
    fn memory_warning_at_ninety_percent() {
        assert!(!memory_near_limit(899, 1000));
        assert!(memory_near_limit(900, 1000));
        assert!(!memory_near_limit(900, 0), "no limit, no warning");
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn series_plans_pick_step_and_resolution() {
        let retention = Retention::default();
        let interval = Duration::from_secs(5);
        let now = at(0);
        let plan = |from: i64, step: Option<u64>| {
            plan_series(
                at(from),
                now,
                step.map(Duration::from_secs),
                interval,
                now,
                &retention,
            )
            .unwrap()
        };
        // The last 10 minutes, by default in round steps of at least the interval.
        assert_eq!(
            plan(-600, None),
            SeriesPlan {
                step: Duration::from_secs(5),
                resolution: Resolution::Raw
            }
        );
        // An hour: 30 s steps from raw samples.
        assert_eq!(plan(-3600, None).step, Duration::from_secs(30));
        assert_eq!(plan(-3600, None).resolution, Resolution::Raw);
        // A day: 15-minute steps from minute averages.
        assert_eq!(
            plan(-86_400, None),
            SeriesPlan {
                step: Duration::from_secs(900),
                resolution: Resolution::Minute
            }
        );
        // Thirty days: hourly averages.
        assert_eq!(plan(-30 * 86_400, None).resolution, Resolution::Hour);
        // A step finer than the interval is raised to it.
        assert_eq!(plan(-60, Some(1)).step, Duration::from_secs(5));
        // Raw samples are gone after 24 h: older ranges come from minute averages, in whole
        // minutes, even when a finer step is asked for.
        assert_eq!(
            plan(-2 * 86_400, Some(10)),
            SeriesPlan {
                step: Duration::from_secs(120),
                resolution: Resolution::Minute
            },
            "widened to at most 2000 points, rounded up to whole minutes"
        );
        assert_eq!(
            plan(-90_000, Some(600)),
            SeriesPlan {
                step: Duration::from_secs(600),
                resolution: Resolution::Minute
            }
        );
        assert!(plan_series(now, now, None, interval, now, &retention).is_err());
        assert!(plan_series(at(-5), now, Some(Duration::ZERO), interval, now, &retention).is_err());
    }

    #[test]
    fn retention_must_leave_something_to_average() {
        assert!(Retention::default().validate().is_ok());
        let short = Retention {
            raw: Duration::from_secs(60),
            ..Retention::default()
        };
        assert!(short.validate().is_err());
    }

    #[test]
    fn sparklines() {
        let values: Vec<Option<f64>> = (0..8).map(|v| Some(f64::from(v))).collect();
        assert_eq!(sparkline(&values, 20), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&values, 4), "▁▃▆█");
        assert_eq!(sparkline(&[Some(1.0), None, Some(1.0)], 10), "▁ ▁");
        assert_eq!(sparkline(&[], 10), "");
        assert_eq!(sparkline(&[Some(3.0), Some(f64::NAN)], 10), "▁ ");
    }
}
