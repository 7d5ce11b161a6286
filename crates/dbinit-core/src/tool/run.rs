//! `dbinit run -- CMD` (and `dbinit-job -- CMD`): the flow of a SQL run around the user's own
//! migration command. Wait for the dependencies, create the database if missing; when the
//! tool's table already holds what its files in the image describe, stop there (one read,
//! no lock, no fork); otherwise take the migration lock (the same advisory lock as a SQL
//! run, so the two never overlap), look again, run the command with the connection in the
//! forms tools read, wait until its database sessions are gone, apply the SQL seeds, and
//! release the lock.

use std::future::Future;
use std::time::Duration;

use tokio_postgres::{Client, SimpleQueryMessage};
use tracing::{info, warn};

use super::child::{self, Stop};
use super::command::MigrateCommand;
use super::env;
use super::error::{Error, Result};
use super::files::Expected;
use super::judge;
use super::recorded::{self, ReadError};
use super::report::ToolReport;
use super::sessions;
use super::settings::ToolSettings;
use super::state::{ToolState, Verdict};
use crate::migrate::report::RunReport;
use crate::migrate::session::{pg_error, scalar};
use crate::migrate::set::Seed;
use crate::migrate::{self, MigrateSettings, OnWait, apply, history, lock};
use crate::postgres::connect::connect_target;
use crate::postgres::database;
use crate::ready::{self, Context, PgReady};
use crate::retry::Rng;
use crate::signal::Listener;

/// `client_connection_check_interval` given to the child's sessions (PostgreSQL 14+).
const CHECK_INTERVAL: Duration = Duration::from_millis(1000);

/// How long a session the child left behind may take to go (it notices its dead client
/// within [`CHECK_INTERVAL`] on PostgreSQL 14+) before dbinit terminates it. Short: the child
/// is gone, and a pod being stopped has only its grace period left.
const ORPHAN_GRACE: Duration = Duration::from_secs(2);

/// Runs `f` unless a signal comes first.
pub(crate) async fn interruptible<T>(
    signals: &mut Listener,
    f: impl Future<Output = T>,
) -> Result<T> {
    tokio::select! {
        v = f => Ok(v),
        signal = signals.recv() => Err(Error::Interrupted { signal, child: None }),
    }
}

/// Reads the tool's table and judges it against the files: `None` when no tool is known.
pub(crate) async fn look(
    client: &Client,
    t: &ToolSettings,
    expected: Option<&std::result::Result<Expected, String>>,
    settled: bool,
) -> Result<Option<ToolState>> {
    let (Some(p), Some(expected)) = (&t.project, expected) else {
        return Ok(None);
    };
    let table = p.table.plain();
    let expected = match expected {
        Ok(e) => e,
        Err(why) => return Ok(Some(ToolState::unknown(p.tool, &table, why.clone()))),
    };
    match recorded::read(client, p.tool, &p.table).await {
        Ok(r) => Ok(Some(judge::judge(p.tool, &table, expected, &r, settled))),
        Err(e @ ReadError::Shape { .. }) => {
            Ok(Some(ToolState::unknown(p.tool, &table, e.to_string())))
        }
        Err(ReadError::Pg(e)) => Err(pg_error(&format!("read {table}"), e).into()),
    }
}

/// The seeds not recorded yet (name and checksum), in name order.
pub(crate) async fn pending_seeds<'a>(
    client: &Client,
    m: &'a MigrateSettings,
) -> Result<Vec<&'a Seed>> {
    if m.set.seeds.is_empty() {
        return Ok(Vec::new());
    }
    let t = m.seeds_table.sql();
    let rows = match client
        .simple_query(&format!("SELECT name, checksum FROM {t}"))
        .await
    {
        Ok(r) => r,
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Vec::new(),
        Err(e) => return Err(pg_error("read the seed history", e).into()),
    };
    let done: Vec<(String, String)> = rows
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((r.get(0)?.to_string(), r.get(1)?.to_string())),
            _ => None,
        })
        .collect();
    Ok(m.set
        .seeds
        .iter()
        .filter(|s| !done.iter().any(|(n, c)| *n == s.name && *c == s.checksum))
        .collect())
}

