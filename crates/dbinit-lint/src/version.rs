//! The server version squawk's rules depend on (a constant default is free from 11 on,
//! REPACK from 19), in the one form squawk compares correctly.

use std::str::FromStr;

use serde::Serialize;
use squawk_linter::Version;

/// A PostgreSQL server version, as squawk compares it: major and minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PgVersion {
    /// 13, 14, ...
    pub major: u32,
    /// The minor release.
    pub minor: u32,
}

impl PgVersion {
    /// The oldest PostgreSQL dbinit supports: what a lint without a server assumes.
    pub const OLDEST_SUPPORTED: PgVersion = PgVersion {
        major: 13,
        minor: 0,
    };

    /// From `server_version_num` (150004 is 15.4): `SHOW server_version` carries
    /// distribution suffixes (`15.4 (Debian 15.4-1)`) that squawk cannot read.
    pub fn from_server_version_num(n: u32) -> Self {
        Self {
            major: n / 10000,
            minor: n % 10000,
        }
    }

    /// From `16` or `16.2`.
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor) = match s.trim().split_once('.') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => (s.trim().parse().ok()?, 0),
        };
        (major > 0).then_some(Self { major, minor })
    }

    pub(crate) fn squawk(self) -> Version {
        // Always major.minor: squawk orders "11" below "11.0".
        Version::from_str(&self.to_string()).unwrap_or_default()
    }
}

impl std::fmt::Display for PgVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}
