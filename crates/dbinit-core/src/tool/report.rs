//! What a tool-mode command found and did, for the log, the termination message and the
//! status record.

use std::time::Duration;

use serde::Serialize;

use super::kind::Tool;
use super::state::{ToolState, Verdict};

/// What a tool-mode `run` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ToolReport {
    /// The application's database.
    pub database: String,
    /// Whether this run created it.
    pub created: bool,
    /// The tool, when known.
    pub tool: Option<Tool>,
    /// The command, as a person would type it.
    pub command: Option<String>,
    /// What dbinit found before deciding (under the lock when it took it).
    pub before: Option<ToolState>,
    /// Whether the command was started.
    pub ran: bool,
    /// How it ended ("exited with status 0").
    pub end: Option<String>,
    /// How long it ran.
    pub command_ms: Option<u64>,
    /// What the tool's table says after the command.
    pub after: Option<ToolState>,
    /// Seeds applied by this run.
    pub seeds: Vec<String>,
    /// How long this run waited for the lock, when it had to take it.
    pub lock_wait_ms: Option<u64>,
}

impl ToolReport {
    /// An empty report.
    pub fn new(database: &str, tool: Option<Tool>, command: Option<String>) -> Self {
        Self {
            database: database.to_string(),
            tool,
            command,
            ..Self::default()
        }
    }

    /// The latest state known: after the command, else before.
    pub fn state(&self) -> Option<&ToolState> {
        self.after.as_ref().or(self.before.as_ref())
    }

    /// One line for the log and the termination message.
    pub fn summary(&self, elapsed: Duration) -> String {
        let created = if self.created { " (created)" } else { "" };
        let db = format!("database {:?}{created}", self.database);
        let command = self.command.as_deref().unwrap_or("the migration command");
        let state = self.state().map(ToolState::describe);
        let seeds = if self.seeds.is_empty() {
            String::new()
        } else {
            format!("; applied {} seed(s)", self.seeds.len())
        };
        let ms = elapsed.as_millis();
        if self.ran {
            format!(
                "{db}: ran `{command}`, which {} in {} ms{}{seeds} ({ms} ms in all)",
                self.end.as_deref().unwrap_or("ended"),
                self.command_ms.unwrap_or_default(),
                state.map(|s| format!("; {s}")).unwrap_or_default()
            )
        } else {
            let why = match self.before.as_ref().map(|s| s.verdict) {
                Some(Verdict::Ahead) => "the database is ahead of this image",
                _ => "nothing to apply",
            };
            format!(
                "{db}: {}; `{command}` not run ({why}){seeds} ({ms} ms)",
                state.unwrap_or_else(|| "up to date".into())
            )
        }
    }
}
