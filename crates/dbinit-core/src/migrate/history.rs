//! What the database says was applied: reading and creating the history tables, and the
//! statements that record an applied file.
//!
//! The migration history table is refinery's (`version int4 PRIMARY KEY, name, applied_on,
//! checksum`), so refinery-based tools read it too; seeds have their own table keyed by
//! (name, checksum). Reading both is one round trip, with no lock and no writes: that is the
//! whole cost of a run on an up-to-date database.
//!
//! Versions are 64-bit, but the `version` column stays `int4` while every version fits, so an
//! older dbinit (or refinery without `int8-versions`) rolled back to still reads it. The first
//! version above 2147483647 converts it to `bigint` ([`widen_sql`]) in the transaction that
//! records that version, under the migration lock. Readers accept both.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::set::{Migration, Seed};
use crate::postgres::sql::{TableName, quote_literal};

/// One row of the migration history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// Version.
    pub version: i64,
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
    // Simple protocol: no named prepared statement for a transaction-mode pooler to mix up.
    let rows = client
        .simple_query(&format!(
            "SELECT to_regclass({}) IS NOT NULL, to_regclass({}) IS NOT NULL",
            quote_literal(&history.sql()),
            quote_literal(&seeds_table.sql())
        ))
        .await?;
    let (has_history, has_seeds) = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((r.get(0) == Some("t"), r.get(1) == Some("t")))
            }
            _ => None,
        })
        .unwrap_or_default();
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

/// Creates the seed table alone if missing (run only under the lock): tool mode records seeds
/// but leaves migrations to the tool.
pub async fn ensure_seeds_table(
    client: &Client,
    seeds_table: &TableName,
) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (name text NOT NULL, checksum text NOT NULL, applied_on timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (name, checksum));",
            seeds_table.sql()
        ))
        .await
}

/// Whether `version` needs a `bigint` column.
pub fn is_wide(version: i64) -> bool {
    i32::try_from(version).is_err()
}

/// The statement that converts `table`'s `version` column from `int4` to `bigint` when it is
/// still `int4` (and does nothing otherwise), for a version that does not fit: run in the
/// transaction that records that version, so the conversion and the row commit together.
pub fn widen_sql(table: &TableName) -> String {
    format!(
        "DO $dbinit$ BEGIN IF (SELECT atttypid FROM pg_attribute WHERE attrelid = to_regclass({}) AND attname = 'version' AND NOT attisdropped) = 'int4'::regtype THEN ALTER TABLE {} ALTER COLUMN version TYPE bigint; END IF; END $dbinit$",
        quote_literal(&table.sql()),
        table.sql()
    )
}

/// The statement that records a migration, in refinery's format (RFC 3339 `applied_on`,
/// decimal checksum), run in the migration's own transaction; preceded by [`widen_sql`]
/// when the version needs it.
pub fn insert_migration_sql(history: &TableName, m: &Migration) -> String {
    let widen = if is_wide(m.version()) {
        format!("{};\n", widen_sql(history))
    } else {
        String::new()
    };
    format!(
        "{widen}INSERT INTO {} (version, name, applied_on, checksum) VALUES ({}, {}, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), {})",
        history.sql(),
        m.version(),
        quote_literal(m.name()),
        quote_literal(&m.checksum().to_string())
    )
}

/// The statement that makes an applied migration's row match its file again (name and
/// checksum), for `dbinit repair`.
pub fn update_migration_sql(history: &TableName, m: &Migration) -> String {
    format!(
        "UPDATE {} SET checksum = {}, name = {} WHERE version = {}",
        history.sql(),
        quote_literal(&m.checksum().to_string()),
        quote_literal(m.name()),
        m.version()
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

    #[test]
    fn only_a_wide_version_widens_the_column_in_its_own_statement() {
        let h = TableName::parse("t", "app.refinery_schema_history").expect("ok");
        let small = Migration::dbinit("V2147483647__top", "SELECT 1").expect("ok");
        let sql = insert_migration_sql(&h, &small);
        assert!(
            sql.starts_with("INSERT INTO \"app\".\"refinery_schema_history\""),
            "{sql}"
        );
        let big = Migration::dbinit("V2147483648__big", "SELECT 1").expect("ok");
        let sql = insert_migration_sql(&h, &big);
        assert!(
            sql.starts_with("DO $dbinit$ BEGIN IF (SELECT atttypid FROM pg_attribute WHERE attrelid = to_regclass('\"app\".\"refinery_schema_history\"')"),
            "{sql}"
        );
        assert!(
            sql.contains(
                "ALTER TABLE \"app\".\"refinery_schema_history\" ALTER COLUMN version TYPE bigint"
            ),
            "{sql}"
        );
        assert!(sql.contains("VALUES (2147483648, 'big'"), "{sql}");
        assert!(!is_wide(-2_147_483_648) && is_wide(-2_147_483_649));
    }
}
