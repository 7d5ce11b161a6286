//! The migration lock: a PostgreSQL advisory lock, transaction-level, held in a transaction
//! kept open on a dedicated connection for the length of the run.
//!
//! Taken with `pg_try_advisory_xact_lock` plus backoff, never a blocking call: a waiting
//! statement holds a snapshot, and `CREATE INDEX CONCURRENTLY` run by the holder waits for
//! every older snapshot to go away — a deadlock Flyway users hit (flyway#1654). The open
//! transaction holds no snapshot between statements and no table locks, so it delays nobody.
//!
//! Why a transaction and not the session: through a transaction-mode pooler (PgBouncer
//! `pool_mode=transaction`) a session-level lock stays behind on a server connection that
//! the pooler then hands to other clients — for whom `pg_try_advisory_lock` succeeds, as the
//! lock is re-entrant in its session. A server connection with an open transaction is never
//! handed to anyone else. Session and transaction advisory locks on one key exclude each
//! other, so older dbinit versions and this one still take turns. The lock ends with the
//! transaction: at release, or when the session dies, so a killed runner cannot leave it stuck.

use std::hash::Hasher;
use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::Client;
use tracing::{debug, info, warn};

use super::error::{Error, Result};
use super::session::{DEAD_CLIENT_KEEPALIVES, NO_IDLE_TIMEOUTS, pg_error};
use super::settings::MigrateSettings;
use crate::postgres::PgError;
use crate::postgres::connect::connect_target;
use crate::postgres::sql::TableName;
use crate::ready::{self, Context};
use crate::retry::{Backoff, Pace, PollError, Step, Tick, poll};
use crate::setting::ConfigError;

/// Told when the run starts waiting behind someone else, with who: the migration lock held
/// by another runner, or table locks a migration needs. Once per wait, for Kubernetes Events.
pub type OnWait<'a> = &'a (dyn Fn(&str) + Sync);

/// The lock key for a database and history table: stable across versions and processes
/// (SipHash-1-3 with fixed keys), so every dbinit that migrates this target contends for it.
pub fn lock_key(database: &str, history: &TableName) -> i64 {
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x6462_696e_6974, 0x6c6f_636b);
    h.write(database.as_bytes());
    h.write_u8(0);
    h.write(history.plain().as_bytes());
    h.finish() as i64
}

/// How long to wait between tries while another runner holds the lock.
const POLL: Backoff = Backoff {
    initial: Duration::from_millis(25),
    max: Duration::from_millis(500),
};

/// How often to say who holds the lock while waiting.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// One try: opens a transaction and takes the lock in it, keeping the transaction open when
/// the lock was granted and closing it when not. READ COMMITTED whatever the role or database
/// sets as default: under REPEATABLE READ the transaction would keep the snapshot of its
/// first statement, and a `CREATE INDEX CONCURRENTLY` run meanwhile (by dbinit or by a
/// migration command under this lock) would wait for it forever.
async fn try_lock(client: &Client, key: i64) -> Result<bool> {
    let sql = format!(
        "BEGIN ISOLATION LEVEL READ COMMITTED;\n{NO_IDLE_TIMEOUTS};\n{DEAD_CLIENT_KEEPALIVES};\nSELECT pg_try_advisory_xact_lock({key})"
    );
    let got = match client.simple_query(&sql).await {
        Ok(rows) => rows.iter().any(
            |m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("t")),
        ),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(pg_error("try the migration lock", e));
        }
    };
    if !got {
        client
            .batch_execute("ROLLBACK")
            .await
            .map_err(|e| pg_error("try the migration lock", e))?;
    }
    Ok(got)
}

/// Who holds the lock: "pid 123 (dbinit/0.1.0 pod-a) from 10.0.0.5", or `None` if it was
/// released in the meantime.
pub async fn holder(client: &Client, key: i64) -> Option<String> {
    let (classid, objid) = ((key as u64 >> 32) as u32, key as u64 as u32);
    let sql = format!(
        "SELECT a.pid::text, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket')
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.classid = {classid} AND l.objid = {objid}
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
         LIMIT 1"
    );
    let rows = client.simple_query(&sql).await.ok()?;
    rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => Some(format!(
            "pid {} ({}) from {}",
            r.get(0).unwrap_or("?"),
            r.get(1).unwrap_or(""),
            r.get(2).unwrap_or("?")
        )),
        _ => None,
    })
}

