//! The decision: the tool's files in the image ([`Expected`]) against the tool's table
//! ([`Recorded`]), by each tool's own semantics. Up to date: the command would do nothing,
//! so it is skipped. Pending: it runs, under the lock. Ahead: the table holds what this
//! image does not know (a newer release ran, then `helm rollback`): tolerated with a warning,
//! the command skipped (Alembic, sqlx and golang-migrate would fail on it). Failed: the
//! table records a failed or half-done migration (golang-migrate dirty, a failed sqlx,
//! Prisma or Flyway row) that only a person can repair: exit 6 with the tool's own fix.
//! Unknown: the files could not be read, or the command is not the tool's apply-all
//! command; it runs under the lock every time.

use serde::Serialize;

use super::kind::Tool;

/// The one-word result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The table holds the files' head: the command would do nothing.
    UpToDate,
    /// Something in the files is not in the table.
    Pending,
    /// The table holds versions the files do not (a newer release migrated).
    Ahead,
    /// A failed or half-applied migration is recorded; a person must repair it.
    Failed,
    /// dbinit cannot tell; the command runs every time.
    Unknown,
}

impl Verdict {
    /// The word, as JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpToDate => "up-to-date",
            Self::Pending => "pending",
            Self::Ahead => "ahead",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }
}

/// What dbinit found for the tool: the verdict and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolState {
    /// The tool.
    pub tool: Tool,
    /// Its history table.
    pub table: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What the image's files lead to: Alembic's heads, the highest version, ...
    pub image_head: Vec<String>,
    /// What the table says the database is at.
    pub database_head: Vec<String>,
    /// In the files, not in the table.
    pub pending: Vec<String>,
    /// In the table, not in the files.
    pub ahead: Vec<String>,
    /// For `failed`: what is recorded; for `unknown`: why dbinit cannot tell.
    pub problem: Option<String>,
    /// For `failed`: the tool's own fix, to run by hand.
    pub fix: Option<String>,
}

impl ToolState {
    pub(super) fn new(tool: Tool, table: &str) -> Self {
        Self {
            tool,
            table: table.to_string(),
            verdict: Verdict::Unknown,
            image_head: Vec::new(),
            database_head: Vec::new(),
            pending: Vec::new(),
            ahead: Vec::new(),
            problem: None,
            fix: None,
        }
    }

    /// The state of a tool whose files or table could not be read, or whose command dbinit
    /// does not judge.
    pub fn unknown(tool: Tool, table: &str, why: String) -> Self {
        Self {
            problem: Some(why),
            ..Self::new(tool, table)
        }
    }

    /// Sets the verdict from what was filled in: failed, then pending, then ahead.
    pub(super) fn conclude(mut self) -> Self {
        self.verdict = if self.problem.is_some() {
            Verdict::Failed
        } else if !self.pending.is_empty() {
            Verdict::Pending
        } else if !self.ahead.is_empty() {
            Verdict::Ahead
        } else {
            Verdict::UpToDate
        };
        self
    }

    pub(super) fn failed(mut self, problem: String, fix: String) -> Self {
        if self.problem.is_none() {
            self.problem = Some(problem);
            self.fix = Some(fix);
        }
        self
    }

    /// One line for logs and messages.
    pub fn describe(&self) -> String {
        let list = |v: &[String]| {
            if v.len() > 5 {
                format!(
                    "{} .. {} ({} in all)",
                    v[..2].join(", "),
                    v[v.len() - 1],
                    v.len()
                )
            } else {
                v.join(", ")
            }
        };
        let at = if self.database_head.is_empty() {
            "nothing applied".to_string()
        } else {
            format!("at {}", list(&self.database_head))
        };
        let name = self.tool.name();
        match self.verdict {
            Verdict::UpToDate => format!(
                "{name} is up to date ({} {at}, the head of the image's files)",
                self.table
            ),
            Verdict::Pending => format!(
                "{name} has pending migrations: {} ({} {at})",
                list(&self.pending),
                self.table
            ),
            Verdict::Ahead => format!(
                "{name}'s table {} holds {} that this image does not know (a newer release migrated; after a rollback this is expected); the image's head is {}",
                self.table,
                list(&self.ahead),
                list(&self.image_head)
            ),
            Verdict::Failed => format!(
                "{name}'s table {} records a failed migration: {}; fix: {}",
                self.table,
                self.problem.as_deref().unwrap_or("?"),
                self.fix.as_deref().unwrap_or("?")
            ),
            Verdict::Unknown => format!(
                "cannot tell whether {name} has anything to do: {}",
                self.problem.as_deref().unwrap_or("?")
            ),
        }
    }
}
