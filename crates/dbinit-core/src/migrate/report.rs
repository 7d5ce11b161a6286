//! What a command found or did, for the log, the termination message, `status` and the
//! Kubernetes status record.

use std::time::Duration;

use serde::Serialize;

use super::adopt::audit::AdoptionRecord;
use super::plan::{Entry, EntryState, Plan};
use super::set::{Migration, MigrationSet, Seed};
use crate::exit::ExitCode;

/// What a `run` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// The application's database.
    pub database: String,
    /// Whether this run created it.
    pub created: bool,
    /// Migrations applied by this run.
    pub migrations: Vec<String>,
    /// Seeds applied by this run.
    pub seeds: Vec<String>,
    /// Schema version reached (the highest applied, also after a failure).
    pub version: Option<i64>,
    /// Migrations and seeds still pending when the run ended (empty until the history was
    /// read).
    pub pending: Vec<String>,
    /// How long this run waited for the lock, when it had to take it.
    pub lock_wait_ms: Option<u64>,
    /// Applied migrations newer than the set (a newer release ran; tolerated), once the
    /// history was read.
    pub ahead: Vec<String>,
}

impl RunReport {
    /// An empty report for the application's database.
    pub fn new(database: &str) -> Self {
        Self {
            database: database.to_string(),
            ..Self::default()
        }
    }

    /// Records what the history says: the version reached and what is pending.
    pub fn planned(&mut self, set: &MigrationSet, plan: &Plan) {
        self.version = plan.applied_version;
        self.pending = plan.pending(set);
        self.ahead = plan.future.clone();
        // After a reconnect: a commit the server lost in a crash (an asynchronous one) is
        // pending again and will be applied, and counted, again.
        let pending = &self.pending;
        self.migrations.retain(|n| !pending.contains(n));
        self.seeds.retain(|n| !pending.contains(n));
    }

    /// Records a migration this run applied (committed).
    pub fn applied_migration(&mut self, m: &Migration) {
        let name = m.to_string();
        self.pending.retain(|p| *p != name);
        self.migrations.push(name);
        self.version = self.version.max(Some(m.version()));
    }

    /// Records a seed this run applied (committed).
    pub fn applied_seed(&mut self, s: &Seed) {
        self.pending.retain(|p| *p != s.name);
        self.seeds.push(s.name.clone());
    }

    /// Migrations, then seeds, this run applied.
    pub fn applied_this_run(&self) -> Vec<String> {
        self.migrations.iter().chain(&self.seeds).cloned().collect()
    }

    /// One line for the log and the termination message.
    pub fn summary(&self, elapsed: Duration) -> String {
        let version = self
            .version
            .map_or("no migrations".to_string(), |v| format!("version {v}"));
        let created = if self.created { ", created" } else { "" };
        let ahead = if self.ahead.is_empty() {
            String::new()
        } else {
            format!(
                " (ahead of this set: {} migration(s){} from a newer release)",
                self.ahead.len(),
                list(&self.ahead)
            )
        };
        if self.migrations.is_empty() && self.seeds.is_empty() {
            format!(
                "database {:?} is up to date at {version}{created}{ahead}; nothing to apply ({} ms)",
                self.database,
                elapsed.as_millis()
            )
        } else {
            format!(
                "database {:?} at {version}{created}{ahead}: applied {} migration(s){} and {} seed(s){} in {} ms",
                self.database,
                self.migrations.len(),
                list(&self.migrations),
                self.seeds.len(),
                list(&self.seeds),
                elapsed.as_millis()
            )
        }
    }
}

fn list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => format!(" ({one})"),
        [first, .., last] => format!(" ({first} .. {last})"),
    }
}

/// The one-word result of `status`, which `--exit-code` turns into the exit code. Several
/// can hold at once; the first in this order wins: diverged, invalid-index, pending, ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every migration and seed applied with matching checksums.
    UpToDate,
    /// Something is pending.
    Pending,
    /// An applied migration was edited or is missing, or one was added out of order.
    Diverged,
    /// The database has migrations newer than this set (a newer release).
    Ahead,
    /// An interrupted no-transaction migration left an INVALID index.
    InvalidIndex,
    /// An applied migration's compatibility floor is above this set ([`super::floor`]).
    Incompatible,
}

impl Verdict {
    /// The exit code of `status --exit-code`.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Self::UpToDate => ExitCode::Ok,
            Self::Pending => ExitCode::Pending,
            Self::Diverged => ExitCode::Diverged,
            Self::Ahead => ExitCode::Ahead,
            Self::InvalidIndex => ExitCode::InvalidIndex,
            Self::Incompatible => ExitCode::Incompatible,
        }
    }
}

/// An INVALID index that a no-transaction migration builds: the trace of an interrupted
/// `CREATE INDEX CONCURRENTLY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidIndex {
    /// The index.
    pub index: String,
    /// The migration that builds it.
    pub migration: String,
    /// The statement that drops it, so the migration can build it again.
    pub repair: String,
}

