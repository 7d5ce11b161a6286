//! The session a migration runs in on a live database: the timeouts it runs under, a file's
//! own override in its header, and which failures belong to the session (a lost connection,
//! a lock not granted in time) rather than to the file's SQL.
//!
//! Settings are applied with `SET LOCAL` at the start of each transaction, not once per
//! connection: through a transaction-mode pooler a session-level `SET` would stay behind on
//! a server connection the application gets next, and would be missing from the one the
//! migration gets.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use super::sqlsplit::NO_TRANSACTION_MARKER;
use crate::config::parse_duration;
use crate::error::Error;
use crate::postgres::PgError;

/// The header line that sets one file's lock timeout.
pub const LOCK_TIMEOUT_DIRECTIVE: &str = "-- dbinit:lock-timeout=";

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

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

impl SessionSettings {
    /// Opens a file's transaction with its timeouts; `lock_timeout` is the file's own when
    /// its header sets one.
    pub fn begin_sql(&self, lock_timeout: Option<Duration>) -> String {
        format!(
            "BEGIN;\nSET LOCAL lock_timeout = '{}ms';\nSET LOCAL statement_timeout = '{}ms';\n{NO_IDLE_TIMEOUTS}",
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

/// What a file's leading comment lines ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    /// `-- dbinit:no-transaction`.
    pub no_transaction: bool,
    /// `-- dbinit:lock-timeout=DURATION`.
    pub lock_timeout: Option<Duration>,
}

/// Reads the directives (`-- dbinit:name[=value]`) among the file's leading blank and
/// comment lines. An unknown directive or a bad value is an error saying what is accepted,
/// so a typo does not silently change how a migration runs.
pub fn header(sql: &str) -> Result<Header, String> {
    let mut h = Header::default();
    for line in sql.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with("--") {
            break;
        }
        let Some(rest) = line.strip_prefix("-- dbinit:") else {
            continue;
        };
        if rest.starts_with(char::is_whitespace) {
            continue; // prose: "-- dbinit: this file ..."
        }
        if line == NO_TRANSACTION_MARKER {
            h.no_transaction = true;
        } else if let Some(v) = line.strip_prefix(LOCK_TIMEOUT_DIRECTIVE) {
            h.lock_timeout = Some(parse_duration(v).ok_or_else(|| {
                format!(
                    "`{line}`: the lock timeout is not a duration (e.g. 500ms, 30s, 2m; 0 waits)"
                )
            })?);
        } else {
            return Err(format!(
                "`{line}` is not a dbinit directive (known: `{NO_TRANSACTION_MARKER}`, `{LOCK_TIMEOUT_DIRECTIVE}DURATION`)"
            ));
        }
    }
    Ok(h)
}

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

/// The library error for a failed statement outside a file: [`Error::Disconnected`] when the
/// connection went away (the run reconnects), else [`Error::Postgres`].
pub fn pg_error(action: &str, e: tokio_postgres::Error) -> Error {
    let source = PgError(e);
    if fault(&source.0) == Fault::Lost {
        Error::Disconnected {
            action: action.to_string(),
            source: Box::new(source),
        }
    } else {
        Error::Postgres {
            action: action.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_reads_directives_and_rejects_typos() {
        assert_eq!(header("CREATE TABLE a ();").expect("ok"), Header::default());
        let h = header("\n-- why this file exists\n-- dbinit:lock-timeout=30s\n-- dbinit:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);")
            .expect("ok");
        assert!(h.no_transaction);
        assert_eq!(h.lock_timeout, Some(Duration::from_secs(30)));
        // Directives after the first statement are plain comments.
        let h = header("SELECT 1;\n-- dbinit:no-transaction").expect("ok");
        assert!(!h.no_transaction);
        assert!(header("-- dbinit: prose about dbinit\nSELECT 1").is_ok());
        let e = header("-- dbinit:lock-timeout=soon\nSELECT 1").expect_err("bad");
        assert!(e.contains("lock-timeout=soon") && e.contains("30s"), "{e}");
        let e = header("-- dbinit:no-transactions\nSELECT 1").expect_err("typo");
        assert!(e.contains("not a dbinit directive"), "{e}");
    }

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
