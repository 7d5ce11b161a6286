//! The three flows over a migration set: [`run`] (create, lock, migrate, seed), [`wait`]
//! (block until another runner has applied everything) and [`status`] (report, change
//! nothing). All three read the history once and judge it with the one comparison,
//! [`plan::plan`].

use std::time::Duration;

use tokio::time::Instant;

use tokio_postgres::Client;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::postgres::connect::connect_target;
use crate::postgres::database;
use crate::postgres::sql::TableName;
use crate::ready::{self, Context, PgReady};
use crate::retry::Backoff;

pub mod adopt;
pub mod adopt_settings;
pub mod apply;
pub mod audit;
pub mod baseline;
pub mod blockers;
pub mod drift;
pub mod history;
pub mod lock;
mod observe;
pub mod plan;
pub mod preview;
pub mod repair;
pub mod report;
pub mod session;
pub mod set;
pub mod sqlsplit;
pub mod tools;

pub use observe::{status, wait};

use history::DbState;
use plan::Plan;
use report::RunReport;
use session::{SessionSettings, pg_error};
use set::MigrationSet;

/// Checked migration options.
#[derive(Debug, Clone)]
pub struct MigrateSettings {
    /// The migrations and seeds.
    pub set: MigrationSet,
    /// History table.
    pub history: TableName,
    /// Seed history table.
    pub seeds_table: TableName,
    /// How long to wait for the migration lock held by another runner.
    pub lock_timeout: Duration,
    /// The timeouts migrations run under (`lock_timeout`, `statement_timeout`).
    pub session: SessionSettings,
    /// Owner for a created database.
    pub db_owner: Option<String>,
    /// Drop invalid indexes before re-running a no-transaction file.
    pub repair_invalid_indexes: bool,
    /// What to do with a database that has no dbinit history but is not empty.
    pub adopt: adopt::AdoptSettings,
}

/// Reads the history (and seed history) and compares it with the set.
pub(crate) async fn read_plan(client: &Client, m: &MigrateSettings) -> Result<(DbState, Plan)> {
    let state = history::read_state(client, &m.history, &m.seeds_table, !m.set.seeds.is_empty())
        .await
        .map_err(|e| pg_error(&format!("read the history table {}", m.history.plain()), e))?;
    let plan = plan::plan(&m.set, &state);
    Ok((state, plan))
}

/// Waits for the dependencies, then creates, migrates and seeds ([`migrate`]). A failure
/// carries what the run did before it ([`Error::Run`]).
pub async fn run(ctx: &Context<'_>, m: &MigrateSettings) -> Result<RunReport> {
    let ready = ready::wait_for_dependencies(ctx).await?;
    let mut report = RunReport::new(&ctx.settings.postgres.database);
    match migrate(ctx, m, ready, &mut report).await {
        Ok(()) => Ok(report),
        Err(e) => Err(e.with_report(report)),
    }
}

/// The longest pause between reconnect attempts after a lost connection.
const RECONNECT_MAX: Duration = Duration::from_millis(500);

/// Told when the run starts waiting behind someone else, with who: the migration lock held
/// by another runner, or table locks a migration needs. Once per wait, for Kubernetes Events.
pub type OnWait<'a> = &'a (dyn Fn(&str) + Sync);

/// From a ready connection: creates the database if missing and applies whatever is pending
/// under the advisory lock. On an up-to-date database this is one read: no lock, no writes.
/// Progress goes into `report` as it happens, so a caller that stops this future (a signal,
/// a lost Lease) still knows what was applied, the version reached and what is pending.
pub async fn migrate(
    ctx: &Context<'_>,
    m: &MigrateSettings,
    ready: PgReady,
    report: &mut RunReport,
) -> Result<()> {
    migrate_observed(ctx, m, ready, report, &|_| {}).await
}

