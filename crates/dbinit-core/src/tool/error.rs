//! Why a tool-mode command stopped, each with its exit code: the command failed (5), ran
//! past its timeout (5), could not be started (2), was interrupted (8, after the signal was
//! forwarded to it), the tool's table records a failure a person must repair (6), or `wait`
//! ran out of time (3). What lies below (the dependencies, the lock, the seeds) keeps the
//! migration room's errors and codes.

use std::time::Duration;

use super::child::{End, Tail};
use super::state::ToolState;
use crate::exit::{self, ExitCode};
use crate::migrate;
use crate::setting::ConfigError;
use crate::signal::Signal;

/// Everything that can stop a tool-mode command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting or the files do not allow the command (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Waiting, creating the database, the lock, reading, seeding.
    #[error(transparent)]
    Migrate(#[from] migrate::Error),
    /// The command could not be started.
    #[error("the migration command `{command}` could not be started: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The operating system's words.
        #[source]
        source: std::io::Error,
    },
    /// The command ended with a non-zero status or was killed by a signal.
    #[error("the migration command `{command}` failed: it {end} after {:.1}s{lines}", elapsed.as_secs_f64())]
    Failed {
        /// The command.
        command: String,
        /// How it ended.
        end: End,
        /// How long it ran.
        elapsed: Duration,
        /// Its last lines, scrubbed.
        lines: Tail,
    },
    /// The command ran past `DBINIT_MIGRATE_TIMEOUT` and was stopped.
    #[error("the migration command `{command}` ran past DBINIT_MIGRATE_TIMEOUT ({:.0}s) and was stopped: it {end}{}{lines}", timeout.as_secs_f64(), if *killed { " (killed after the grace period)" } else { "" })]
    TimedOut {
        /// The command.
        command: String,
        /// The limit.
        timeout: Duration,
        /// How it ended.
        end: End,
        /// Whether it outlived the grace period.
        killed: bool,
        /// Its last lines, scrubbed.
        lines: Tail,
    },
    /// SIGTERM or SIGINT arrived; while the command ran it was forwarded to it.
    #[error("interrupted by {signal}{}", child.as_ref().map(|(c, e, k)| format!("; forwarded to the migration command `{c}`, which {e}{}", if *k { " (killed after the grace period, DBINIT_CHILD_GRACE)" } else { "" })).unwrap_or_else(|| "; open work was rolled back".into()))]
    Interrupted {
        /// The signal.
        signal: Signal,
        /// The command, how it ended and whether it had to be killed, when it was running.
        child: Option<(String, End, bool)>,
    },
    /// The tool's table records a failed migration that a person must repair.
    #[error("{}", .0.describe())]
    ToolFailed(Box<ToolState>),
    /// `wait`: the tool did not reach the image's head before the deadline.
    #[error("timed out after {:.1}s waiting for the schema: {state}", waited.as_secs_f64())]
    WaitTimeout {
        /// How long was waited.
        waited: Duration,
        /// The last state seen.
        state: String,
    },
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) => ExitCode::Config,
            Self::Migrate(e) => e.exit_code(),
            Self::Spawn { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                    ExitCode::Config
                }
                _ => ExitCode::Failure,
            },
            Self::Failed { .. } | Self::TimedOut { .. } => ExitCode::MigrationFailed,
            Self::Interrupted { .. } => ExitCode::Interrupted,
            Self::ToolFailed(_) => ExitCode::Diverged,
            Self::WaitTimeout { .. } => ExitCode::Timeout,
        }
    }

    /// The whole chain in one line, for a person to read.
    pub fn render(&self) -> String {
        exit::render(self)
    }
}

impl From<crate::dependency::Error> for Error {
    fn from(e: crate::dependency::Error) -> Self {
        Self::Migrate(e.into())
    }
}

/// `Result` with this room's error as default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_status_and_the_tail() {
        let e = Error::Failed {
            command: "alembic upgrade head".into(),
            end: End::Exited(1),
            elapsed: Duration::from_millis(1500),
            lines: Tail {
                lines: vec![
                    "Traceback".into(),
                    "sqlalchemy.exc.ProgrammingError: boom".into(),
                ],
                from_stdout: false,
            },
        };
        assert_eq!(e.exit_code(), ExitCode::MigrationFailed);
        assert_eq!(
            e.render(),
            "the migration command `alembic upgrade head` failed: it exited with status 1 after 1.5s; its last stderr lines: Traceback | sqlalchemy.exc.ProgrammingError: boom"
        );
        let e = Error::Interrupted {
            signal: Signal::Term,
            child: Some(("dbmate up".into(), End::Signalled(15), false)),
        };
        assert_eq!(e.exit_code(), ExitCode::Interrupted);
        assert!(
            e.render()
                .contains("which was killed by signal SIGTERM (15)"),
            "{}",
            e.render()
        );
    }
}