/// Whether the command can be skipped: the tool is known, the command is its apply-all
/// command, and the table is up to date or ahead.
fn skippable(t: &ToolSettings, state: Option<&ToolState>) -> bool {
    t.always_runs.is_none()
        && state.is_some_and(|s| matches!(s.verdict, Verdict::UpToDate | Verdict::Ahead))
}

/// Logs the state found, once: a warning when ahead, unknown or failed.
fn log_state(state: Option<&ToolState>) {
    match state {
        Some(s) if matches!(s.verdict, Verdict::Ahead | Verdict::Unknown) => {
            warn!(
                tool = s.tool.id(),
                verdict = s.verdict.as_str(),
                "{}",
                s.describe()
            );
        }
        Some(s) => info!(
            tool = s.tool.id(),
            verdict = s.verdict.as_str(),
            "{}",
            s.describe()
        ),
        // `always_runs` says why.
        None => {}
    }
}

/// Waits for the dependencies, then [`migrate`].
pub async fn run(
    ctx: &Context<'_>,
    m: &MigrateSettings,
    t: &ToolSettings,
    report: &mut ToolReport,
    signals: &mut Listener,
) -> Result<()> {
    let ready = interruptible(signals, ready::wait_for_dependencies(ctx)).await??;
    migrate(ctx, m, t, ready, report, signals, &|_| {}).await
}

/// From a ready connection: creates the database if missing, decides, and runs the command
/// under the lock when there is something to do.
pub async fn migrate(
    ctx: &Context<'_>,
    m: &MigrateSettings,
    t: &ToolSettings,
    ready: PgReady,
    report: &mut ToolReport,
    signals: &mut Listener,
    on_wait: OnWait<'_>,
) -> Result<()> {
    let pg = ctx.postgres;
    let conn = if ready.on_target {
        ready.client
    } else {
        report.created = interruptible(
            signals,
            database::ensure_database(&ready.client, pg, m.db_owner.as_deref(), ctx.deadline),
        )
        .await?
        .map_err(migrate::Error::from)?;
        drop(ready.client);
        interruptible(
            signals,
            connect_target(pg, &ctx.app, ctx.wait.connect_timeout),
        )
        .await??
    };
    let expected = t.project.as_ref().map(|p| p.read());
    let state = look(&conn, t, expected.as_ref(), false).await?;
    let seeds = pending_seeds(&conn, m).await?;
    log_state(state.as_ref());
    report.before = state.clone();
    if skippable(t, state.as_ref()) && seeds.is_empty() {
        return Ok(());
    }
    if let Some(why) = &t.always_runs {
        info!("{why}");
    }
    let key = lock::lock_key(&pg.database, &m.history);
    let waited =
        interruptible(signals, lock::acquire(&conn, key, m.lock_timeout, on_wait)).await??;
    report.lock_wait_ms = Some(waited.as_millis() as u64);
    info!(
        waited_ms = waited.as_millis() as u64,
        "acquired the migration lock"
    );
    let r = locked(ctx, m, t, &conn, expected.as_ref(), report, signals).await;
    lock::release(&conn).await;
    r
}

