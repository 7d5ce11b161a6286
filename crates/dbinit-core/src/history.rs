//! What the database says was applied, and the plan that follows from it.
//!
//! The migration history table is refinery's (`version int4 PRIMARY KEY, name, applied_on,
//! checksum`), so refinery-based tools read it too; seeds have their own table keyed by
//! (name, checksum). Reading both is one round trip, with no lock and no writes: that is the
//! whole cost of a run on an up-to-date database.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::config::ConfigError;
use crate::migrations::{MigrationSet, Seed};

/// A table name, optionally schema-qualified, restricted to plain identifiers so it can be
/// used in SQL text and in messages without surprises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    parts: Vec<String>,
}

impl TableName {
    /// Parses `table` or `schema.table`; letters, digits and `_`, not starting with a digit.
    pub fn parse(label: &str, raw: &str) -> Result<Self, ConfigError> {
        let parts: Vec<String> = raw.split('.').map(str::to_string).collect();
        let ok = parts.len() <= 2
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.len() <= 63
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !p.starts_with(|c: char| c.is_ascii_digit())
            });
        if !ok {
            return Err(ConfigError(format!(
                "invalid {label}: {raw:?} is not a table name (letters, digits, _; optionally schema.table)"
            )));
        }
        Ok(Self { parts })
    }

    /// The name quoted for SQL: `"schema"."table"`.
    pub fn sql(&self) -> String {
        self.parts
            .iter()
            .map(|p| quote_ident(p))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The name as written, for messages and `to_regclass`.
    pub fn plain(&self) -> String {
        self.parts.join(".")
    }
}

/// Quotes an identifier for SQL: wrapped in `"`, inner quotes doubled. Any string, including
/// ones with `;`, spaces or unicode, becomes exactly one identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a string literal for SQL (standard_conforming_strings, on since PostgreSQL 9.1).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One row of the migration history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// Version.
    pub version: i32,
    /// Name (without the `V1__` prefix).
    pub name: String,
    /// When, as refinery writes it (RFC 3339).
    pub applied_on: String,
    /// refinery checksum.
    pub checksum: u64,
}

/// What the database holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbState {
    /// `false` when the history table does not exist yet (a fresh database).
    pub initialized: bool,
    /// Applied migrations by version.
    pub migrations: Vec<AppliedMigration>,
    /// Applied seeds: (name, checksum).
    pub seeds: Vec<(String, String)>,
}

/// Why the database and the set disagree in a way that must stop the run (exit 6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Divergence {
    /// An applied migration's file was edited after it ran.
    #[error(
        "migration V{version}__{name} was applied with checksum {applied} but the file now has checksum {file}: an applied migration was edited; restore the file and put the change in a new migration"
    )]
    Edited {
        /// Version.
        version: i32,
        /// Name.
        name: String,
        /// Checksum in the database.
        applied: u64,
        /// Checksum of the file.
        file: u64,
    },
    /// An applied migration has no file any more (or was renamed).
    #[error(
        "migration V{version}__{name} is applied in the database but missing from the migration set{renamed}"
    )]
    Missing {
        /// Version.
        version: i32,
        /// Name.
        name: String,
        /// Hint when a file with the same version has another name.
        renamed: String,
    },
    /// A migration older than the newest applied one was never applied.
    #[error(
        "migration V{version}__{name} is not applied but the database is already at version {current}: a migration was added out of order (use a version above {current})"
    )]
    OutOfOrder {
        /// Version.
        version: i32,
        /// Name.
        name: String,
        /// Newest applied version.
        current: i32,
    },
}

/// What a run has to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Indexes into `set.migrations` still to apply, ascending.
    pub migrations: Vec<usize>,
    /// Indexes into `set.seeds` still to apply, in name order.
    pub seeds: Vec<usize>,
    /// Applied migrations newer than anything in the set ("V9__x"): a newer release migrated
    /// while this one still runs, as in a rolling update. Tolerated, as Flyway does.
    pub future: Vec<String>,
}

impl Plan {
    /// Nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty() && self.seeds.is_empty()
    }
}

