//! The child's database sessions, found by the `application_name` dbinit gave them. A child
//! that is gone may leave a backend running its last statement (PostgreSQL notices a dead
//! client only when it next talks to it, or within `client_connection_check_interval` on
//! 14+). The lock is released only when those sessions are gone: waited for, then
//! terminated.
//!
//! Read on the lock's connection, inside its transaction: `pg_stat_clear_snapshot()` first,
//! as activity statistics are otherwise frozen for the transaction.

use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::{Client, SimpleQueryMessage};
use tracing::{info, warn};

use crate::postgres::sql::quote_literal;

/// How often to look.
const POLL: Duration = Duration::from_millis(100);

/// The longest wait for terminated sessions to go.
const AFTER_TERMINATE: Duration = Duration::from_secs(10);

async fn pids(client: &Client, app_name: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT pg_stat_clear_snapshot(); SELECT pid::text FROM pg_stat_activity WHERE application_name = {} AND pid <> pg_backend_pid()",
        quote_literal(app_name)
    );
    Ok(client
        .simple_query(&sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .filter(|p| !p.is_empty())
        .collect())
}

/// Waits until no session named `app_name` is left: up to `grace`, then terminates them
/// and waits up to ten seconds more. Returns how many had to be terminated. A failure to
/// look is logged and ends the wait: the lock's connection is then gone, and the lock with it.
pub async fn wait_gone(client: &Client, app_name: &str, grace: Duration) -> usize {
    let started = Instant::now();
    let mut terminated = 0;
    loop {
        let left = match pids(client, app_name).await {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %crate::postgres::PgError(e), "could not look for the migration command's sessions");
                return terminated;
            }
        };
        if left.is_empty() {
            if started.elapsed() > POLL {
                info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "the migration command's sessions are gone"
                );
            }
            return terminated;
        }
        if terminated == 0 && started.elapsed() >= grace {
            warn!(sessions = %left.join(","), "the migration command's sessions outlived it; terminating them");
            let list = left.join(",");
            // In a savepoint: a refusal (another role's session) must not abort the lock's
            // transaction.
            let sql = format!(
                "SAVEPOINT dbinit_terminate; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ({list}) AND application_name = {}; RELEASE SAVEPOINT dbinit_terminate",
                quote_literal(app_name)
            );
            if let Err(e) = client.simple_query(&sql).await {
                warn!(error = %crate::postgres::PgError(e), "could not terminate them");
                let _ = client
                    .batch_execute("ROLLBACK TO SAVEPOINT dbinit_terminate")
                    .await;
            }
            terminated = left.len();
        }
        if started.elapsed() >= grace + AFTER_TERMINATE {
            warn!(sessions = %left.join(","), "the migration command's sessions are still there; releasing the lock anyway");
            return terminated;
        }
        tokio::time::sleep(POLL).await;
    }
}
