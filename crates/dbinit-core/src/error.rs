//! The library's error type and the process exit codes it maps to.
//!
//! Causes stay typed (`#[source]`) inside [`Error`]; [`Error::render`] turns the whole chain
//! into the one line a person reads, once, at the end of a run.

use std::time::Duration;

use crate::cli::Signal;
use crate::config::ConfigError;
use crate::migrate::plan::Divergence;
use crate::migrate::report::RunReport;
use crate::migrate::set::ScriptKind;
use crate::postgres::PgError;

/// A cause from another layer (a connection error, the Kubernetes API's answer), kept as a
/// typed error so callers can inspect it and [`Error::render`] can print it.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Stable process exit codes, documented in the README. Scripts and Kubernetes
/// `restartPolicy` decisions key on them, so they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Everything is ready.
    Ok = 0,
    /// Anything not covered below.
    Failure = 1,
    /// Bad configuration: nothing was attempted.
    Config = 2,
    /// A dependency did not become ready (or the schema did not arrive) before the deadline.
    Timeout = 3,
    /// Authentication or permission refused; retrying will not help.
    Refused = 4,
    /// A migration or seed failed and was rolled back.
    MigrationFailed = 5,
    /// The database's history diverges from the migration set (edited or missing files).
    Diverged = 6,
    /// The migration lock was not acquired in time, or was lost.
    Lock = 7,
    /// Interrupted by SIGTERM or SIGINT; open work was rolled back.
    Interrupted = 8,
    /// The database has tables or another tool's history but no dbinit history: running V1
    /// on top of them would fail or worse, so it must be adopted (baseline/adopt) first.
    Unadopted = 9,
    /// `dbinit status --exit-code`: migrations or seeds are pending.
    Pending = 10,
    /// `dbinit status --exit-code`: the database has migrations newer than this binary's set
    /// (a newer release migrated it).
    Ahead = 11,
    /// `dbinit status --exit-code`: an INVALID index left by an interrupted no-transaction
    /// migration.
    InvalidIndex = 12,
}

impl ExitCode {
    /// Every code, in order: the one table that `--help`, the termination message and the
    /// README (checked by a test) are written from.
    pub const ALL: [ExitCode; 10] = [
        Self::Ok,
        Self::Failure,
        Self::Config,
        Self::Timeout,
        Self::Refused,
        Self::MigrationFailed,
        Self::Diverged,
        Self::Lock,
        Self::Interrupted,
        Self::Unadopted,
    ];

    /// A short stable word for the termination message and the status ConfigMap.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failure => "failed",
            Self::Config => "config",
            Self::Timeout => "timeout",
            Self::Refused => "refused",
            Self::MigrationFailed => "migration-failed",
            Self::Diverged => "diverged",
            Self::Lock => "lock",
            Self::Interrupted => "interrupted",
            Self::Unadopted => "unadopted",
            Self::Pending => "pending",
            Self::Ahead => "ahead",
            Self::InvalidIndex => "invalid-index",
        }
    }

    /// What the code means, in a few words; README's table row starts with exactly this.
    pub fn summary(self) -> &'static str {
        match self {
            Self::Ok => "ready",
            Self::Failure => "anything else",
            Self::Config => "bad configuration",
            Self::Timeout => "timed out waiting for a dependency",
            Self::Refused => "authentication or permission refused",
            Self::MigrationFailed => "a migration or seed failed",
            Self::Diverged => "the migration set diverges from the database",
            Self::Lock => "lock not acquired in time",
            Self::Interrupted => "interrupted by SIGTERM/SIGINT",
            Self::Unadopted => {
                "the database has tables or another tool's history but no dbinit history"
            }
            Self::Pending => "status --exit-code: migrations or seeds are pending",
            Self::Ahead => "status --exit-code: the database is ahead of this binary",
            Self::InvalidIndex => {
                "status --exit-code: an INVALID index left by a no-transaction migration"
            }
        }
    }

    /// The codes only `dbinit status --exit-code` uses, beside 0, 6 (drift) and the usual
    /// failures.
    pub const STATUS: [ExitCode; 3] = [Self::Pending, Self::Ahead, Self::InvalidIndex];

    /// The table as `--help` prints it, one code per line.
    pub fn help() -> String {
        let mut s = String::from("Exit codes:\n");
        for c in Self::ALL.iter().chain(&Self::STATUS) {
            s.push_str(&format!("  {}  {}\n", *c as u8, c.summary()));
        }
        s
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c as u8)
    }
}