/// Takes the lock on `client`, waiting up to `timeout`; returns how long it waited. The
/// connection is then inside the lock's transaction until [`release`]: use it for nothing else
/// but reads that take no locks.
/// While waiting it logs, every few seconds, which session holds it.
pub async fn acquire(
    client: &Client,
    key: i64,
    timeout: Duration,
    on_wait: OnWait<'_>,
) -> Result<Duration> {
    let started = Instant::now();
    let pace = Pace {
        deadline: started + timeout,
        backoff: POLL,
        report_every: REPORT_EVERY,
    };
    let step = move |tick: Tick| async move {
        match try_lock(client, key).await {
            Ok(true) => Step::Done(()),
            // The holder is looked up only for a progress line that will be printed.
            Ok(false) if tick.reporting => Step::Wait(holder(client, key).await),
            Ok(false) => Step::Wait(None),
            Err(e) => Step::Fail(e),
        }
    };
    let mut told = false;
    let r = poll(pace, step, |p| {
        if !std::mem::replace(&mut told, true) {
            on_wait(&format!(
                "the migration lock, held by {}",
                p.awaited.as_deref().unwrap_or("another runner")
            ));
        }
        info!(
            holder = p.awaited.as_deref().unwrap_or("(released)"),
            waited_ms = p.waited.as_millis() as u64,
            "migration lock is held by another runner; waiting"
        );
    })
    .await;
    match r {
        Ok(()) => Ok(started.elapsed()),
        Err(PollError::Failed(e)) => Err(e),
        Err(PollError::Deadline { waited, .. }) => Err(Error::LockTimeout {
            waited,
            holder: holder(client, key).await,
        }),
    }
}

/// Releases the lock by ending its transaction. When that fails the connection is gone, and
/// the lock went with it; logged, since there is nothing left to release.
pub async fn release(client: &Client) {
    match client.batch_execute("ROLLBACK").await {
        Ok(()) => debug!("released the migration lock"),
        Err(e) => warn!(
            error = %PgError(e),
            "could not end the migration lock's transaction; the lock ended with its session"
        ),
    }
}

/// For the by-hand commands (`baseline`, `adopt`, `repair`): waits for PostgreSQL, takes the
/// migration lock and runs `work` on a second connection, so the work's COMMITs are its own and
/// not the lock's transaction; releases the lock whatever `work` returns. `absent` words the
/// configuration error for a target database that does not exist.
pub async fn exclusive<T>(
    ctx: &Context<'_>,
    m: &MigrateSettings,
    absent: &str,
    work: impl AsyncFnOnce(&Client) -> Result<T>,
) -> Result<T> {
    let db = &ctx.postgres.database;
    let ready = ready::wait_for_dependencies(ctx).await?;
    if !ready.on_target {
        return Err(ConfigError(format!(
            "POSTGRES_DB (--postgres-db): database {db:?} does not exist; {absent}"
        ))
        .into());
    }
    let lock_conn = ready.client;
    acquire(
        &lock_conn,
        lock_key(db, &m.history),
        m.lock_timeout,
        &|_| {},
    )
    .await?;
    let r = match connect_target(ctx.postgres, &ctx.app, ctx.wait.connect_timeout).await {
        Ok(client) => work(&client).await,
        Err(e) => Err(e.into()),
    };
    release(&lock_conn).await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED: i64 = -8_199_902_542_787_735_951;

    #[test]
    fn key_is_stable_and_distinguishes_targets() {
        let h = TableName::parse("t", "refinery_schema_history").expect("ok");
        let h2 = TableName::parse("t", "other_history").expect("ok");
        assert_eq!(lock_key("agentic_deals", &h), lock_key("agentic_deals", &h));
        assert_ne!(lock_key("agentic_deals", &h), lock_key("other", &h));
        assert_ne!(
            lock_key("agentic_deals", &h),
            lock_key("agentic_deals", &h2)
        );
        // Pinned: a change would let old and new dbinit versions migrate at the same time.
        assert_eq!(lock_key("agentic_deals", &h), PINNED);
    }
}