/// [`migrate`], telling `on_wait` when it starts waiting behind someone.
///
/// A lost connection (server restart, failover, terminated session) does not fail the run:
/// it reconnects with backoff for up to the wait timeout from the loss, takes the lock again,
/// reads the history again and goes on. The file in flight was rolled back by the server and
/// is applied once, after the reconnect.
pub async fn migrate_observed(
    ctx: &Context<'_>,
    m: &MigrateSettings,
    ready: PgReady,
    report: &mut RunReport,
    on_wait: OnWait<'_>,
) -> Result<()> {
    let s = ctx.settings;
    let mut conn = if ready.on_target {
        ready.client
    } else {
        report.created = database::ensure_database(
            &ready.client,
            &s.postgres,
            m.db_owner.as_deref(),
            ctx.deadline,
        )
        .await?;
        drop(ready.client);
        connect_target(&s.postgres, &ctx.app, s.wait.connect_timeout).await?
    };
    // When the connection was lost, and how many files were applied by then: the deadline
    // to come back restarts only after progress, so a server that keeps failing ends the run.
    let mut lost: Option<(Instant, usize)> = None;
    loop {
        let (action, source) = match pass(ctx, m, &conn, report, on_wait).await {
            Err(Error::Disconnected { action, source }) => (action, source),
            other => return other,
        };
        drop(conn);
        let done = report.migrations.len() + report.seeds.len();
        let since = match lost {
            Some((t, n)) if n == done => t,
            _ => Instant::now(),
        };
        lost = Some((since, done));
        if since.elapsed() >= s.wait.timeout {
            return Err(Error::Disconnected { action, source });
        }
        warn!(during = %action, error = %source, "lost the connection to PostgreSQL; reconnecting");
        let started = Instant::now();
        // The server was there a moment ago: look often, so the run goes on within half a
        // second of its return (a refused connection costs nothing).
        let backoff = Backoff {
            initial: s.wait.backoff.initial.min(RECONNECT_MAX),
            max: s.wait.backoff.max.min(RECONNECT_MAX),
        };
        let ready = match ready::wait_for_postgres(
            &s.postgres,
            s.wait.connect_timeout,
            backoff,
            since + s.wait.timeout,
            &ctx.app,
        )
        .await
        {
            Ok(r) => r,
            // Name what the loss interrupted, not only that the server stayed away.
            Err(e @ Error::DependencyTimeout { .. }) => {
                return Err(Error::Disconnected {
                    action,
                    source: Box::new(e),
                });
            }
            Err(e) => return Err(e),
        };
        if !ready.on_target {
            return Err(Error::Unusable {
                dependency: crate::postgres::connect::target_label(&s.postgres),
                cause: "the database disappeared while migrating".into(),
            });
        }
        info!(
            after_ms = started.elapsed().as_millis() as u64,
            since_loss_ms = since.elapsed().as_millis() as u64,
            "reconnected to PostgreSQL; taking the migration lock again"
        );
        conn = ready.client;
    }
}

/// One pass on a connection: read the history; if something is pending, take the lock on
/// this connection, apply, release.
async fn pass(
    ctx: &Context<'_>,
    m: &MigrateSettings,
    conn: &Client,
    report: &mut RunReport,
    on_wait: OnWait<'_>,
) -> Result<()> {
    let s = ctx.settings;
    let (state, plan) = read_plan(conn, m).await?;
    let plan = plan.check()?;
    // No dbinit history but tables: adopt as the settings say, or refuse (exit 9).
    let adoption = match adopt::decide(conn, m, &state, &s.postgres.database).await {
        // The tables may be a concurrent runner's first migrations, committed (with their
        // history rows) between the history read and the look at the tables: read again.
        Err(e @ Error::Unadopted(_)) => {
            if read_plan(conn, m).await?.0.migrations.is_empty() {
                return Err(e);
            }
            info!("another runner started migrating this database meanwhile");
            None
        }
        r => r?,
    };
    report.planned(&m.set, &plan);
    if !plan.future.is_empty() {
        warn!(future = ?plan.future, "the database has migrations newer than this set (a newer release?); continuing");
    }
    if plan.is_empty() {
        return Ok(());
    }
    info!(
        pending = %plan.describe_pending(&m.set),
        "pending work; taking the migration lock"
    );

    // This connection becomes the dedicated lock connection: idle, no snapshot held.
    let key = lock::lock_key(&s.postgres.database, &m.history);
    let waited = lock::acquire(conn, key, m.lock_timeout, on_wait).await?;
    report.lock_wait_ms = Some(waited.as_millis() as u64);
    if waited > Duration::from_millis(1) {
        info!(
            waited_ms = waited.as_millis() as u64,
            "acquired the migration lock after waiting"
        );
    } else {
        info!("acquired the migration lock");
    }
    let result = migrate_locked(ctx, m, conn, report, adoption.as_ref(), on_wait).await;
    lock::release(conn).await;
    result
}

