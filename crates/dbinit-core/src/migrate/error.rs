//! Why a migration command stopped: the room's own failures (a file that failed, a history
//! that diverges, a lock not had in time, a lost connection, a database dbinit did not build)
//! and the failures of the rooms below it that it passes on, each with its exit code. A run
//! that stopped partway carries what it had done ([`Error::Run`]).

use std::time::Duration;

use super::plan::Divergence;
use super::report::RunReport;
use super::set::ScriptKind;
use crate::dependency::{self, Cause};
use crate::exit::{self, ExitCode};
use crate::lint::{self, Level};
use crate::postgres;
use crate::setting::ConfigError;

/// Why `run` will not touch a database (exit 9): it was built without dbinit and has not been
/// adopted, or cannot be adopted as it is. Built by the adopt room; defined here, below it,
/// because every migration command may end with it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Everything that can stop a migration command; each variant knows its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong for what the command found (a version that is not applied, a
    /// database that does not exist).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// PostgreSQL or Redis could not be used.
    #[error(transparent)]
    Dependency(#[from] dependency::Error),
    /// A PostgreSQL statement failed outside a migration.
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
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
    /// A compatibility floor recorded in the database excludes this release's set.
    #[error(transparent)]
    Incompatible(#[from] super::floor::Incompatible),
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
    /// `wait` mode: the schema did not reach the expected version before the deadline.
    #[error("timed out after {:.1}s waiting for another runner to apply: {missing}", waited.as_secs_f64())]
    SchemaTimeout {
        /// How long was waited.
        waited: Duration,
        /// The migrations and seeds still missing.
        missing: String,
    },
    /// The database was built without dbinit and has not been adopted (or cannot be as it is).
    #[error(transparent)]
    Unadopted(#[from] Refusal),
    /// The review of the files to apply found what `DBINIT_LINT_FAIL_ON` stops at; nothing
    /// was applied.
    #[error("refusing to apply: {summary}; findings at or above {} stop the deploy (DBINIT_LINT_FAIL_ON); fix them, or acknowledge each with `-- dbinit:allow=RULE`", gate.as_str())]
    Unsafe {
        /// The level that stops.
        gate: Level,
        /// The findings that did, in a few words.
        summary: String,
    },
    /// The review itself could not be made.
    #[error("failed to review the migrations")]
    Lint(#[source] lint::Error),
    /// A run stopped partway: why, and what it had done by then (refinery's `Error` carries
    /// its report the same way), so a caller can record it without asking the database.
    #[error("{}{}", cause.render(), after_failure(cause, report))]
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
            Self::Dependency(e) => e.exit_code(),
            Self::Postgres(e) => e.exit_code(),
            Self::SchemaTimeout { .. } | Self::Disconnected { .. } => ExitCode::Timeout,
            Self::ScriptFailed { .. } => ExitCode::MigrationFailed,
            Self::Diverged(_) => ExitCode::Diverged,
            Self::Incompatible(_) => ExitCode::Incompatible,
            Self::LockTimeout { .. } | Self::TableLockTimeout { .. } => ExitCode::Lock,
            Self::Unadopted(_) => ExitCode::Unadopted,
            Self::Unsafe { .. } => ExitCode::Unsafe,
            Self::Lint(_) => ExitCode::Failure,
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
        exit::render(self)
    }
}

/// What a failure's message adds: the files this run applied before the failing one, which
/// stay applied.
fn after_failure(cause: &Error, report: &RunReport) -> String {
    let applied = report.applied_this_run();
    if cause.failed_file().is_none() || applied.is_empty() {
        return String::new();
    }
    format!(
        ", and the {} before it in this run stay applied ({})",
        applied.len(),
        applied.join(", ")
    )
}

/// `Result` with this room's error as default.
pub type Result<T, E = Error> = std::result::Result<T, E>;
