//! What every room's settings share, so that none of them imports another to get it: the
//! error a bad setting is ([`ConfigError`], always exit 2) and the one duration syntax of
//! every duration setting.
//!
//! Durations are Go's `time.ParseDuration`, the form Kubernetes users write every day (`90s`,
//! `1m30s`, `500ms`, `1h`), plus a bare number of seconds (`90`), as shell scripts and older
//! versions of dbinit wrote them.

use std::time::Duration;

/// A configuration error: always exit code 2, always naming the setting and the accepted form.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// What an error message shows as the accepted form.
pub const DURATION_FORMS: &str = "a duration such as 90s, 1m30s, 500ms, 1h (units ns, us, ms, s, m, h; a bare number is seconds)";

/// Parses `90`, `90s`, `1m30s`, `1.5h`, `500ms`, `250us`, `0`; `None` for anything else
/// (negative values, unknown units, a number without a unit after a unit: `1m30`).
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0 && !s.starts_with(['+', '-']))
            .then(|| Duration::try_from_secs_f64(secs).ok())
            .flatten();
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_and_kubernetes_forms() {
        let ok = [
            ("90", 90_000),
            ("90s", 90_000),
            ("1m30s", 90_000),
            ("500ms", 500),
            ("1h", 3_600_000),
            ("1h2m3s", 3_723_000),
            ("1.5m", 90_000),
            ("0", 0),
            ("0.25", 250),
            (" 30s ", 30_000),
            ("1500us", 1),
        ];
        for (s, ms) in ok {
            assert_eq!(parse_duration(s).map(|d| d.as_millis()), Some(ms), "{s:?}");
        }
        for s in [
            "", "forever", "-1s", "-5", "+5", "3 days", "1m30", "5y", "1.5.3s", "s", "m5", "1d",
            ".s", "NaN", "inf",
        ] {
            assert_eq!(parse_duration(s), None, "{s:?}");
        }
    }
}
