//! The one comparison of a migration set with the database: what is applied, pending,
//! edited, missing or from a newer release. `run` applies what it says is pending, `wait`
//! waits until nothing is, `status` prints it. Pure: no I/O.

use serde::Serialize;

use super::drift::{DriftCause, whitespace_drift};
use super::history::{AppliedMigration, DbState};
use super::set::{Migration, MigrationSet, Prefix, Seed};

fn cause_words(c: DriftCause) -> &'static str {
    match c {
        DriftCause::LineEndings => "its line endings",
        DriftCause::TrailingNewline => "a newline at the end of the file",
        DriftCause::Bom => "a UTF-8 byte order mark",
    }
}

/// Why the database and the set disagree in a way that must stop the run (exit 6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Divergence {
    /// An applied migration's (or seed's) file differs only in whitespace: line endings, a
    /// final newline, a byte order mark. Still a divergence (CRLF in a string literal is
    /// data), but named as what it is, with the fix.
    #[error("{file} differs from the applied one only in {}: {what}; fix: {fix}", cause_words(*.cause))]
    Whitespace {
        /// `migration V3__name` or `seed 001_name.sql`.
        file: String,
        /// What differs.
        cause: DriftCause,
        /// In words.
        what: String,
        /// How to fix it.
        fix: &'static str,
    },
    /// An applied migration's file was edited after it ran.
    #[error(
        "migration {label} was applied with checksum {applied} but the file now has checksum {file}: an applied migration was edited; restore the file and put the change in a new migration"
    )]
    Edited {
        /// What messages call it: `V2__name`, or the user's file name.
        label: String,
        /// Version.
        version: i64,
        /// Name.
        name: String,
        /// Checksum in the database.
        applied: u64,
        /// Checksum of the file.
        file: u64,
    },
    /// An applied migration has no file any more (or was renamed).
    #[error(
        "migration {label} is applied in the database but missing from the migration set{renamed}"
    )]
    Missing {
        /// What messages call it: `V3__name` or `version 3 (name)`.
        label: String,
        /// Version.
        version: i64,
        /// Name.
        name: String,
        /// Hint when a file with the same version has another name.
        renamed: String,
    },
    /// A migration older than the newest applied one was never applied.
    #[error(
        "migration {label} is not applied but the database is already at version {current}: a migration was added out of order (use a version above {current})"
    )]
    OutOfOrder {
        /// What messages call it: `V2__name`, or the user's file name.
        label: String,
        /// Version.
        version: i64,
        /// Name.
        name: String,
        /// Newest applied version.
        current: i64,
    },
}

/// Where one migration or seed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// Applied with the file's checksum.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but the file now has another checksum or name.
    Edited,
    /// Applied, but no file has its version.
    Missing,
    /// Applied by a newer release: its version is above every file's.
    Future,
}

impl EntryState {
    /// The word `status` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Pending => "pending",
            Self::Edited => "edited",
            Self::Missing => "missing",
            Self::Future => "future",
        }
    }
}

/// One migration or seed, as the comparison sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// `V1__create_users` or a seed file name.
    pub name: String,
    /// Where it stands.
    pub state: EntryState,
    /// When it was applied, if it was and the history says.
    pub applied_on: Option<String>,
    /// For an edited entry whose difference is only whitespace: which.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<DriftCause>,
}

/// The comparison: every entry, and what a run has to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Indexes into `set.migrations` still to apply, ascending.
    pub migrations: Vec<usize>,
    /// Indexes into `set.seeds` still to apply, in name order.
    pub seeds: Vec<usize>,
    /// Applied migrations newer than anything in the set ("V9__x"): a newer release migrated
    /// while this one still runs, as in a rolling update. Tolerated, as Flyway does.
    pub future: Vec<String>,
    /// Migrations of the set and the database, merged, in version order.
    pub migration_entries: Vec<Entry>,
    /// Seeds of the set, in name order.
    pub seed_entries: Vec<Entry>,
    /// The first disagreement that must stop a run (exit 6), in the order a run checks.
    pub divergence: Option<Divergence>,
    /// The highest applied version, future ones included.
    pub applied_version: Option<i64>,
}