/// Compares the set with the database: diverged (edited, missing, out-of-order) is an error;
/// otherwise the pending migrations and seeds. Pure: no I/O.
pub fn plan(set: &MigrationSet, db: &DbState) -> Result<Plan, Divergence> {
    let mut p = Plan::default();
    let newest_known = set.target_version();
    for a in &db.migrations {
        match set.migrations.iter().find(|m| m.version() == a.version) {
            None if newest_known.is_none_or(|n| a.version > n) => {
                p.future.push(format!("V{}__{}", a.version, a.name));
            }
            None => {
                return Err(Divergence::Missing {
                    version: a.version,
                    name: a.name.clone(),
                    renamed: String::new(),
                });
            }
            Some(m) if m.name() != a.name => {
                return Err(Divergence::Missing {
                    version: a.version,
                    name: a.name.clone(),
                    renamed: format!(" (a file {m} has its version: was it renamed?)"),
                });
            }
            Some(m) if m.checksum() != a.checksum => {
                return Err(Divergence::Edited {
                    version: a.version,
                    name: a.name.clone(),
                    applied: a.checksum,
                    file: m.checksum(),
                });
            }
            Some(_) => {}
        }
    }
    let current = db.migrations.iter().map(|a| a.version).max();
    for (i, m) in set.migrations.iter().enumerate() {
        if db.migrations.iter().any(|a| a.version == m.version()) {
            continue;
        }
        if let Some(current) = current
            && m.version() < current
            // Versioned (V) migrations must be in order; unversioned (U) ones may be late,
            // as in refinery.
            && m.prefix().to_string() == "V"
        {
            return Err(Divergence::OutOfOrder {
                version: m.version(),
                name: m.name().to_string(),
                current,
            });
        }
        p.migrations.push(i);
    }
    for (i, s) in set.seeds.iter().enumerate() {
        if !db
            .seeds
            .iter()
            .any(|(n, c)| *n == s.name && *c == s.checksum)
        {
            p.seeds.push(i);
        }
    }
    Ok(p)
}

/// Reads the history (and the seed history when the set has seeds) in one round trip.
/// A missing table means a database nobody has migrated yet.
pub async fn read_state(
    client: &Client,
    history: &TableName,
    seeds_table: &TableName,
    with_seeds: bool,
) -> Result<DbState, tokio_postgres::Error> {
    let mut sql = format!(
        "SELECT version, name, applied_on, checksum FROM {} ORDER BY version",
        history.sql()
    );
    if with_seeds {
        sql.push_str(&format!(
            "; SELECT name, checksum FROM {}",
            seeds_table.sql()
        ));
    }
    let messages = match client.simple_query(&sql).await {
        Ok(m) => m,
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
            return read_state_slow(client, history, seeds_table, with_seeds).await;
        }
        Err(e) => return Err(e),
    };
    let mut state = DbState {
        initialized: true,
        ..DbState::default()
    };
    // Rows of the first statement come before its CommandComplete, then the second's.
    let mut statement = 0;
    for msg in messages {
        match msg {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                if statement == 0 {
                    state.migrations.push(AppliedMigration {
                        version: r.get(0).and_then(|v| v.parse().ok()).unwrap_or_default(),
                        name: r.get(1).unwrap_or_default().to_string(),
                        applied_on: r.get(2).unwrap_or_default().to_string(),
                        checksum: r.get(3).and_then(|v| v.parse().ok()).unwrap_or_default(),
                    });
                } else {
                    state.seeds.push((
                        r.get(0).unwrap_or_default().to_string(),
                        r.get(1).unwrap_or_default().to_string(),
                    ));
                }
            }
            tokio_postgres::SimpleQueryMessage::CommandComplete(_) => statement += 1,
            _ => {}
        }
    }
    Ok(state)
}

/// The path for a database where one of the tables is missing: ask which exist, read those.
async fn read_state_slow(
    client: &Client,
    history: &TableName,
    seeds_table: &TableName,
    with_seeds: bool,
) -> Result<DbState, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL",
            &[&history.sql(), &seeds_table.sql()],
        )
        .await?;
    let (has_history, has_seeds): (bool, bool) = (row.get(0), row.get(1));
    let mut state = DbState::default();
    if has_history {
        let full = Box::pin(read_state(
            client,
            history,
            seeds_table,
            with_seeds && has_seeds,
        ))
        .await?;
        state.initialized = true;
        state.migrations = full.migrations;
        state.seeds = full.seeds;
    }
    if !has_history && with_seeds && has_seeds {
        let rows = client
            .simple_query(&format!("SELECT name, checksum FROM {}", seeds_table.sql()))
            .await?;
        for msg in rows {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = msg {
                state.seeds.push((
                    r.get(0).unwrap_or_default().to_string(),
                    r.get(1).unwrap_or_default().to_string(),
                ));
            }
        }
    }
    Ok(state)
}

/// Creates the history and seed tables if missing (run only under the lock).
pub async fn ensure_tables(
    client: &Client,
    history: &TableName,
    seeds_table: &TableName,
) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (version int4 PRIMARY KEY, name varchar(255), applied_on varchar(255), checksum varchar(255));
             CREATE TABLE IF NOT EXISTS {} (name text NOT NULL, checksum text NOT NULL, applied_on timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (name, checksum));",
            history.sql(),
            seeds_table.sql()
        ))
        .await
}

/// The statement that records a migration, in refinery's format (RFC 3339 `applied_on`,
/// decimal checksum), run in the migration's own transaction.
pub fn insert_migration_sql(history: &TableName, m: &refinery::Migration) -> String {
    format!(
        "INSERT INTO {} (version, name, applied_on, checksum) VALUES ({}, {}, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), {})",
        history.sql(),
        m.version(),
        quote_literal(m.name()),
        quote_literal(&m.checksum().to_string())
    )
}

