//! The library's error type and the process exit codes it maps to.

use std::time::Duration;

use crate::config::ConfigError;

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
}

impl ExitCode {
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
        }
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
        "timed out after {:.1}s waiting for {dependency} ({attempts} attempts); last error: {last}",
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
        last: String,
    },
    /// A dependency refused us for a reason retrying cannot fix.
    #[error("{dependency} refused the connection: {reason}")]
    Refused {
        /// What refused, with its address.
        dependency: String,
        /// Why, in words and with the SQLSTATE where there is one.
        reason: String,
    },
    /// A dependency answered, but with an error that is neither transient nor a refusal.
    #[error("{dependency} is not usable: {reason}")]
    Unusable {
        /// What answered, with its address.
        dependency: String,
        /// What it said.
        reason: String,
    },
    /// A PostgreSQL statement failed outside a migration.
    #[error("failed to {action}: {reason}")]
    Postgres {
        /// What was being done.
        action: String,
        /// The server's or driver's explanation.
        reason: String,
    },
    /// A migration or seed failed; it was rolled back.
    #[error("{kind} {name} failed: {message}{}", if sqlstate.is_empty() { String::new() } else { format!(" (SQLSTATE {sqlstate})") })]
    ScriptFailed {
        /// `migration` or `seed`.
        kind: &'static str,
        /// Which file.
        name: String,
        /// The server's error code, when the server raised it.
        sqlstate: String,
        /// What went wrong, with the line when known.
        message: String,
    },
    /// The database's history and the migration set disagree.
    #[error(transparent)]
    Diverged(#[from] crate::history::Divergence),
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
    /// A lock above the database (the Kubernetes Lease) was not acquired in time or was lost.
    #[error("{0}")]
    LockLost(String),
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
    Interrupted(&'static str),
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) => ExitCode::Config,
            Self::DependencyTimeout { .. } | Self::SchemaTimeout { .. } => ExitCode::Timeout,
            Self::ScriptFailed { .. } => ExitCode::MigrationFailed,
            Self::Diverged(_) => ExitCode::Diverged,
            Self::LockTimeout { .. } | Self::LockLost(_) => ExitCode::Lock,
            Self::Refused { .. } => ExitCode::Refused,
            Self::Unusable { .. } | Self::Postgres { .. } => ExitCode::Failure,
            Self::Interrupted(_) => ExitCode::Interrupted,
        }
    }
}

/// `pub type Result` with the library's error as default, as kube-runtime does.
pub type Result<T, E = Error> = std::result::Result<T, E>;
