//! Human units on the command line, in configuration and in messages: sizes (`512M`) and
//! durations (`30s`).

use std::time::Duration;

use jiff::Timestamp;

use crate::validation::Invalid;

/// `512M`, `1G`, `1.5G`, `1048576`: binary units (K = 1024); a trailing `B`/`iB` is allowed.
pub fn parse_bytes(text: &str) -> Result<u64, Invalid> {
    let text = text.trim();
    let invalid = || Invalid::new(format!("`{text}` is not a size like 512M or 1G"));
    let (number, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((text, ""), |at| text.split_at(at));
    let multiplier: u64 = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(invalid()),
    };
    let number: f64 = number.trim().parse().map_err(|_| invalid())?;
    if !number.is_finite() || number < 0.0 {
        return Err(invalid());
    }
    Ok((number * multiplier as f64).round() as u64)
}

/// `30s`, `500ms`, `2m`, `1h30m`, `90d`: jiff's friendly duration format, days counted as
/// 24 hours. Never negative.
pub fn parse_duration(text: &str) -> Result<Duration, Invalid> {
    let invalid = || {
        Invalid::new(format!(
            "`{text}` is not a duration like 30s, 500ms, 2m or 90d"
        ))
    };
    let span: jiff::Span = text.trim().parse().map_err(|_| invalid())?;
    let signed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|_| invalid())?;
    Duration::try_from(signed).map_err(|_| Invalid::new(format!("`{text}` must not be negative")))
}

/// A moment given as an RFC 3339 timestamp or as a duration before `now` (`90s`, `1h`, `7d`).
pub fn parse_time(text: &str, now: Timestamp) -> Result<Timestamp, Invalid> {
    if let Ok(at) = text.trim().parse::<Timestamp>() {
        return Ok(at);
    }
    let ago = parse_duration(text).map_err(|_| {
        Invalid::new(format!(
            "`{text}` is neither a duration like 1h nor an RFC 3339 timestamp"
        ))
    })?;
    jiff::SignedDuration::try_from(ago)
        .ok()
        .and_then(|ago| now.checked_sub(ago).ok())
        .ok_or_else(|| Invalid::new(format!("`{text}` is too long ago")))
}

/// Bytes in binary units, one decimal: `0 B`, `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_timestamps_or_durations_ago() {
        let at = |seconds| Timestamp::from_second(seconds).unwrap();
        let now = at(0);
        assert_eq!(parse_time("1h", now), Ok(at(-3600)));
        assert_eq!(parse_time(" 30s", now), Ok(at(-30)));
        assert_eq!(
            parse_time("2027-01-15T08:00:00Z", now),
            Ok("2027-01-15T08:00:00Z".parse().unwrap())
        );
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("100000000d", now).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("2048"), Ok(2048));
        assert_eq!(parse_bytes("64kb"), Ok(64 << 10));
        for bad in ["", "M", "-1G", "1X", "lots"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn bytes_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(100 << 20), "100.0 MiB");
    }
}