/// The statement that records a seed, run in the seed's own transaction.
pub fn insert_seed_sql(seeds_table: &TableName, s: &Seed) -> String {
    format!(
        "INSERT INTO {} (name, checksum) VALUES ({}, {})",
        seeds_table.sql(),
        quote_literal(&s.name),
        quote_literal(&s.checksum)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::MigrationSet;

    fn set(files: &[(&str, &str)], seeds: &[(&str, &str)]) -> MigrationSet {
        let dir = tempfile::tempdir().expect("tmp");
        for (n, s) in files {
            std::fs::write(dir.path().join(n), s).expect("write");
        }
        std::fs::create_dir(dir.path().join("seeds")).expect("mkdir");
        for (n, s) in seeds {
            std::fs::write(dir.path().join("seeds").join(n), s).expect("write");
        }
        MigrationSet::from_dir(dir.path(), None).expect("valid set")
    }

    fn applied(set: &MigrationSet, upto: usize) -> Vec<AppliedMigration> {
        set.migrations[..upto]
            .iter()
            .map(|m| AppliedMigration {
                version: m.version(),
                name: m.name().to_string(),
                applied_on: String::new(),
                checksum: m.checksum(),
            })
            .collect()
    }

    #[test]
    fn fresh_database_needs_everything() {
        let s = set(
            &[("V1__a.sql", "a"), ("V2__b.sql", "b")],
            &[("001.sql", "s")],
        );
        let p = plan(&s, &DbState::default()).expect("plan");
        assert_eq!(p.migrations, vec![0, 1]);
        assert_eq!(p.seeds, vec![0]);
    }

    #[test]
    fn up_to_date_database_needs_nothing() {
        let s = set(
            &[("V1__a.sql", "a"), ("V2__b.sql", "b")],
            &[("001.sql", "s")],
        );
        let db = DbState {
            initialized: true,
            migrations: applied(&s, 2),
            seeds: vec![("001.sql".into(), s.seeds[0].checksum.clone())],
        };
        assert!(plan(&s, &db).expect("plan").is_empty());
    }

    #[test]
    fn changed_seed_runs_again() {
        let s = set(&[("V1__a.sql", "a")], &[("001.sql", "new")]);
        let db = DbState {
            initialized: true,
            migrations: applied(&s, 1),
            seeds: vec![("001.sql".into(), "old-checksum".into())],
        };
        assert_eq!(plan(&s, &db).expect("plan").seeds, vec![0]);
    }

    #[test]
    fn edited_missing_renamed_and_out_of_order_diverge() {
        let s = set(&[("V1__a.sql", "a"), ("V2__b.sql", "b")], &[]);
        let mut db = DbState {
            initialized: true,
            migrations: applied(&s, 2),
            seeds: vec![],
        };
        db.migrations[1].checksum ^= 1;
        assert!(matches!(
            plan(&s, &db),
            Err(Divergence::Edited { version: 2, .. })
        ));

        let mut db2 = db.clone();
        db2.migrations.insert(
            1,
            AppliedMigration {
                version: 1,
                name: "a".into(),
                applied_on: String::new(),
                checksum: 0,
            },
        );
        assert!(plan(&s, &db2).is_err());
        let s3 = set(&[("V1__a.sql", "a"), ("V4__d.sql", "d")], &[]);
        let mut db2 = DbState {
            initialized: true,
            migrations: applied(&s3, 1),
            seeds: vec![],
        };
        db2.migrations.push(AppliedMigration {
            version: 3,
            name: "gone".into(),
            applied_on: String::new(),
            checksum: 1,
        });
        let e = plan(&s3, &db2).expect_err("missing");
        assert!(matches!(e, Divergence::Missing { version: 3, .. }));
        assert!(e.to_string().contains("V3__gone"));

        let mut db3 = db.clone();
        db3.migrations[1].name = "old_name".into();
        assert!(
            plan(&s, &db3)
                .expect_err("renamed")
                .to_string()
                .contains("renamed")
        );

        let db4 = DbState {
            initialized: true,
            migrations: applied(&s, 2)[1..].to_vec(),
            seeds: vec![],
        };
        let e = plan(&s, &db4).expect_err("out of order");
        assert!(
            matches!(
                e,
                Divergence::OutOfOrder {
                    version: 1,
                    current: 2,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn future_migrations_are_tolerated() {
        let s = set(&[("V1__a.sql", "a")], &[]);
        let mut db = DbState {
            initialized: true,
            migrations: applied(&s, 1),
            seeds: vec![],
        };
        db.migrations.push(AppliedMigration {
            version: 9,
            name: "newer_release".into(),
            applied_on: String::new(),
            checksum: 1,
        });
        let p = plan(&s, &db).expect("future is fine");
        assert!(p.is_empty());
        assert_eq!(p.future, vec!["V9__newer_release".to_string()]);
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(
            quote_ident("a\"b; DROP TABLE x"),
            "\"a\"\"b; DROP TABLE x\""
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
        let t = TableName::parse("X", "app.schema_history").expect("ok");
        assert_eq!(t.sql(), "\"app\".\"schema_history\"");
        for bad in ["", "a.b.c", "x;y", "1abc", "a b"] {
            assert!(TableName::parse("X", bad).is_err(), "{bad}");
        }
    }
}
