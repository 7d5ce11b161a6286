//! `run`: create the database if missing, then apply what is pending under the migration
//! lock, reconnecting when the connection is lost. On an up-to-date database a run is one
//! read of the history: no lock, no writes.

use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::Client;
use tracing::{info, warn};

use super::adopt::{self, baseline};
use super::error::{Error, Result};
use super::lock::{self, OnWait};
use super::observe::read_plan;
use super::report::RunReport;
use super::session::{pg_error, scalar};
use super::settings::MigrateSettings;
use super::{apply, history, review};
use crate::dependency;
use crate::postgres::connect::{connect_target, target_label};
use crate::postgres::database;
use crate::ready::{self, Context, PgReady};
use crate::retry::Backoff;

/// Waits for the dependencies, then creates, migrates and seeds ([`migrate`]). A failure
/// carries what the run did before it ([`Error::Run`]).
pub async fn run(ctx: &Context<'_>, m: &MigrateSettings) -> Result<RunReport> {
    let ready = ready::wait_for_dependencies(ctx).await?;
    let mut report = RunReport::new(&ctx.postgres.database);
    match migrate(ctx, m, ready, &mut report).await {
        Ok(()) => Ok(report),
        Err(e) => Err(e.with_report(report)),
    }
}

/// The longest pause between reconnect attempts after a lost connection.
const RECONNECT_MAX: Duration = Duration::from_millis(500);

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
    let (pg, wait) = (ctx.postgres, ctx.wait);
    let mut conn = if ready.on_target {
        ready.client
    } else {
        report.created =
            database::ensure_database(&ready.client, pg, m.db_owner.as_deref(), ctx.deadline)
                .await?;
        drop(ready.client);
        connect_target(pg, &ctx.app, wait.connect_timeout).await?
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
        if since.elapsed() >= wait.timeout {
            return Err(Error::Disconnected { action, source });
        }
        warn!(during = %action, error = %source, "lost the connection to PostgreSQL; reconnecting");
        let started = Instant::now();
        // The server was there a moment ago: look often, so the run goes on within half a
        // second of its return (a refused connection costs nothing).
        let backoff = Backoff {
            initial: wait.backoff.initial.min(RECONNECT_MAX),
            max: wait.backoff.max.min(RECONNECT_MAX),
        };
        let ready = match ready::wait_for_postgres(
            pg,
            wait.connect_timeout,
            backoff,
            since + wait.timeout,
            &ctx.app,
        )
        .await
        {
            Ok(r) => r,
            // Name what the loss interrupted, not only that the server stayed away.
            Err(e @ dependency::Error::Timeout { .. }) => {
                return Err(Error::Disconnected {
                    action,
                    source: Box::new(e),
                });
            }
            Err(e) => return Err(e.into()),
        };
        if !ready.on_target {
            return Err(dependency::Error::Unusable {
                dependency: target_label(pg),
                cause: "the database disappeared while migrating".into(),
            }
            .into());
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
    let (state, plan) = read_plan(conn, m).await?;
    let plan = plan.check()?;
    // No dbinit history but tables: adopt as the settings say, or refuse (exit 9).
    let adoption = match adopt::decide(conn, m, &state, &ctx.postgres.database).await {
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
        super::observe::enforce_floor(conn, m).await?;
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
    let key = lock::lock_key(&ctx.postgres.database, &m.history);
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
    let work = connect_target(ctx.postgres, &ctx.app, ctx.wait.connect_timeout)
        .await
        .map_err(|e| match e {
            // Reachable a moment ago: a refusal now is the server going away.
            dependency::Error::Unusable { dependency, cause } => Error::Disconnected {
                action: format!("open the work connection to {dependency}"),
                source: cause,
            },
            e => e.into(),
        })?;
    // PostgreSQL 14+: notice within a second that a killed runner's connection is gone, even
    // in the middle of a long statement, and roll back. Older servers lack it; harmless.
    let _ = work
        .batch_execute("SET client_connection_check_interval = 1000")
        .await;
    let work_pid: i32 = scalar(
        &work,
        "read the work connection's backend pid",
        "SELECT pg_backend_pid()",
    )
    .await?;
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
    // What these files will do to the live tables: logged, and a refusal only when
    // DBINIT_LINT_FAIL_ON asks for one.
    review::before_apply(&work, m, review::pending(&m.set, &plan, None)).await?;
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
        retry_for: ctx.wait.timeout,
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
