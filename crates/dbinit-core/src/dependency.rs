//! What goes wrong with something dbinit depends on — PostgreSQL, Redis, the Kubernetes API:
//! it stayed away until the deadline, refused us, or answered in a way we cannot use.
//! Readiness builds these errors, and so do connecting to the application's database,
//! creating it and the job's Kubernetes calls, so the type is a room of its own below them all.

use std::time::Duration;

use crate::exit::ExitCode;

/// A cause from another layer (a connection error, the Kubernetes API's answer), kept as a
/// typed error so callers can inspect it and [`crate::exit::render`] can print it.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a dependency could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dependency stayed unreachable until the deadline.
    #[error(
        "timed out after {:.1}s waiting for {dependency} ({attempts} attempts); last error",
        waited.as_secs_f64()
    )]
    Timeout {
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
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Timeout { .. } => ExitCode::Timeout,
            Self::Refused { .. } => ExitCode::Refused,
            Self::Unusable { .. } => ExitCode::Failure,
        }
    }
}

/// `Result` with this room's error as default.
pub type Result<T, E = Error> = std::result::Result<T, E>;
