//! Who holds the locks a migration is waiting for: the line an operator needs to find the
//! long transaction (or the idle-in-transaction session) that a migration keeps retrying
//! behind.

use tokio_postgres::{Client, SimpleQueryMessage};

/// The sessions blocking backend `pid`, described ("pid 123 (app: report-job, user: app,
/// idle in transaction for 14s)", comma-separated), or `None` when nothing blocks it or the
/// question could not be asked.
///
/// Asked on the lock connection, inside the lock's transaction: within a savepoint that is
/// rolled back, so the catalog locks the query takes do not stay for the rest of the run, and
/// after `pg_stat_clear_snapshot()`, since statistics are otherwise frozen for the length of
/// a transaction. Query texts are left out: they may hold the application's data.
pub async fn blockers(lock: &Client, pid: i32) -> Option<String> {
    let sql = format!(
        "SAVEPOINT dbinit_probe;
         SELECT pg_stat_clear_snapshot();
         SELECT a.pid::text, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
                coalesce(a.state, ''),
                coalesce(extract(epoch FROM clock_timestamp() - a.xact_start)::bigint::text, '?')
         FROM pg_stat_activity a WHERE a.pid = ANY (pg_blocking_pids({pid})) ORDER BY a.pid;
         ROLLBACK TO SAVEPOINT dbinit_probe"
    );
    let rows = match lock.simple_query(&sql).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::debug!(error = %crate::postgres::describe(&e), "could not look up blocking sessions");
            let _ = lock
                .batch_execute("ROLLBACK TO SAVEPOINT dbinit_probe")
                .await;
            return None;
        }
    };
    let found: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) if r.len() == 5 => Some(format!(
                "pid {} (app: {}, user: {}, {} for {}s)",
                r.get(0).unwrap_or("?"),
                r.get(1).filter(|a| !a.is_empty()).unwrap_or("-"),
                r.get(2).unwrap_or("?"),
                r.get(3)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("unknown state"),
                r.get(4).unwrap_or("?"),
            )),
            _ => None,
        })
        .collect();
    (!found.is_empty()).then(|| found.join(", "))
}
