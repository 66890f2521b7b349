//! Rendering: tables and key/value blocks for people, the API's JSON for scripts.

use std::fmt::Display;

use comfy_table::{Table, presets};
use jiff::Timestamp;
use serde_json::Value;

pub fn json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A borderless table, like `docker ps`.
pub fn table<const N: usize>(headers: [&str; N], rows: impl IntoIterator<Item = [String; N]>) {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    table.set_header(headers);
    for row in rows {
        table.add_row(row);
    }
    println!("{}", table.trim_fmt());
}

/// Aligned `key: value` lines.
pub fn fields(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in pairs {
        println!(
            "{key:width$}  {value}",
            key = format!("{key}:"),
            width = width + 1
        );
    }
}

/// A value the API may leave empty, or `-` when it did.
pub fn or_dash(value: Option<impl Display>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// A time in the local form `2026-11-26 10:50:31`.
pub fn time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// A time that may not have happened yet, or `-`.
pub fn maybe_time(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "-".to_owned(), time)
}

/// The time from `start` to `end`, as `1m 05s`; `-` while there is no end.
pub fn duration_between(start: Timestamp, end: Option<Timestamp>) -> String {
    match end {
        Some(end) => human_duration(end.duration_since(start).as_millis()),
        None => "-".into(),
    }
}

pub use helvetia_core::units::human_bytes;

pub fn human_duration(millis: i128) -> String {
    let secs = millis / 1000;
    if secs >= 60 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}.{}s", secs, (millis % 1000) / 100)
    }
}

/// The first 10 characters of a commit SHA.
pub fn short_sha(sha: Option<&str>) -> String {
    sha.map_or_else(|| "-".into(), |s| s.chars().take(10).collect())
}

/// The first line of a (commit) message, cut to `max` characters.
pub fn first_line(message: Option<&str>, max: usize) -> String {
    let line = message.and_then(|s| s.lines().next()).unwrap_or("-");
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max - 1).collect::<String>())
    } else {
        line.to_owned()
    }
}
