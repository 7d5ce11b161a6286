//! The flows that read and never write: [`wait`] (until another runner has applied
//! everything) and [`status`] (what is applied, pending, drifted), and [`read_plan`], the one
//! read of the history that every flow starts with.

use std::cell::Cell;
use std::time::Duration;

use tokio_postgres::Client;
use tracing::info;

use super::adopt;
use super::error::{Error, Result};
use super::floor;
use super::history::{self, DbState};
use super::plan::{self, Plan};
use super::report::{InvalidIndex, RunReport, StatusReport};
use super::session::pg_error;
use super::set::MigrationSet;
use super::settings::MigrateSettings;
use super::sqlsplit;
use crate::dependency;
use crate::postgres::connect::{connect, target_label};
use crate::postgres::sql::{quote_ident, quote_literal};
use crate::ready::{self, Context};
use crate::retry::{Backoff, Class, Pace, PollError, Step, poll};

/// Reads the history (and seed history) and compares it with the set.
pub(crate) async fn read_plan(client: &Client, m: &MigrateSettings) -> Result<(DbState, Plan)> {
    let state = history::read_state(client, &m.history, &m.seeds_table, !m.set.seeds.is_empty())
        .await
        .map_err(|e| pg_error(&format!("read the history table {}", m.history.plain()), e))?;
    let plan = plan::plan(&m.set, &state);
    Ok((state, plan))
}

/// Refuses (exit 13) when a compatibility floor recorded in the database is above the set;
/// called only when the database is ahead of the set.
pub(crate) async fn enforce_floor(client: &Client, m: &MigrateSettings) -> Result<()> {
    let recorded = floor::read(client, &m.history)
        .await
        .map_err(|e| pg_error("read the compatibility floor from the audit table", e))?;
    Ok(floor::check(m.set.target_version(), recorded)?)
}

/// How often `wait` looks at the history.
const WAIT_POLL: Backoff = Backoff {
    initial: Duration::from_millis(100),
    max: Duration::from_secs(1),
};

/// Waits for the dependencies, then until the database holds every migration and seed of the
/// set (applied by someone else), applying nothing. Divergence ends the wait with exit 6.
pub async fn wait(ctx: &Context<'_>, m: &MigrateSettings) -> Result<RunReport> {
    let ready = ready::wait_for_dependencies(ctx).await?;
    // The connection, kept between looks; replaced when it breaks.
    let slot = &Cell::new(ready.on_target.then_some(ready.client));
    let pace = Pace {
        deadline: ctx.deadline,
        backoff: WAIT_POLL,
        report_every: Duration::from_secs(5),
    };
    let step = move |_| async move {
        let mut client = slot.take();
        let step = look(ctx, m, &mut client).await;
        slot.set(client);
        step
    };
    let r = poll(pace, step, |p| {
        info!(missing = %p.awaited, "waiting for another runner to apply migrations");
    })
    .await;
    r.map_err(|e| match e {
        PollError::Failed(e) => e,
        PollError::Deadline { last, waited, .. } => Error::SchemaTimeout {
            waited,
            missing: last,
        },
    })
}

/// One look of [`wait`]: connects when needed, reads, and says what is still missing.
async fn look(
    ctx: &Context<'_>,
    m: &MigrateSettings,
    client: &mut Option<Client>,
) -> Step<RunReport, Error, String> {
    let pg = ctx.postgres;
    if client.is_none() {
        match connect(pg, &pg.database, &ctx.app, ctx.wait.connect_timeout).await {
            Ok(c) => *client = Some(c),
            Err(e) if matches!(e.class(), Class::MissingDatabase | Class::Transient) => {}
            Err(e) => {
                return Step::Fail(
                    dependency::Error::Refused {
                        dependency: target_label(pg),
                        cause: Box::new(e),
                    }
                    .into(),
                );
            }
        }
    }
    let Some(c) = client.as_ref() else {
        return Step::Wait(format!("database {:?} (not created yet)", pg.database));
    };
    let looked = async {
        let (state, plan) = read_plan(c, m).await?;
        let plan = plan.check()?;
        refuse_blind(c, m, &state, &pg.database).await?;
        if plan.is_empty() && !plan.future.is_empty() {
            enforce_floor(c, m).await?;
        }
        Ok::<_, Error>(plan)
    };
    match looked.await {
        Ok(plan) if plan.is_empty() => {
            let mut report = RunReport::new(&pg.database);
            report.planned(&m.set, &plan);
            Step::Done(report)
        }
        Ok(plan) => Step::Wait(plan.describe_pending(&m.set)),
        Err(e @ (Error::Diverged(_) | Error::Unadopted(_) | Error::Incompatible(_))) => {
            Step::Fail(e)
        }
        Err(e) => {
            if c.is_closed() {
                *client = None;
            }
            Step::Wait(e.render())
        }
    }
}

