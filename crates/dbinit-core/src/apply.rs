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

use crate::error::{Error, Result};
use crate::history::{TableName, insert_migration_sql, insert_seed_sql};
use crate::migrations::Seed;
use crate::postgres::describe;

const PREFIX: &str = "BEGIN;\n";

/// What failed, for the error message: which file, where, and what the server said.
fn failure(kind: &'static str, name: String, sql: &str, e: &tokio_postgres::Error) -> Error {
    let (sqlstate, message) = match e.as_db_error() {
        Some(db) => (db.code().code().to_string(), db_message(db, sql)),
        None => (String::new(), describe(e)),
    };
    Error::ScriptFailed {
        kind,
        name,
        sqlstate,
        message,
    }
}

/// The server's message with the line of the file it points at, when it points inside it.
fn db_message(db: &DbError, sql: &str) -> String {
    let mut msg = db.message().to_string();
    if let Some(ErrorPosition::Original(pos)) = db.position() {
        // 1-based character offset into the whole message, which starts with PREFIX.
        let offset = (*pos as usize).saturating_sub(1 + PREFIX.len());
        if offset < sql.chars().count() {
            let line = sql.chars().take(offset).filter(|c| *c == '\n').count() + 1;
            msg.push_str(&format!(" (at line {line})"));
        }
    }
    if let Some(d) = db.detail() {
        msg.push_str("; ");
        msg.push_str(d);
    }
    if let Some(h) = db.hint() {
        msg.push_str("; hint: ");
        msg.push_str(h);
    }
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

/// Applies `migrations` in order; stops at the first failure, which is rolled back while the
/// ones before it stay applied. Returns the names applied.
pub async fn migrations(
    client: &Client,
    history: &TableName,
    migrations: &[&refinery::Migration],
    seeds_follow: bool,
) -> Result<Vec<String>> {
    let mut applied = Vec::with_capacity(migrations.len());
    for (i, m) in migrations.iter().enumerate() {
        let sql = m.sql().unwrap_or_default();
        let last = i + 1 == migrations.len() && !seeds_follow;
        let started = std::time::Instant::now();
        in_transaction(client, sql, &insert_migration_sql(history, m), last)
            .await
            .map_err(|e| with_applied(failure("migration", m.to_string(), sql, &e), &applied))?;
        info!(
            migration = %m,
            duration_ms = started.elapsed().as_millis() as u64,
            "applied migration"
        );
        applied.push(m.to_string());
    }
    Ok(applied)
}

/// Applies `seeds` in order, each once per (name, checksum).
pub async fn seeds(client: &Client, table: &TableName, seeds: &[&Seed]) -> Result<Vec<String>> {
    let mut applied = Vec::with_capacity(seeds.len());
    for (i, s) in seeds.iter().enumerate() {
        let last = i + 1 == seeds.len();
        in_transaction(client, &s.sql, &insert_seed_sql(table, s), last)
            .await
            .map_err(|e| with_applied(failure("seed", s.name.clone(), &s.sql, &e), &applied))?;
        info!(seed = %s.name, "applied seed");
        applied.push(s.name.clone());
    }
    Ok(applied)
}

fn with_applied(e: Error, applied: &[String]) -> Error {
    match e {
        Error::ScriptFailed {
            kind,
            name,
            sqlstate,
            mut message,
        } => {
            message.push_str("; it was rolled back");
            if !applied.is_empty() {
                message.push_str(&format!(
                    ", and the {} before it in this run stay applied ({})",
                    applied.len(),
                    applied.join(", ")
                ));
            }
            Error::ScriptFailed {
                kind,
                name,
                sqlstate,
                message,
            }
        }
        other => other,
    }
}