/// What `status` prints; its JSON form is described by `status.schema.json` in this crate.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The application's database.
    pub database: String,
    /// Whether it exists.
    pub exists: bool,
    /// Highest applied migration version.
    pub applied_version: Option<i64>,
    /// Highest version in the set.
    pub target_version: Option<i64>,
    /// Checksum of the whole set.
    pub migration_set_checksum: String,
    /// The result `--exit-code` reports.
    pub verdict: Verdict,
    /// The first divergence, in words, when the verdict is `diverged`.
    #[serde(skip)]
    pub divergence: Option<String>,
    /// Migrations, in version order (set and database merged).
    pub migrations: Vec<Entry>,
    /// Seeds, in name order.
    pub seeds: Vec<Entry>,
    /// INVALID indexes that no-transaction migrations build.
    pub invalid_indexes: Vec<InvalidIndex>,
    /// The compatibility floor that excludes this set, when one does (verdict
    /// `incompatible`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incompatible: Option<String>,
    /// Where the history came from, when it was adopted or baselined rather than applied.
    pub adoption: Option<AdoptionRecord>,
}

impl StatusReport {
    /// The report of `plan`, the comparison of `set` with `database`, and of the invalid
    /// indexes found.
    pub fn new(
        database: &str,
        exists: bool,
        set: &MigrationSet,
        plan: Plan,
        invalid_indexes: Vec<InvalidIndex>,
    ) -> Self {
        let verdict = if plan.divergence.is_some() {
            Verdict::Diverged
        } else if !invalid_indexes.is_empty() {
            Verdict::InvalidIndex
        } else if !plan.is_empty() {
            Verdict::Pending
        } else if !plan.future.is_empty() {
            Verdict::Ahead
        } else {
            Verdict::UpToDate
        };
        Self {
            database: database.to_string(),
            exists,
            applied_version: plan.applied_version,
            target_version: set.target_version(),
            migration_set_checksum: set.checksum(),
            verdict,
            divergence: plan.divergence.as_ref().map(ToString::to_string),
            migrations: plan.migration_entries,
            seeds: plan.seed_entries,
            invalid_indexes,
            incompatible: None,
            adoption: None,
        }
    }

    /// Records that a compatibility floor excludes this set: the verdict, unless the history
    /// already diverges.
    pub fn excluded(&mut self, e: &super::floor::Incompatible) {
        self.incompatible = Some(e.to_string());
        if self.verdict != Verdict::Diverged {
            self.verdict = Verdict::Incompatible;
        }
    }

    /// One line for `--exit-code`: why the code is what it is.
    pub fn verdict_line(&self) -> String {
        let pending: Vec<&str> = self.pending().collect();
        match self.verdict {
            Verdict::UpToDate => format!(
                "up to date: database {:?} at version {}",
                self.database,
                self.applied_version.map_or("-".into(), |v| v.to_string())
            ),
            Verdict::Pending => {
                let migrations = self
                    .migrations
                    .iter()
                    .filter(|e| e.state == EntryState::Pending)
                    .count();
                format!(
                    "pending: {} ({migrations} migration(s), {} seed(s))",
                    pending.first().copied().unwrap_or_default(),
                    pending.len() - migrations
                )
            }
            Verdict::Diverged => format!(
                "diverged: {}",
                self.divergence
                    .as_deref()
                    .unwrap_or("the history differs from the set")
            ),
            Verdict::Ahead => format!(
                "ahead: the database has {} applied by a newer release (this set ends at version {})",
                self.migrations
                    .iter()
                    .filter(|e| e.state == EntryState::Future)
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.target_version.map_or("-".into(), |v| v.to_string())
            ),
            Verdict::Incompatible => format!(
                "incompatible: {}",
                self.incompatible.as_deref().unwrap_or_default()
            ),
            Verdict::InvalidIndex => {
                let i = &self.invalid_indexes[0];
                format!(
                    "invalid index: {:?} (built by {}) is INVALID, left by an interrupted CREATE INDEX CONCURRENTLY; repair with `{};`",
                    i.index, i.migration, i.repair
                )
            }
        }
    }

    /// The names still pending, migrations then seeds.
    pub fn pending(&self) -> impl Iterator<Item = &str> {
        self.migrations
            .iter()
            .chain(&self.seeds)
            .filter(|e| e.state == EntryState::Pending)
            .map(|e| e.name.as_str())
    }

    /// A human-readable table.
    pub fn text(&self) -> String {
        let mut out = format!(
            "database {:?}{}: applied version {}, target version {}, set checksum {}\n",
            self.database,
            if self.exists {
                ""
            } else {
                " (does not exist yet)"
            },
            self.applied_version.map_or("-".into(), |v| v.to_string()),
            self.target_version.map_or("-".into(), |v| v.to_string()),
            self.migration_set_checksum
        );
        if let Some(a) = &self.adoption {
            out.push_str(&a.text());
            out.push('\n');
        }
        for i in &self.invalid_indexes {
            out.push_str(&format!(
                "invalid index {:?} (built by {}): repair with `{};`\n",
                i.index, i.migration, i.repair
            ));
        }
        for (title, entries) in [("migrations", &self.migrations), ("seeds", &self.seeds)] {
            out.push_str(&format!("{title}:\n"));
            if entries.is_empty() {
                out.push_str("  (none)\n");
            }
            for e in entries {
                let state = match e.cause {
                    Some(c) => format!("{} ({})", e.state.as_str(), c.as_str()),
                    None => e.state.as_str().to_string(),
                };
                out.push_str(&format!(
                    "  {:<8} {:<40} {}\n",
                    state,
                    e.name,
                    e.applied_on.as_deref().unwrap_or("")
                ));
            }
        }
        out
    }
}