/// A database with tables but no dbinit history, and no setting that adopts it, is one no
/// runner will migrate: `wait` says so at once with `run`'s message (exit 9) instead of
/// waiting out its timeout. With `DBINIT_ADOPT_FROM` or `DBINIT_BASELINE_VERSION` set, the
/// runner adopts it, so `wait` goes on waiting.
async fn refuse_blind(c: &Client, m: &MigrateSettings, state: &DbState, db: &str) -> Result<()> {
    match adopt::decide(c, m, state, db).await {
        // The tables may be the runner's first migrations, committed with their history rows
        // between the read and the look at the tables: read again before refusing.
        Err(e @ Error::Unadopted(_)) if read_plan(c, m).await?.0.migrations.is_empty() => Err(e),
        Err(Error::Unadopted(_)) | Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads the database and compares it with the set; changes nothing.
pub async fn status(ctx: &Context<'_>, m: &MigrateSettings) -> Result<StatusReport> {
    let ready = ready::wait_for_dependencies(ctx).await?;
    let (plan, invalid, adoption) = if ready.on_target {
        let plan = read_plan(&ready.client, m).await?.1;
        let adoption = adopt::audit::adoption(&ready.client, &m.history)
            .await
            .map_err(|e| pg_error("read the adoption record", e))?;
        (
            plan,
            invalid_indexes(&ready.client, &m.set).await?,
            adoption,
        )
    } else {
        (plan::plan(&m.set, &DbState::default()), Vec::new(), None)
    };
    let ahead = !plan.future.is_empty();
    let mut report = StatusReport::new(
        &ctx.postgres.database,
        ready.on_target,
        &m.set,
        plan,
        invalid,
    );
    if ahead && let Err(e) = enforce_floor(&ready.client, m).await {
        match e {
            Error::Incompatible(i) => report.excluded(&i),
            e => return Err(e),
        }
    }
    report.adoption = adoption;
    Ok(report)
}

/// INVALID indexes that the set's no-transaction migrations build (named in their
/// `CREATE INDEX CONCURRENTLY` statements): what an interrupted build leaves behind.
async fn invalid_indexes(client: &Client, set: &MigrationSet) -> Result<Vec<InvalidIndex>> {
    let mut built: Vec<(String, String)> = Vec::new();
    for m in &set.migrations {
        let sql = m.sql();
        if m.no_transaction() {
            for st in sqlsplit::split(sql) {
                if let Some(name) = sqlsplit::concurrent_index_name(st.text) {
                    built.push((name, m.to_string()));
                }
            }
        }
    }
    if built.is_empty() {
        return Ok(Vec::new());
    }
    // Simple protocol: no named prepared statement for a transaction-mode pooler to mix up.
    let list = built
        .iter()
        .map(|(n, _)| quote_literal(n))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = client
        .simple_query(&format!(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE NOT i.indisvalid AND c.relname IN ({list}) AND pg_table_is_visible(c.oid)"
        ))
        .await
        .map_err(|e| pg_error("look for invalid indexes", e))?;
    Ok(rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .filter_map(|index| {
            let migration = built.iter().find(|(n, _)| *n == index)?.1.clone();
            Some(InvalidIndex {
                repair: format!("DROP INDEX CONCURRENTLY IF EXISTS {}", quote_ident(&index)),
                index,
                migration,
            })
        })
        .collect())
}