/// Under the lock: re-read (another runner may have finished meanwhile), then apply.
async fn migrate_locked(
    ctx: &Context<'_>,
    m: &MigrateSettings,
    lock: &Client,
    report: &mut RunReport,
    adoption: Option<&adopt::Adoption>,
    on_wait: OnWait<'_>,
) -> Result<()> {
    let s = ctx.settings;
    let work = connect_target(&s.postgres, &ctx.app, s.wait.connect_timeout)
        .await
        .map_err(|e| match e {
            // Reachable a moment ago: a refusal now is the server going away.
            Error::Unusable { dependency, cause } => Error::Disconnected {
                action: format!("open the work connection to {dependency}"),
                source: cause,
            },
            e => e,
        })?;
    // PostgreSQL 14+: notice within a second that a killed runner's connection is gone, even
    // in the middle of a long statement, and roll back. Older servers lack it; harmless.
    let _ = work
        .batch_execute("SET client_connection_check_interval = 1000")
        .await;
    let work_pid = backend_pid(&work).await?;
    history::ensure_tables(&work, &m.history, &m.seeds_table)
        .await
        .map_err(|e| {
            pg_error(
                &format!(
                    "create the history tables {} and {}",
                    m.history.plain(),
                    m.seeds_table.plain()
                ),
                e,
            )
        })?;
    if let Some(a) = adoption {
        baseline::record(&work, m, a).await?;
    }
    let (_, plan) = read_plan(&work, m).await?;
    let plan = plan.check()?;
    report.planned(&m.set, &plan);
    if plan.is_empty() {
        info!("another runner applied everything while we waited; nothing left to do");
        return Ok(());
    }
    let migrations: Vec<_> = plan
        .migrations
        .iter()
        .map(|&i| &m.set.migrations[i])
        .collect();
    let seeds: Vec<_> = plan.seeds.iter().map(|&i| &m.set.seeds[i]).collect();
    let on_table_wait = |file: &str, holder: Option<&str>| {
        on_wait(&format!(
            "{file} waits for table locks held by {}",
            holder.unwrap_or("another session")
        ));
    };
    let conn = apply::Conn {
        work: &work,
        work_pid,
        lock,
        settings: m.session,
        retry_for: s.wait.timeout,
        on_wait: &on_table_wait,
    };
    apply::migrations(
        &conn,
        &m.history,
        &migrations,
        !seeds.is_empty(),
        m.repair_invalid_indexes,
        report,
    )
    .await?;
    apply::seeds(&conn, &m.seeds_table, &seeds, report).await
}

/// The server process of `client`'s session, for asking who blocks it.
async fn backend_pid(client: &Client) -> Result<i32> {
    let rows = client
        .simple_query("SELECT pg_backend_pid()")
        .await
        .map_err(|e| pg_error("read the work connection's backend pid", e))?;
    Ok(rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0)?.parse().ok(),
            _ => None,
        })
        .unwrap_or_default())
}