impl Plan {
    /// Nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty() && self.seeds.is_empty()
    }

    /// The plan, or the divergence that forbids acting on it.
    pub fn check(self) -> Result<Self, Divergence> {
        match self.divergence {
            Some(d) => Err(d),
            None => Ok(self),
        }
    }

    /// What is pending, by name (`V2__b`, `001.sql`), migrations first.
    pub fn pending(&self, set: &MigrationSet) -> Vec<String> {
        self.migrations
            .iter()
            .map(|&i| set.migrations[i].to_string())
            .chain(self.seeds.iter().map(|&i| set.seeds[i].name.clone()))
            .collect()
    }

    /// What is pending, for a log line or an error: seeds marked as such.
    pub fn describe_pending(&self, set: &MigrationSet) -> String {
        self.migrations
            .iter()
            .map(|&i| set.migrations[i].to_string())
            .chain(
                self.seeds
                    .iter()
                    .map(|&i| format!("seed {}", set.seeds[i].name)),
            )
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why an applied migration and its file disagree, if they do.
fn disagreement(set: &MigrationSet, a: &AppliedMigration, m: &Migration) -> Option<Divergence> {
    if m.name() != a.name {
        Some(Divergence::Missing {
            label: set.row_label(a.version, &a.name),
            version: a.version,
            name: a.name.clone(),
            renamed: format!(" (a file {m} has its version: was it renamed?)"),
        })
    } else if m.checksum() != a.checksum {
        let same = |variant: &str| m.checksum_with(variant) == a.checksum;
        Some(match whitespace_drift(m.sql(), same) {
            Some(d) => Divergence::Whitespace {
                file: format!("migration {m}"),
                cause: d.cause,
                what: d.what,
                fix: d.fix,
            },
            None => Divergence::Edited {
                label: m.to_string(),
                version: a.version,
                name: a.name.clone(),
                applied: a.checksum,
                file: m.checksum(),
            },
        })
    } else {
        None
    }
}

/// Compares the set with the database.
pub fn plan(set: &MigrationSet, db: &DbState) -> Plan {
    let mut p = Plan::default();
    let newest_known = set.target_version();
    let mut entries: Vec<(i64, Entry)> = Vec::new();
    // Divergence is checked in the database's version order, then out-of-order files.
    for a in &db.migrations {
        let (state, problem) = match set.migrations.iter().find(|m| m.version() == a.version) {
            None if newest_known.is_none_or(|n| a.version > n) => {
                p.future.push(set.row_label(a.version, &a.name));
                (EntryState::Future, None)
            }
            None => (
                EntryState::Missing,
                Some(Divergence::Missing {
                    label: set.row_label(a.version, &a.name),
                    version: a.version,
                    name: a.name.clone(),
                    renamed: String::new(),
                }),
            ),
            Some(m) => match disagreement(set, a, m) {
                Some(d) => (EntryState::Edited, Some(d)),
                None => (EntryState::Applied, None),
            },
        };
        let problem_cause = match &problem {
            Some(Divergence::Whitespace { cause, .. }) => Some(*cause),
            _ => None,
        };
        if p.divergence.is_none() {
            p.divergence = problem;
        }
        let name = match set.migrations.iter().find(|m| m.version() == a.version) {
            Some(m) => m.to_string(),
            None => set.row_label(a.version, &a.name),
        };
        entries.push((
            a.version,
            Entry {
                name,
                state,
                applied_on: Some(a.applied_on.clone()),
                cause: problem_cause,
            },
        ));
    }
    p.applied_version = db.migrations.iter().map(|a| a.version).max();
    for (i, m) in set.migrations.iter().enumerate() {
        if db.migrations.iter().any(|a| a.version == m.version()) {
            continue;
        }
        if let Some(current) = p.applied_version
            && m.version() < current
            // Versioned (V) migrations must be in order; unversioned (U) ones may be late,
            // as in refinery.
            && m.prefix() == Prefix::Versioned
            && p.divergence.is_none()
        {
            p.divergence = Some(Divergence::OutOfOrder {
                label: m.to_string(),
                version: m.version(),
                name: m.name().to_string(),
                current,
            });
        }
        p.migrations.push(i);
        entries.push((
            m.version(),
            Entry {
                name: m.to_string(),
                state: EntryState::Pending,
                applied_on: None,
                cause: None,
            },
        ));
    }
    entries.sort_by_key(|(v, _)| *v);
    p.migration_entries = entries.into_iter().map(|(_, e)| e).collect();
    for (i, s) in set.seeds.iter().enumerate() {
        let applied = db
            .seeds
            .iter()
            .any(|(n, c)| *n == s.name && *c == s.checksum);
        // A seed applied before with only other whitespace would run again (seeds are keyed
        // by content) and could duplicate data: that is a divergence, not a pending seed.
        let drift = (!applied)
            .then(|| {
                whitespace_drift(&s.sql, |v| {
                    let h = Seed::new(&s.name, v).checksum;
                    db.seeds.iter().any(|(n, c)| *n == s.name && *c == h)
                })
            })
            .flatten();
        let cause = drift.as_ref().map(|d| d.cause);
        match drift {
            Some(d) if p.divergence.is_none() => {
                p.divergence = Some(Divergence::Whitespace {
                    file: format!("seed {}", s.name),
                    cause: d.cause,
                    what: d.what,
                    fix: d.fix,
                });
            }
            Some(_) => {}
            None if !applied => p.seeds.push(i),
            None => {}
        }
        p.seed_entries.push(Entry {
            name: s.name.clone(),
            state: if applied {
                EntryState::Applied
            } else if cause.is_some() {
                EntryState::Edited
            } else {
                EntryState::Pending
            },
            applied_on: None,
            cause,
        });
    }
    p
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
