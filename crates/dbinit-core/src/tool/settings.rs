//! The checked options of tool mode, resolved once by the configuration room.

use std::path::PathBuf;
use std::time::Duration;

use super::command::MigrateCommand;
use super::files::Project;
use super::kind::Tool;

/// Default `DBINIT_CHILD_GRACE`: below Kubernetes' default `terminationGracePeriodSeconds`
/// (30 s), leaving dbinit time to wait for the child's sessions, release the lock and record
/// the run.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(20);

/// Checked tool-mode options.
#[derive(Debug, Clone)]
pub struct ToolSettings {
    /// The command (`run` runs it; `wait`, `status` and `plan` read it for the tool and its
    /// files), if given.
    pub command: Option<MigrateCommand>,
    /// The command's program, found on PATH.
    pub program: Option<PathBuf>,
    /// The tool: `--tool`, else recognised from the command.
    pub tool: Option<Tool>,
    /// Where the tool's files and table are, when the tool is known.
    pub project: Option<Project>,
    /// Why the command runs every time even when the tool's table is up to date (a command
    /// of a known tool that is not its apply-all command, or no known tool).
    pub always_runs: Option<String>,
    /// How long the child may take to exit after SIGTERM (`DBINIT_CHILD_GRACE`).
    pub grace: Duration,
    /// How long the child may run (`DBINIT_MIGRATE_TIMEOUT`; `None`: no limit).
    pub timeout: Option<Duration>,
}

impl ToolSettings {
    /// The command as a person would type it.
    pub fn display(&self) -> Option<String> {
        self.command.as_ref().map(MigrateCommand::display)
    }
}
