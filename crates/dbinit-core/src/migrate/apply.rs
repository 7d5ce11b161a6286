//! Applying migrations and seeds, each in its own transaction together with its history row.
//!
//! A file goes to the server in two messages: `BEGIN; <file>` and then
//! `INSERT <history row>; COMMIT`. The COMMIT is sent only by a live client after the file
//! succeeded, so a runner killed mid-file never commits: its backend finds the connection
//! gone and rolls back. (Sending all of it as one message would let the server finish and
//! commit on its own after the client died.)

use tokio_postgres::Client;
use tokio_postgres::error::{DbError, ErrorPosition};
use tracing::info;

use super::history::{insert_migration_sql, insert_seed_sql};
use super::report::RunReport;
use super::set::{ScriptKind, Seed};
use super::sqlsplit::{self, NO_TRANSACTION_MARKER};
use crate::error::{Error, Result};
use crate::postgres::sql::{TableName, quote_ident};
use crate::postgres::{PgError, describe};

const PREFIX: &str = "BEGIN;\n";

/// What failed, for the error message: which file, where, and what the server said;
/// `aftermath` wraps that with what the failure left behind (rolled back, or not).
fn failure(
    kind: ScriptKind,
    name: String,
    sql: &str,
    at: (usize, usize),
    e: &tokio_postgres::Error,
    aftermath: impl FnOnce(String) -> String,
) -> Error {
    let (sqlstate, mut message) = match e.as_db_error() {
        Some(db) => (Some(db.code().code().to_string()), db_message(db, sql, at)),
        None => (None, describe(e)),
    };
    if sqlstate.as_deref() == Some("25001") {
        // "CREATE INDEX CONCURRENTLY cannot run inside a transaction block" and friends.
        message.push_str(&format!(
            "; this statement cannot run inside a transaction: make `{NO_TRANSACTION_MARKER}` the first line of the file to run it outside one (see README)"
        ));
    }
    Error::ScriptFailed {
        kind,
        name,
        sqlstate,
        message: aftermath(message),
    }
}

fn rolled_back(message: String) -> String {
    format!("{message}; it was rolled back")
}

/// The server's message with the line of the file it points at, when it points inside it.
/// `at` is (length of what was sent before `sql`, line of the file where `sql` starts).
fn db_message(db: &DbError, sql: &str, at: (usize, usize)) -> String {
    let mut msg = db.message().to_string();
    if let Some(ErrorPosition::Original(pos)) = db.position() {
        // 1-based character offset into the whole message.
        let offset = (*pos as usize).saturating_sub(1 + at.0);
        if offset < sql.chars().count() {
            let line = at.1 + sql.chars().take(offset).filter(|c| *c == '\n').count();
            msg.push_str(&format!(" (at line {line})"));
        }
    }
    crate::postgres::push_detail_and_hint(&mut msg, db);
    msg
}

