//! The thresholds that turn a finding into a verdict, and the verdict that stops a deploy:
//! resolved once by the configuration room (`DBINIT_LINT_*`), read by `lint`, `plan` and
//! `run`.

use dbinit_lint::PgVersion;
use serde::Serialize;

/// How much a finding matters here, on this database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Safe here: a new or small table, or acknowledged.
    Ok,
    /// Worth a look: a medium table, advice, a held lock.
    Warn,
    /// Unsafe here: a large table under a blocking lock, old pods broken, or a statement that
    /// will fail.
    Block,
}

impl Level {
    /// The accepted forms of `DBINIT_LINT_FAIL_ON`.
    pub const FORMS: &str = "warn or block";

    /// The word printed and parsed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Block => "block",
        }
    }

    /// `warn` or `block` (the levels a gate can fail on).
    pub fn parse_gate(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "warn" => Some(Self::Warn),
            "block" => Some(Self::Block),
            _ => None,
        }
    }
}

/// Checked lint options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LintSettings {
    /// A table with at least this many rows (estimated) makes a locking finding a warning.
    pub warn_rows: u64,
    /// ...and with at least this many, a block.
    pub block_rows: u64,
    /// A table at least this large (with its indexes and TOAST, bytes) is a block whatever
    /// its row estimate says (wide rows, or never analyzed).
    pub block_bytes: u64,
    /// Findings at or above this level make `lint` exit 14 and `run` refuse; `None`: never.
    pub fail_on: Option<Level>,
    /// The server version assumed without a database.
    pub pg_version: PgVersion,
}

impl Default for LintSettings {
    fn default() -> Self {
        Self {
            warn_rows: 10_000,
            block_rows: 1_000_000,
            block_bytes: 1 << 30,
            fail_on: None,
            pg_version: PgVersion::OLDEST_SUPPORTED,
        }
    }
}

/// `n` bytes as people read them (`84 MB`), in PostgreSQL's 1024-based units.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

/// Parses a size: a whole number of bytes, or with PostgreSQL's units `kB`, `MB`, `GB`,
/// `TB` (1024-based, as in postgresql.conf).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "kB" => 10,
        "MB" => 20,
        "GB" => 30,
        "TB" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1GB"), Some(1 << 30));
        assert_eq!(parse_bytes("512 MB"), Some(512 << 20));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("1gb"), None);
        assert_eq!(parse_bytes("-1MB"), None);
        assert_eq!(parse_bytes("99999999999TB"), None);
        assert_eq!(human_bytes(84 << 20), "84 MB");
        assert_eq!(human_bytes(1536), "1.5 kB");
        assert_eq!(human_bytes(12), "12 bytes");
    }

    #[test]
    fn gate_levels() {
        assert_eq!(Level::parse_gate("Block"), Some(Level::Block));
        assert_eq!(Level::parse_gate("warn"), Some(Level::Warn));
        assert_eq!(Level::parse_gate("ok"), None);
        assert!(Level::Block > Level::Warn && Level::Warn > Level::Ok);
    }
}
