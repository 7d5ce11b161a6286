//! Recording versions as applied without running them — `dbinit baseline`, `dbinit adopt`,
//! and `run` with `DBINIT_BASELINE_VERSION`/`DBINIT_ADOPT_FROM` — under the same advisory
//! lock as `run`, so 20 pods starting at once record one baseline.
//!
//! Rows go into the history table in refinery's format with the files' current checksums
//! (so `status`, `wait` and the divergence checks treat them like applied files), and one
//! audit row each says where it came from. Both in one transaction.

use tokio_postgres::Client;
use tracing::info;

use super::audit::{self, Row};
use super::tools::Tool;
use crate::migrate::adopt::{self, Adoption};
use crate::migrate::error::Result;
use crate::migrate::history;
use crate::migrate::lock;
use crate::migrate::settings::MigrateSettings;
use crate::postgres;
use crate::ready::Context;
use crate::setting::ConfigError;

/// Under the lock, on a database whose history is still empty: writes `a`'s rows and their
/// audit records in one transaction. Returns how many versions it recorded (0 when another
/// runner recorded history first).
pub async fn record(client: &Client, m: &MigrateSettings, a: &Adoption) -> Result<usize> {
    let state = history::read_state(client, &m.history, &m.seeds_table, false)
        .await
        .map_err(postgres::Error::statement("read the history table"))?;
    if !state.migrations.is_empty() {
        return Ok(0);
    }
    let rows: Vec<Row<'_>> = a
        .rows
        .iter()
        .map(|(i, source)| Row {
            action: a.action,
            file: &m.set.migrations[*i],
            source,
            replaces: None,
        })
        .collect();
    audit::write(client, &m.history, &rows)
        .await
        .map_err(postgres::Error::statement("record the adopted versions"))?;
    info!(versions = a.rows.len(), "{}", a.summary);
    Ok(a.rows.len())
}

/// What `dbinit baseline` / `dbinit adopt` was asked to do.
#[derive(Debug, Clone, Copy)]
pub enum Request {
    /// Record versions up to N.
    Baseline(i64),
    /// Take over another tool's history (the only one found when `None`).
    Adopt(Option<Tool>),
}

/// `dbinit baseline` and `dbinit adopt`: wait for PostgreSQL, take the migration lock and
/// record; a second call finds the versions recorded and does nothing.
pub async fn command(ctx: &Context<'_>, m: &MigrateSettings, req: Request) -> Result<String> {
    let db = &ctx.postgres.database;
    let absent = "baseline and adopt record what an existing database holds (a new one needs neither: `dbinit run` creates it)";
    lock::exclusive(ctx, m, absent, async |client| {
        locked(client, m, req, db).await
    })
    .await
}

async fn locked(client: &Client, m: &MigrateSettings, req: Request, db: &str) -> Result<String> {
    let adoption = match req {
        Request::Baseline(n) => adopt::baseline(&m.set, n),
        Request::Adopt(tool) => {
            let found = adopt::inspect(client, m).await?;
            let h = adopt::pick(&found, tool)?;
            adopt::from_tool(&m.set, h, m.adopt.map.as_ref())?
        }
    };
    history::ensure_tables(client, &m.history, &m.seeds_table)
        .await
        .map_err(postgres::Error::statement("create the history tables"))?;
    let state = history::read_state(client, &m.history, &m.seeds_table, false)
        .await
        .map_err(postgres::Error::statement("read the history table"))?;
    if !state.migrations.is_empty() {
        let wanted = &adoption.rows;
        let recorded = wanted.iter().all(|(i, _)| {
            let v = m.set.migrations[*i].version();
            state.migrations.iter().any(|a| a.version == v)
        });
        let top = state
            .migrations
            .iter()
            .map(|a| a.version)
            .max()
            .unwrap_or(0);
        if recorded {
            return Ok(format!(
                "database {db:?} already records version {} and everything before it; nothing to do",
                adoption.version
            ));
        }
        return Err(ConfigError(format!(
            "database {db:?} already has dbinit history (up to version {top}): baseline and adopt are only for databases without one; see `dbinit status`"
        ))
        .into());
    }
    let n = record(client, m, &adoption).await?;
    Ok(format!(
        "database {db:?}: recorded {n} version(s) up to {} as applied without running them ({:?})",
        adoption.version,
        adoption.action.as_str()
    ))
}
