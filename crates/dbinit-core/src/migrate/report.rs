//! What a command found or did, for the log, the termination message, `status` and the
//! Kubernetes status record.

use std::time::Duration;

use serde::Serialize;

use super::plan::{Entry, EntryState, Plan};
use super::set::{MigrationSet, Seed};
use crate::error::Error;

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
    pub version: Option<i32>,
    /// Migrations and seeds still pending when the run ended (empty until the history was
    /// read).
    pub pending: Vec<String>,
    /// How long this run waited for the lock, when it had to take it.
    pub lock_wait_ms: Option<u64>,
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
    }

    /// Records a migration this run applied (committed).
    pub fn applied_migration(&mut self, m: &refinery::Migration) {
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

    /// What a failure's message adds: the files this run applied before the failing one,
    /// which stay applied.
    pub fn after_failure(&self, cause: &Error) -> String {
        let applied = self.applied_this_run();
        if !matches!(cause, Error::ScriptFailed { .. }) || applied.is_empty() {
            return String::new();
        }
        format!(
            ", and the {} before it in this run stay applied ({})",
            applied.len(),
            applied.join(", ")
        )
    }

    /// One line for the log and the termination message.
    pub fn summary(&self, elapsed: Duration) -> String {
        let version = self
            .version
            .map_or("no migrations".to_string(), |v| format!("version {v}"));
        let created = if self.created { ", created" } else { "" };
        if self.migrations.is_empty() && self.seeds.is_empty() {
            format!(
                "database {:?} is up to date at {version}{created}; nothing to apply ({} ms)",
                self.database,
                elapsed.as_millis()
            )
        } else {
            format!(
                "database {:?} at {version}{created}: applied {} migration(s){} and {} seed(s){} in {} ms",
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

/// What `status` prints.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The application's database.
    pub database: String,
    /// Whether it exists.
    pub exists: bool,
    /// Highest applied migration version.
    pub applied_version: Option<i32>,
    /// Highest version in the set.
    pub target_version: Option<i32>,
    /// Checksum of the whole set.
    pub migration_set_checksum: String,
    /// Migrations, in version order (set and database merged).
    pub migrations: Vec<Entry>,
    /// Seeds, in name order.
    pub seeds: Vec<Entry>,
}

impl StatusReport {
    /// The report of `plan`, the comparison of `set` with `database`.
    pub fn new(database: &str, exists: bool, set: &MigrationSet, plan: Plan) -> Self {
        Self {
            database: database.to_string(),
            exists,
            applied_version: plan.applied_version,
            target_version: set.target_version(),
            migration_set_checksum: set.checksum(),
            migrations: plan.migration_entries,
            seeds: plan.seed_entries,
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
        for (title, entries) in [("migrations", &self.migrations), ("seeds", &self.seeds)] {
            out.push_str(&format!("{title}:\n"));
            if entries.is_empty() {
                out.push_str("  (none)\n");
            }
            for e in entries {
                out.push_str(&format!(
                    "  {:<8} {:<40} {}\n",
                    e.state.as_str(),
                    e.name,
                    e.applied_on.as_deref().unwrap_or("")
                ));
            }
        }
        out
    }
}