/// Everything that can stop a run; each variant knows its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A dependency stayed unreachable until the deadline.
    #[error(
        "timed out after {:.1}s waiting for {dependency} ({attempts} attempts); last error",
        waited.as_secs_f64()
    )]
    DependencyTimeout {
        /// What was waited for, with its address.
        dependency: String,
        /// How long was waited.
        waited: Duration,
        /// How many attempts were made.
        attempts: u32,
        /// The last error seen.
        #[source]
        last: Cause,
    },
    /// A dependency refused us for a reason retrying cannot fix.
    #[error("{dependency} refused the connection")]
    Refused {
        /// What refused, with its address.
        dependency: String,
        /// Why, in words and with the SQLSTATE where there is one.
        #[source]
        cause: Cause,
    },
    /// A dependency answered, but with an error that is neither transient nor a refusal.
    #[error("{dependency} is not usable")]
    Unusable {
        /// What answered, with its address.
        dependency: String,
        /// What it said.
        #[source]
        cause: Cause,
    },
    /// A PostgreSQL statement failed outside a migration.
    #[error("failed to {action}")]
    Postgres {
        /// What was being done.
        action: String,
        /// The server's or driver's explanation.
        #[source]
        source: PgError,
    },
    /// A migration or seed failed; it was rolled back.
    #[error("{kind} {name} failed: {message}{}", sqlstate.as_ref().map(|s| format!(" (SQLSTATE {s})")).unwrap_or_default())]
    ScriptFailed {
        /// Migration or seed.
        kind: ScriptKind,
        /// Which file.
        name: String,
        /// The server's error code, when the server raised it.
        sqlstate: Option<String>,
        /// What went wrong, with the line when known, and what it left behind.
        message: String,
    },
    /// The database's history and the migration set disagree.
    #[error(transparent)]
    Diverged(#[from] Divergence),
    /// The migration lock was not acquired before the lock timeout.
    #[error(
        "timed out after {:.1}s waiting for the migration lock{}",
        waited.as_secs_f64(),
        holder.as_ref().map(|h| format!(", held by {h}")).unwrap_or_default()
    )]
    LockTimeout {
        /// How long was waited.
        waited: Duration,
        /// Who held it at the end.
        holder: Option<String>,
    },
    /// A file kept failing to get the table locks it needs (SQLSTATE 55P03 under its
    /// `lock_timeout`, or deadlocks) until the retry deadline; each attempt was rolled back.
    #[error(
        "{kind} {name} could not get the locks it needs within {:.1}s ({attempts} attempts, each rolled back){} (SQLSTATE {sqlstate})",
        waited.as_secs_f64(),
        blockers.as_ref().map(|b| format!("; blocked by {b}")).unwrap_or_default()
    )]
    TableLockTimeout {
        /// Migration or seed.
        kind: ScriptKind,
        /// Which file.
        name: String,
        /// The last attempt's SQLSTATE (55P03, 40P01 or 40001).
        sqlstate: String,
        /// How long it kept trying.
        waited: Duration,
        /// How many attempts.
        attempts: u32,
        /// Who held the conflicting locks, when seen.
        blockers: Option<String>,
    },
    /// The connection to PostgreSQL went away mid-run and did not come back in time (a
    /// restart or failover that outlasted the deadline, or one that kept happening).
    #[error("lost the connection to PostgreSQL while trying to {action}")]
    Disconnected {
        /// What was being done.
        action: String,
        /// The driver's or server's words.
        #[source]
        source: Cause,
    },
    /// A lock above the database (the Kubernetes Lease) was not acquired in time or was lost.
    #[error(transparent)]
    LockLost(Cause),
    /// `wait` mode: the schema did not reach the expected version before the deadline.
    #[error("timed out after {:.1}s waiting for another runner to apply: {missing}", waited.as_secs_f64())]
    SchemaTimeout {
        /// How long was waited.
        waited: Duration,
        /// The migrations and seeds still missing.
        missing: String,
    },
    /// SIGTERM or SIGINT arrived.
    #[error("interrupted by {0}; open work was rolled back")]
    Interrupted(Signal),
    /// The database was built without dbinit and has not been adopted (or cannot be as it is).
    #[error(transparent)]
    Unadopted(#[from] crate::migrate::adopt::Refusal),
    /// A run stopped partway: why, and what it had done by then (refinery's `Error` carries
    /// its report the same way), so a caller can record it without asking the database.
    #[error("{}{}", cause.render(), report.after_failure(cause))]
    Run {
        /// Why it stopped.
        cause: Box<Error>,
        /// What it applied before, the version reached and what is still pending.
        report: Box<RunReport>,
    },
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) => ExitCode::Config,
            Self::DependencyTimeout { .. } | Self::SchemaTimeout { .. } => ExitCode::Timeout,
            Self::ScriptFailed { .. } => ExitCode::MigrationFailed,
            Self::Diverged(_) => ExitCode::Diverged,
            Self::LockTimeout { .. } | Self::LockLost(_) | Self::TableLockTimeout { .. } => {
                ExitCode::Lock
            }
            Self::Disconnected { .. } => ExitCode::Timeout,
            Self::Refused { .. } => ExitCode::Refused,
            Self::Unusable { .. } | Self::Postgres { .. } => ExitCode::Failure,
            Self::Interrupted(_) => ExitCode::Interrupted,
            Self::Unadopted(_) => ExitCode::Unadopted,
            Self::Run { cause, .. } => cause.exit_code(),
        }
    }

    /// What the run had done when it stopped, when the error comes from a run.
    pub fn report(&self) -> Option<&RunReport> {
        match self {
            Self::Run { report, .. } => Some(report),
            _ => None,
        }
    }

    /// The file a failed run stopped at and the SQLSTATE it ended with, for the
    /// termination message and Kubernetes Events.
    pub fn failed_file(&self) -> Option<(&str, Option<&str>)> {
        match self {
            Self::ScriptFailed { name, sqlstate, .. } => Some((name, sqlstate.as_deref())),
            Self::TableLockTimeout { name, sqlstate, .. } => Some((name, Some(sqlstate))),
            Self::Run { cause, .. } => cause.failed_file(),
            _ => None,
        }
    }

    /// Attaches what the run had done; a no-op for an error that already carries a report.
    pub fn with_report(self, report: RunReport) -> Self {
        match self {
            e @ Self::Run { .. } => e,
            cause => Self::Run {
                cause: Box::new(cause),
                report: Box::new(report),
            },
        }
    }

    /// The whole chain in one line, `what failed: why: why that`, for a person to read.
    pub fn render(&self) -> String {
        let mut s = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(cause) = src {
            s.push_str(": ");
            s.push_str(&cause.to_string());
            src = cause.source();
        }
        s
    }
}

