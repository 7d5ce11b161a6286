//! Applying migrations and seeds, each in its own transaction together with its history row.
//!
//! A file goes to the server in three messages: `BEGIN` with the session's timeouts
//! ([`super::session`]), the file, and `INSERT <history row>; COMMIT`. The COMMIT is sent
//! only by a live client after the file succeeded, so a runner killed mid-file never commits:
//! its backend finds the connection gone and rolls back. (Sending all of it as one message
//! would let the server finish and commit on its own after the client died.)
//!
//! A file that could not get its locks in time (or hit a deadlock) was rolled back whole, so
//! it is tried again after a backoff; a lost connection ends the pass with
//! [`Error::Disconnected`] and the run reconnects ([`super::migrate`]).

use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::Client;
use tokio_postgres::error::{DbError, ErrorPosition};
use tracing::{info, warn};

use super::blockers::blockers;
use super::error::{Error, Result};
use super::header::{self, NO_TRANSACTION_MARKER};
use super::history::{insert_migration_sql, insert_seed_sql};
use super::report::RunReport;
use super::session::{Fault, RESET_SQL, SessionSettings, fault, pg_error};
use super::set::{Migration, ScriptKind, Seed};
use super::sqlsplit;
use crate::postgres::describe;
use crate::postgres::sql::{TableName, quote_ident, quote_literal};
use crate::retry::{Backoff, Pace, PollError, Step, poll};

/// The connections files are applied with.
pub struct Conn<'a> {
    /// The work connection: files and history rows.
    pub work: &'a Client,
    /// Its backend pid, to ask who blocks it.
    pub work_pid: i32,
    /// The lock connection, inside the lock's transaction: a fence (when it is gone, so is
    /// the lock) and where blockers are looked up.
    pub lock: &'a Client,
    /// Timeouts.
    pub settings: SessionSettings,
    /// How long a file may keep retrying behind other sessions' locks.
    pub retry_for: Duration,
    /// Told once per file that has to wait behind other sessions' locks, with who holds them.
    pub on_wait: &'a (dyn Fn(&str, Option<&str>) + Sync),
}

/// Pause between attempts at a file that could not get its locks: queued application
/// queries run in the gap.
const BUSY_RETRY: Backoff = Backoff {
    initial: Duration::from_millis(500),
    max: Duration::from_secs(5),
};

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
            "; this statement cannot run inside a transaction: make `{NO_TRANSACTION_MARKER}` the first line of the file to run it outside one (see docs/migrations.md)"
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

