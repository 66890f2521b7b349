//! `helvetia metrics PROJECT/SERVICE`: what each of the service's containers uses now, a
//! sparkline of each metric over `--since`, and the health summary. `--json` prints the API's
//! answers (`metrics/current` and the series) as one object.

use anyhow::anyhow;
use clap::Args;
use helvetia_api_types::{CurrentMetrics, MetricsHealth, MetricsSeries, SeriesPoint};
use helvetia_core::metrics::sparkline;
use serde_json::json;

use crate::GlobalArgs;
use crate::client::Client;
use crate::output;
use crate::target::ServiceTarget;

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// PROJECT/SERVICE
    target: ServiceTarget,
    /// How far back the sparklines reach: a duration like 30m, 1h or 7d.
    #[arg(long, default_value = "1h")]
    since: String,
}

/// Bars in a sparkline.
const SPARKLINE_WIDTH: usize = 40;

/// A metric of a series point.
type Metric = fn(&SeriesPoint) -> f64;

/// How a metric is shown: its name, how to read it, and its unit.
const METRICS: [(&str, Metric, Unit); 8] = [
    ("cpu", |p| p.usage.cpu_percent, Unit::Percent),
    ("memory", |p| p.usage.memory_bytes as f64, Unit::Bytes),
    (
        "net in",
        |p| p.usage.net_rx_bytes_per_second,
        Unit::BytesPerSecond,
    ),
    (
        "net out",
        |p| p.usage.net_tx_bytes_per_second,
        Unit::BytesPerSecond,
    ),
    (
        "disk read",
        |p| p.usage.block_read_bytes_per_second,
        Unit::BytesPerSecond,
    ),
    (
        "disk write",
        |p| p.usage.block_write_bytes_per_second,
        Unit::BytesPerSecond,
    ),
    ("processes", |p| p.usage.pids as f64, Unit::Count),
    ("restarts", |p| p.restarts as f64, Unit::Count),
];

#[derive(Debug, Clone, Copy)]
enum Unit {
    Percent,
    Bytes,
    BytesPerSecond,
    Count,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Unit::Percent => format!("{value:.1} %"),
            Unit::Bytes => bytes(value),
            Unit::BytesPerSecond => format!("{}/s", bytes(value)),
            Unit::Count => format!("{value:.0}"),
        }
    }
}

/// Whole bytes, in binary units like the limits (the API's figures are averages).
fn bytes(value: f64) -> String {
    output::human_bytes(value.max(0.0).round() as u64)
}

pub async fn run(args: MetricsArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    // Checked here: it goes into the query string as it is.
    helvetia_core::units::parse_duration(&args.since).map_err(|e| anyhow!("--since: {e}"))?;
    let client = Client::from_args(global)?;
    let base = format!("{}/metrics", args.target.path());
    let current = client
        .get::<CurrentMetrics>(&format!("{base}/current"))
        .await?;
    let series = client
        .get::<MetricsSeries>(&format!("{base}?from={}", args.since.trim()))
        .await?;
    if global.json {
        return output::json(&json!({"current": current.json, "series": series.json}));
    }

    let containers = &current.body.containers;
    if containers.is_empty() {
        println!("{}: no container reported in the last rounds", args.target);
    } else {
        output::table(
            [
                "CONTAINER",
                "CPU",
                "OF LIMIT",
                "MEMORY",
                "NET IN",
                "NET OUT",
                "PIDS",
            ],
            containers.iter().map(|c| {
                let usage = &c.usage;
                [
                    c.container.clone(),
                    Unit::Percent.format(usage.cpu_percent),
                    Unit::Percent.format(usage.cpu_limit_percent),
                    format!(
                        "{} / {}",
                        output::human_bytes(usage.memory_bytes),
                        output::human_bytes(usage.memory_limit_bytes)
                    ),
                    Unit::BytesPerSecond.format(usage.net_rx_bytes_per_second),
                    Unit::BytesPerSecond.format(usage.net_tx_bytes_per_second),
                    Unit::Count.format(usage.pids as f64),
                ]
            }),
        );
    }

    let points = &series.body.points;
    println!();
    println!(
        "last {} ({} s steps, {} points):",
        args.since.trim(),
        series.body.step_seconds,
        points.len()
    );
    let rows: Vec<(&str, String)> = METRICS
        .iter()
        .map(|(name, metric, unit)| {
            let values: Vec<Option<f64>> = points.iter().map(|p| Some(metric(p))).collect();
            let peak = values
                .iter()
                .flatten()
                .copied()
                .fold(None, |max: Option<f64>, v| {
                    Some(max.map_or(v, |max| max.max(v)))
                });
            let summary = match (values.last().copied().flatten(), peak) {
                (Some(last), Some(peak)) => {
                    format!("{}  (max {})", unit.format(last), unit.format(peak))
                }
                _ => "-".to_owned(),
            };
            (
                *name,
                format!("{}  {summary}", sparkline(&values, SPARKLINE_WIDTH)),
            )
        })
        .collect();
    output::fields(&rows);

    println!();
    println!("health: {}", health(&current.body.health));
    Ok(())
}

/// The health summary in one line.
fn health(summary: &MetricsHealth) -> String {
    if summary.ok {
        return "ok".to_owned();
    }
    let mut problems = vec![];
    if !summary.memory_near_limit.is_empty() {
        problems.push(format!(
            "memory above 90 % of the limit in {}",
            summary.memory_near_limit.join(", ")
        ));
    }
    match summary.restarts_last_hour {
        0 => {}
        1 => problems.push("1 restart in the last hour".to_owned()),
        n => problems.push(format!("{n} restarts in the last hour")),
    }
    problems.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(bytes(511.6), "512 B");
        assert_eq!(bytes(101_040_128.0), "96.4 MiB");
        assert_eq!(Unit::BytesPerSecond.format(2048.0), "2.0 KiB/s");
        assert_eq!(Unit::Percent.format(49.94), "49.9 %");
    }

    #[test]
    fn health_in_one_line() {
        let summary = |ok, near: &[&str], restarts| MetricsHealth {
            ok,
            memory_near_limit: near.iter().map(|c| (*c).to_owned()).collect(),
            restarts_last_hour: restarts,
        };
        assert_eq!(health(&summary(true, &[], 0)), "ok");
        assert_eq!(
            health(&summary(false, &["c1"], 2)),
            "memory above 90 % of the limit in c1; 2 restarts in the last hour"
        );
    }
}