/// `pub type Result` with the library's error as default, as kube-runtime does.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_their_position_in_the_table() {
        for (i, c) in ExitCode::ALL.iter().enumerate() {
            assert_eq!(*c as u8 as usize, i);
        }
    }

    /// README's exit-code table is the same table: every code, in order, each row starting
    /// with the code's summary.
    #[test]
    fn readme_table_matches_the_code() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md");
        let section = readme
            .split("\n## Exit codes\n")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("README has an `## Exit codes` section");
        let rows: Vec<(u8, &str)> = section
            .lines()
            .filter_map(|l| {
                let mut cells = l.strip_prefix('|')?.split('|').map(str::trim);
                let code = cells.next()?.parse().ok()?;
                Some((code, cells.next()?))
            })
            .collect();
        assert_eq!(rows.len(), ExitCode::ALL.len(), "{rows:?}");
        for ((code, meaning), c) in rows.iter().zip(ExitCode::ALL) {
            assert_eq!(*code, c as u8);
            assert!(
                meaning.starts_with(c.summary()),
                "README row {code} should start with {:?}: {meaning:?}",
                c.summary()
            );
        }
        for c in &ExitCode::ALL[1..] {
            assert!(
                section.contains(&format!("`{}`", c.as_str())),
                "README names the termination-message kind {}",
                c.as_str()
            );
        }
    }

    #[test]
    fn render_follows_the_sources_once() {
        let e = Error::Refused {
            dependency: "PostgreSQL at h:1".into(),
            cause: "password authentication failed".into(),
        };
        assert_eq!(
            e.render(),
            "PostgreSQL at h:1 refused the connection: password authentication failed"
        );
        assert_eq!(e.exit_code(), ExitCode::Refused);
    }
}
