//! The crate's error: the top of the rooms, composing each room's own error with `#[from]`
//! (as kube-runtime's `controller::Error` wraps `watcher::Error`), plus what only the edge
//! produces — a shutdown signal, a lock held above the database (the Kubernetes Lease).
//! No room below imports it.
//!
//! Causes stay typed (`#[source]`) inside [`Error`]; [`Error::render`] turns the whole chain
//! into the one line a person reads, once, at the end of a run.

use crate::dependency::{self, Cause};
use crate::migrate::{self, report::RunReport};
use crate::setting::ConfigError;
use crate::signal::Signal;

pub use crate::exit::ExitCode;

/// Everything that can stop a run; each variant knows its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A migration command failed (and, for a run, what it had done by then).
    #[error(transparent)]
    Migrate(#[from] migrate::Error),
    /// A tool-mode command failed (its child, its lock, its tool's table).
    #[error(transparent)]
    Tool(#[from] crate::tool::Error),
    /// PostgreSQL, Redis or the Kubernetes API could not be used.
    #[error(transparent)]
    Dependency(#[from] dependency::Error),
    /// A lock above the database (the Kubernetes Lease) was not acquired in time or was lost.
    #[error(transparent)]
    LockLost(Cause),
    /// SIGTERM or SIGINT arrived.
    #[error("interrupted by {0}; open work was rolled back")]
    Interrupted(Signal),
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) => ExitCode::Config,
            Self::Migrate(e) => e.exit_code(),
            Self::Tool(e) => e.exit_code(),
            Self::Dependency(e) => e.exit_code(),
            Self::LockLost(_) => ExitCode::Lock,
            Self::Interrupted(_) => ExitCode::Interrupted,
        }
    }

    /// What the run had done when it stopped, when the error comes from a run.
    pub fn report(&self) -> Option<&RunReport> {
        match self {
            Self::Migrate(e) => e.report(),
            _ => None,
        }
    }

    /// The file a failed run stopped at and the SQLSTATE it ended with, for the
    /// termination message and Kubernetes Events.
    pub fn failed_file(&self) -> Option<(&str, Option<&str>)> {
        match self {
            Self::Migrate(e) => e.failed_file(),
            _ => None,
        }
    }

    /// Attaches what the run had done to a migration command's error (a no-op when it already
    /// carries a report). The edge's own causes — a signal, the Lease, a dependency that never
    /// came — stay as they are: their message does not depend on it.
    pub fn with_report(self, report: RunReport) -> Self {
        match self {
            Self::Migrate(e) => Self::Migrate(e.with_report(report)),
            e => e,
        }
    }

    /// The whole chain in one line, `what failed: why: why that`, for a person to read.
    pub fn render(&self) -> String {
        crate::exit::render(self)
    }
}

/// `pub type Result` with the library's error as default, as kube-runtime does.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_follows_the_sources_once() {
        let e: Error = dependency::Error::Refused {
            dependency: "PostgreSQL at h:1".into(),
            cause: "password authentication failed".into(),
        }
        .into();
        assert_eq!(
            e.render(),
            "PostgreSQL at h:1 refused the connection: password authentication failed"
        );
        assert_eq!(e.exit_code(), ExitCode::Refused);
    }
}