/// Under the lock: look again on a second connection (the lock's must not see an error),
/// run the command if there is still something to do, then the seeds.
async fn locked(
    ctx: &Context<'_>,
    m: &MigrateSettings,
    t: &ToolSettings,
    lock_conn: &Client,
    expected: Option<&std::result::Result<Expected, String>>,
    report: &mut ToolReport,
    signals: &mut Listener,
) -> Result<()> {
    let pg = ctx.postgres;
    let mut work = interruptible(
        signals,
        connect_target(pg, &ctx.app, ctx.wait.connect_timeout),
    )
    .await??;
    let state = look(&work, t, expected, true).await?;
    report.before = state.clone();
    if let Some(s) = &state
        && s.verdict == Verdict::Failed
    {
        return Err(Error::ToolFailed(Box::new(s.clone())));
    }
    if skippable(t, state.as_ref()) {
        info!(
            "another runner brought the tool up to date while we waited; not running the command"
        );
    } else if let (Some(cmd), Some(program)) = (&t.command, &t.program) {
        let check = scalar::<u32>(
            &work,
            "read the server version",
            "SELECT current_setting('server_version_num')",
        )
        .await?
            >= 140_000;
        // Not kept open through a long command: idle_session_timeout may end it.
        drop(work);
        run_command(
            ctx,
            t,
            (cmd, program.as_path()),
            check,
            lock_conn,
            report,
            signals,
        )
        .await?;
        work = interruptible(
            signals,
            connect_target(pg, &ctx.app, ctx.wait.connect_timeout),
        )
        .await??;
        report.after = look(&work, t, expected, true).await?;
        if let Some(s) = &report.after
            && s.verdict == Verdict::Pending
            && t.always_runs.is_none()
        {
            warn!("the command succeeded, but {}", s.describe());
        }
    }
    let seeds = pending_seeds(&work, m).await?;
    if seeds.is_empty() {
        return Ok(());
    }
    history::ensure_seeds_table(&work, &m.seeds_table)
        .await
        .map_err(|e| {
            pg_error(
                &format!("create the seed table {}", m.seeds_table.plain()),
                e,
            )
        })?;
    let work_pid: i32 = scalar(
        &work,
        "read the work connection's backend pid",
        "SELECT pg_backend_pid()",
    )
    .await?;
    let conn = apply::Conn {
        work: &work,
        work_pid,
        lock: lock_conn,
        settings: m.session,
        retry_for: ctx.wait.timeout,
        on_wait: &|_, _| {},
    };
    let mut applied = RunReport::new(&pg.database);
    let r = interruptible(
        signals,
        apply::seeds(&conn, &m.seeds_table, &seeds, &mut applied),
    )
    .await;
    report.seeds = applied.seeds;
    r?.map_err(Error::from)
}

/// Runs the command under the lock, then waits until its sessions are gone; its end decides
/// the result: a signal it was forwarded (exit 8), the timeout, a failure (exit 5).
async fn run_command(
    ctx: &Context<'_>,
    t: &ToolSettings,
    (cmd, program): (&MigrateCommand, &std::path::Path),
    check: bool,
    lock_conn: &Client,
    report: &mut ToolReport,
    signals: &mut Listener,
) -> Result<()> {
    let run_id = format!("{:08x}", Rng::new().next_u64() as u32);
    let app = env::app_name(&run_id, &ctx.app);
    let child_env = env::build(ctx.postgres, &app, check.then_some(CHECK_INTERVAL), t.tool);
    let spec = child::Spec {
        program: program.to_path_buf(),
        args: cmd.expanded_args(child_env.url.expose()),
        env: child_env.vars.clone(),
        grace: t.grace,
        timeout: t.timeout,
        secrets: child_env.secrets.clone(),
    };
    let shown = cmd.display();
    info!(command = %shown, "running the migration command under the lock");
    report.ran = true;
    let outcome = child::run(&spec, signals)
        .await
        .map_err(|source| Error::Spawn {
            command: shown.clone(),
            source,
        })?;
    report.end = Some(outcome.end.to_string());
    report.command_ms = Some(outcome.elapsed.as_millis() as u64);
    let gone = sessions::wait_gone(lock_conn, &child_env.app_name, ORPHAN_GRACE).await;
    if gone > 0 {
        warn!(
            sessions = gone,
            "terminated the migration command's leftover sessions"
        );
    }
    match outcome.stopped {
        Some(Stop::Signal(signal)) => {
            return Err(Error::Interrupted {
                signal,
                child: Some((shown, outcome.end, outcome.killed)),
            });
        }
        Some(Stop::Timeout(timeout)) => {
            return Err(Error::TimedOut {
                command: shown,
                timeout,
                end: outcome.end,
                killed: outcome.killed,
                lines: outcome.tail,
            });
        }
        None if !outcome.end.success() => {
            return Err(Error::Failed {
                command: shown,
                end: outcome.end,
                elapsed: outcome.elapsed,
                lines: outcome.tail,
            });
        }
        None => {
            info!(command = %shown, duration_ms = outcome.elapsed.as_millis() as u64, "the migration command succeeded")
        }
    }
    Ok(())
}
