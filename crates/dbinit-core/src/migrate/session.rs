//! The session a migration runs in on a live database: the timeouts it runs under (a file's
//! own override comes from its [`super::header`]), and which failures belong to the session
//! (a lost connection, a lock not granted in time) rather than to the file's SQL.
//!
//! Settings are applied with `SET LOCAL` at the start of each transaction, not once per
//! connection: through a transaction-mode pooler a session-level `SET` would stay behind on
//! a server connection the application gets next, and would be missing from the one the
//! migration gets.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use super::error::Error;
use crate::postgres::{self, PgError};

/// Default `lock_timeout` of a migration: long enough for a busy table's short transactions
/// to finish, short enough that the application's queries queued behind the waiting DDL
/// barely notice.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(3);

/// The timeouts migrations and seeds run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// `lock_timeout` of transactional files (zero: wait as long as it takes).
    pub lock_timeout: Duration,
    /// `statement_timeout` of every file (zero: none, whatever the role or database says).
    pub statement_timeout: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            statement_timeout: Duration::ZERO,
        }
    }
}

/// Turns off the timeouts that would end a transaction left idle between our messages
/// (`transaction_timeout` exists from PostgreSQL 17 on).
pub const NO_IDLE_TIMEOUTS: &str = "SET LOCAL idle_in_transaction_session_timeout = 0;\n\
     DO $$BEGIN IF current_setting('server_version_num')::int >= 170000 THEN SET LOCAL transaction_timeout = 0; END IF; END$$";

/// TCP keepalives for as long as our transaction is open: a runner whose node is lost sends
/// no FIN, and the server would otherwise keep its session, locks and transaction (and the
/// migration lock) for the kernel's default two hours. With these it ends the session about
/// 10 s after the runner went silent (5 s idle, then 5 probes a second apart) and rolls back;
/// a backend mid-statement notices through `client_connection_check_interval`, which the work
/// connection sets. Ignored on a Unix socket.
pub const DEAD_CLIENT_KEEPALIVES: &str = "SET LOCAL tcp_keepalives_idle = 5;\n\
     SET LOCAL tcp_keepalives_interval = 1;\nSET LOCAL tcp_keepalives_count = 5";

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

impl SessionSettings {
    /// Opens a file's transaction with its timeouts; `lock_timeout` is the file's own when
    /// its header sets one.
    pub fn begin_sql(&self, lock_timeout: Option<Duration>) -> String {
        format!(
            "BEGIN;\nSET LOCAL lock_timeout = '{}ms';\nSET LOCAL statement_timeout = '{}ms';\n{DEAD_CLIENT_KEEPALIVES};\n{NO_IDLE_TIMEOUTS}",
            ms(lock_timeout.unwrap_or(self.lock_timeout)),
            ms(self.statement_timeout)
        )
    }

    /// Session settings for a file that runs outside a transaction: no lock timeout unless
    /// its header sets one (`CREATE INDEX CONCURRENTLY` waits for older transactions by
    /// design, blocking nobody, and a timeout would leave an INVALID index).
    pub fn outside_transaction_sql(&self, lock_timeout: Option<Duration>) -> String {
        format!(
            "SET lock_timeout = '{}ms'; SET statement_timeout = '{}ms'",
            ms(lock_timeout.unwrap_or(Duration::ZERO)),
            ms(self.statement_timeout)
        )
    }
}

/// Undoes [`SessionSettings::outside_transaction_sql`].
pub const RESET_SQL: &str = "RESET lock_timeout; RESET statement_timeout";

/// Whose failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The connection went away (server restart, failover, terminated session, EOF): the
    /// server rolled the open transaction back; reconnect and carry on.
    Lost,
    /// A lock was not granted in time, or a deadlock or serialization failure: the
    /// transaction was rolled back; the same file may simply be tried again.
    Busy,
    /// The file's SQL failed.
    Script,
}

/// Classifies an error from a statement on an established connection.
pub fn fault(e: &tokio_postgres::Error) -> Fault {
    if e.is_closed() {
        return Fault::Lost;
    }
    let Some(code) = e.code() else {
        // Not from the server: the socket failed or closed mid-message.
        return Fault::Lost;
    };
    let c = code.code();
    if c.starts_with("08")
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(code)
        // 57P05 idle_session_timeout (PostgreSQL 14+).
        || c == "57P05"
    {
        Fault::Lost
    } else if [
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::T_R_SERIALIZATION_FAILURE,
    ]
    .contains(code)
    {
        Fault::Busy
    } else {
        Fault::Script
    }
}

/// The error for a failed statement outside a file: [`Error::Disconnected`] when the
/// connection went away (the run reconnects), else [`Error::Postgres`].
pub fn pg_error(action: &str, e: tokio_postgres::Error) -> Error {
    let source = PgError(e);
    if fault(&source.0) == Fault::Lost {
        Error::Disconnected {
            action: action.to_string(),
            source: Box::new(source),
        }
    } else {
        Error::Postgres(postgres::Error::Statement {
            action: action.to_string(),
            source,
        })
    }
}

/// The one value `sql` returns (first row, first column), parsed, or `T::default()` when
/// there is none: the server facts a run reads about its own session (backend pid, version).
pub async fn scalar<T: std::str::FromStr + Default>(
    client: &tokio_postgres::Client,
    action: &str,
    sql: &str,
) -> Result<T, Error> {
    let rows = client
        .simple_query(sql)
        .await
        .map_err(|e| pg_error(action, e))?;
    Ok(rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0)?.parse().ok(),
            _ => None,
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_sets_local_timeouts() {
        let s = SessionSettings::default();
        let b = s.begin_sql(None);
        assert!(b.starts_with("BEGIN;"));
        assert!(b.contains("SET LOCAL lock_timeout = '3000ms'"));
        assert!(b.contains("SET LOCAL statement_timeout = '0ms'"));
        let b = s.begin_sql(Some(Duration::from_millis(250)));
        assert!(b.contains("lock_timeout = '250ms'"));
        let o = s.outside_transaction_sql(None);
        assert!(o.contains("lock_timeout = '0ms'"), "{o}");
    }
}