/// Runs `sql` and then `record` in one transaction; `last` decides whether the commit waits
/// for the WAL flush. Earlier commits may be asynchronous: the final synchronous commit
/// flushes the WAL up to and including them, and a crash before it loses a prefix-consistent
/// tail that the next run applies again.
async fn in_transaction(
    client: &Client,
    sql: &str,
    record: &str,
    last: bool,
) -> std::result::Result<(), tokio_postgres::Error> {
    let first = client.batch_execute(&format!("{PREFIX}{sql}")).await;
    let second = match first {
        Ok(()) => {
            let sync = if last {
                ""
            } else {
                "SET LOCAL synchronous_commit = off;\n"
            };
            client
                .batch_execute(&format!("{sync}{record};\nCOMMIT"))
                .await
        }
        Err(e) => Err(e),
    };
    if second.is_err() {
        // Leave the session usable (and the failed transaction visibly gone) before reporting.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    second
}

/// Applies `migrations` in order, recording each in `report` as it commits; stops at the
/// first failure, which is rolled back while the ones before it stay applied. Files marked
/// `-- dbinit:no-transaction` run statement by statement outside a transaction.
pub async fn migrations(
    client: &Client,
    history: &TableName,
    migrations: &[&refinery::Migration],
    seeds_follow: bool,
    repair_invalid_indexes: bool,
    report: &mut RunReport,
) -> Result<()> {
    for (i, m) in migrations.iter().enumerate() {
        let sql = m.sql().unwrap_or_default();
        let last = i + 1 == migrations.len() && !seeds_follow;
        let started = std::time::Instant::now();
        if sqlsplit::is_no_transaction(sql) {
            without_transaction(client, history, m, repair_invalid_indexes).await?;
        } else {
            in_transaction(client, sql, &insert_migration_sql(history, m), last)
                .await
                .map_err(|e| {
                    failure(
                        ScriptKind::Migration,
                        m.to_string(),
                        sql,
                        (PREFIX.len(), 1),
                        &e,
                        rolled_back,
                    )
                })?;
        }
        info!(
            migration = %m,
            duration_ms = started.elapsed().as_millis() as u64,
            "applied migration"
        );
        report.applied_migration(m);
    }
    Ok(())
}

/// Applies `seeds` in order, each once per (name, checksum), recording each in `report`.
pub async fn seeds(
    client: &Client,
    table: &TableName,
    seeds: &[&Seed],
    report: &mut RunReport,
) -> Result<()> {
    for (i, s) in seeds.iter().enumerate() {
        let last = i + 1 == seeds.len();
        in_transaction(client, &s.sql, &insert_seed_sql(table, s), last)
            .await
            .map_err(|e| {
                failure(
                    ScriptKind::Seed,
                    s.name.clone(),
                    &s.sql,
                    (PREFIX.len(), 1),
                    &e,
                    rolled_back,
                )
            })?;
        info!(seed = %s.name, "applied seed");
        report.applied_seed(s);
    }
    Ok(())
}

/// Runs a marked file outside a transaction: each statement on its own (a multi-statement
/// query would be an implicit transaction), then its history row. Such files cannot be rolled
/// back, so they should be idempotent (`IF NOT EXISTS`).
async fn without_transaction(
    client: &Client,
    history: &TableName,
    m: &refinery::Migration,
    repair: bool,
) -> Result<()> {
    let sql = m.sql().unwrap_or_default();
    let statements = sqlsplit::split(sql);
    check_invalid_indexes(client, m, &statements, repair).await?;
    for (k, st) in statements.iter().enumerate() {
        if let Err(e) = client.batch_execute(st.text).await {
            return Err(failure(
                ScriptKind::Migration,
                m.to_string(),
                st.text,
                (0, st.line),
                &e,
                |message| {
                    format!(
                        "statement {} of {} (line {}) failed: {message}; this file runs outside a transaction, so the {k} statement(s) before it stay applied and it will run again from the start: it must be idempotent",
                        k + 1,
                        statements.len(),
                        st.line
                    )
                },
            ));
        }
    }
    client
        .batch_execute(&insert_migration_sql(history, m))
        .await
        .map_err(|e| Error::Postgres {
            action: format!("record migration {m}"),
            source: PgError(e),
        })
}

/// An interrupted `CREATE INDEX CONCURRENTLY` leaves an INVALID index, which `IF NOT EXISTS`
/// would then silently keep. Before re-running such a file, find invalid indexes it builds:
/// stop with the repair statement, or (with `--repair-invalid-indexes`) drop them first.
async fn check_invalid_indexes(
    client: &Client,
    m: &refinery::Migration,
    statements: &[sqlsplit::Statement<'_>],
    repair: bool,
) -> Result<()> {
    let names: Vec<String> = statements
        .iter()
        .filter_map(|s| sqlsplit::concurrent_index_name(s.text))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE NOT i.indisvalid AND c.relname = ANY($1) AND pg_table_is_visible(c.oid)",
            &[&names],
        )
        .await
        .map_err(|e| Error::Postgres {
            action: "look for invalid indexes".into(),
            source: PgError(e),
        })?;
    for row in rows {
        let name: String = row.get(0);
        let drop = format!("DROP INDEX CONCURRENTLY IF EXISTS {}", quote_ident(&name));
        if !repair {
            return Err(Error::ScriptFailed {
                kind: ScriptKind::Migration,
                name: m.to_string(),
                sqlstate: None,
                message: format!(
                    "index {name:?} is INVALID, left by an interrupted CREATE INDEX CONCURRENTLY; repair it with `{drop};` and run again, or run with --repair-invalid-indexes to let dbinit drop and rebuild it"
                ),
            });
        }
        tracing::warn!(index = %name, "dropping an INVALID index left by an interrupted build");
        client
            .batch_execute(&drop)
            .await
            .map_err(|e| Error::Postgres {
                action: format!("drop invalid index {name:?}"),
                source: PgError(e),
            })?;
    }
    Ok(())
}