/// Runs `sql` and then `record` in one transaction opened with `begin`; `last` decides whether
/// the commit waits for the WAL flush. Earlier commits may be asynchronous: the final
/// synchronous commit flushes the WAL up to and including them, and a crash before it loses a
/// prefix-consistent tail that the next run (or this one, reconnected) applies again.
async fn in_transaction(
    client: &Client,
    begin: &str,
    sql: &str,
    record: &str,
    last: bool,
) -> std::result::Result<(), tokio_postgres::Error> {
    let sync = if last {
        ""
    } else {
        "SET LOCAL synchronous_commit = off;\n"
    };
    let result = async {
        client.batch_execute(begin).await?;
        client.batch_execute(sql).await?;
        client
            .batch_execute(&format!("{sync}{record};\nCOMMIT"))
            .await
    }
    .await;
    if result.is_err() {
        // Leave the session usable (and the failed transaction visibly gone) before reporting.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result
}

/// The lock lives in the lock connection's transaction: once that connection is gone, so is
/// the lock, and another runner may be migrating. Stop before the next file (the history's
/// primary key would stop a second apply of a transactional file anyway).
fn fence(c: &Conn<'_>, kind: ScriptKind, name: &str) -> Result<()> {
    if c.lock.is_closed() {
        return Err(Error::Disconnected {
            action: format!("hold the migration lock before {kind} {name}"),
            source: "the lock's connection closed".into(),
        });
    }
    Ok(())
}

/// Runs `attempt` while, once it has taken half its lock timeout, asking who blocks it.
async fn probed<T>(
    c: &Conn<'_>,
    lock_timeout: Duration,
    attempt: impl std::future::Future<Output = T>,
) -> (T, Option<String>) {
    let after = if lock_timeout.is_zero() {
        Duration::from_secs(5)
    } else {
        lock_timeout / 2
    };
    let attempt = std::pin::pin!(attempt);
    let mut attempt = attempt;
    tokio::select! {
        biased;
        r = &mut attempt => (r, None),
        () = tokio::time::sleep(after) => {
            let b = blockers(c.lock, c.work_pid).await;
            if let (true, Some(b)) = (lock_timeout.is_zero(), &b) {
                info!(blocked_by = %b, "the migration is waiting for locks held by other sessions");
            }
            (attempt.await, b)
        }
    }
}

/// One file in a transaction, tried again while other sessions' locks keep it from
/// finishing, for up to `c.retry_for`. Every attempt is rolled back whole before the next.
async fn transactional(
    c: &Conn<'_>,
    kind: ScriptKind,
    name: &str,
    sql: &str,
    record: &str,
    last: bool,
    lock_timeout: Option<Duration>,
) -> Result<()> {
    fence(c, kind, name)?;
    let begin = c.settings.begin_sql(lock_timeout);
    let timeout = lock_timeout.unwrap_or(c.settings.lock_timeout);
    let started = Instant::now();
    let told = std::cell::Cell::new(false);
    let last_code = std::cell::RefCell::new(String::new());
    let step = |_| {
        let (begin, told, last_code) = (&begin, &told, &last_code);
        async move {
            let (r, blocked_by) =
                probed(c, timeout, in_transaction(c.work, begin, sql, record, last)).await;
            let Err(e) = r else {
                return Step::Done(());
            };
            match fault(&e) {
                Fault::Lost => Step::Fail(pg_error(&format!("apply {kind} {name}"), e)),
                Fault::Script => Step::Fail(failure(
                    kind,
                    name.to_string(),
                    sql,
                    (0, 1),
                    &e,
                    rolled_back,
                )),
                Fault::Busy => {
                    let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
                    if !told.replace(true) {
                        (c.on_wait)(name, blocked_by.as_deref());
                    }
                    last_code.replace(code.clone());
                    Step::Wait((code, blocked_by, describe(&e)))
                }
            }
        }
    };
    let pace = Pace {
        deadline: started + c.retry_for,
        backoff: BUSY_RETRY,
        report_every: Duration::ZERO,
    };
    let r = poll(pace, step, |p| {
        let (code, blocked_by, why) = p.awaited;
        warn!(
            %kind,
            file = name,
            attempt = p.attempt,
            sqlstate = %code,
            blocked_by = blocked_by.as_deref().unwrap_or("(not seen)"),
            retry_in_ms = p.retry_in.as_millis() as u64,
            reason = %why,
            "the file could not get its locks in time and was rolled back; retrying"
        );
    })
    .await;
    match r {
        Ok(()) => Ok(()),
        Err(PollError::Failed(e)) => Err(e),
        Err(PollError::Deadline {
            last: (code, blockers, _),
            attempts,
            waited,
        }) => Err(Error::TableLockTimeout {
            kind,
            name: name.to_string(),
            sqlstate: code,
            waited,
            attempts,
            blockers,
        }),
    }
}

/// Applies `migrations` in order, recording each in `report` as it commits; stops at the
/// first failure, which is rolled back while the ones before it stay applied. Files marked
/// `-- dbinit:no-transaction` run statement by statement outside a transaction.
pub async fn migrations(
    c: &Conn<'_>,
    history: &TableName,
    migrations: &[&Migration],
    seeds_follow: bool,
    repair_invalid_indexes: bool,
    report: &mut RunReport,
) -> Result<()> {
    for (i, m) in migrations.iter().enumerate() {
        let sql = m.sql();
        let header = header::header(sql).unwrap_or_default();
        let last = i + 1 == migrations.len() && !seeds_follow;
        let started = std::time::Instant::now();
        if m.no_transaction() {
            without_transaction(c, history, m, header.lock_timeout, repair_invalid_indexes).await?;
        } else {
            transactional(
                c,
                ScriptKind::Migration,
                &m.to_string(),
                sql,
                &super::floor::with_record(history, m, insert_migration_sql(history, m)),
                last,
                header.lock_timeout,
            )
            .await?;
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
    c: &Conn<'_>,
    table: &TableName,
    seeds: &[&Seed],
    report: &mut RunReport,
) -> Result<()> {
    for (i, s) in seeds.iter().enumerate() {
        let last = i + 1 == seeds.len();
        transactional(
            c,
            ScriptKind::Seed,
            &s.name,
            &s.sql,
            &insert_seed_sql(table, s),
            last,
            None,
        )
        .await?;
        info!(seed = %s.name, "applied seed");
        report.applied_seed(s);
    }
    Ok(())
}

/// Runs a marked file outside a transaction: each statement on its own (a multi-statement
/// query would be an implicit transaction), then its history row. Such files cannot be rolled
/// back, so they should be idempotent (`IF NOT EXISTS`).
async fn without_transaction(
    c: &Conn<'_>,
    history: &TableName,
    m: &Migration,
    lock_timeout: Option<Duration>,
    repair: bool,
) -> Result<()> {
    fence(c, ScriptKind::Migration, &m.to_string())?;
    let client = c.work;
    let sql = m.sql();
    let statements = sqlsplit::split(sql);
    check_invalid_indexes(client, m, &statements, repair).await?;
    client
        .batch_execute(&c.settings.outside_transaction_sql(lock_timeout))
        .await
        .map_err(|e| pg_error(&format!("prepare the session for {m}"), e))?;
    for (k, st) in statements.iter().enumerate() {
        if let Err(e) = client.batch_execute(st.text).await {
            if fault(&e) == Fault::Lost {
                // Rerun from the start after reconnecting, under the INVALID-index rules.
                return Err(pg_error(
                    &format!("run statement {} of {m} (outside a transaction)", k + 1),
                    e,
                ));
            }
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
        .batch_execute(&format!(
            "{RESET_SQL}; {}",
            insert_migration_sql(history, m)
        ))
        .await
        .map_err(|e| pg_error(&format!("record migration {m}"), e))
}

/// An interrupted `CREATE INDEX CONCURRENTLY` leaves an INVALID index, which `IF NOT EXISTS`
/// would then silently keep. Before re-running such a file, find invalid indexes it builds:
/// stop with the repair statement, or (with `--repair-invalid-indexes`) drop them first.
async fn check_invalid_indexes(
    client: &Client,
    m: &Migration,
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
    // Simple protocol: no named prepared statement for a transaction-mode pooler to mix up.
    let list = names
        .iter()
        .map(|n| quote_literal(n))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = client
        .simple_query(&format!(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE NOT i.indisvalid AND c.relname IN ({list}) AND pg_table_is_visible(c.oid)"
        ))
        .await
        .map_err(|e| pg_error("look for invalid indexes", e))?;
    let invalid: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    for name in invalid {
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
            .map_err(|e| pg_error(&format!("drop invalid index {name:?}"), e))?;
    }
    Ok(())
}
