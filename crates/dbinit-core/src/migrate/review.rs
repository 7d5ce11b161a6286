//! Which files the migration review reads, and what its verdict does: `dbinit lint` (the
//! pending files with a database, every file of the set without one, or the files given),
//! `plan` (the files `run` would apply), and `run`, which logs the review of what it is
//! about to apply and refuses only when `DBINIT_LINT_FAIL_ON` says so.

use std::path::{Path, PathBuf};

use tokio_postgres::Client;

use super::error::{Error, Result};
use super::header;
use super::observe::read_plan;
use super::plan::Plan;
use super::session::pg_error;
use super::set::{Migration, MigrationSet, Seed};
use super::settings::MigrateSettings;
use crate::lint::{self, Db, Level, LintSettings, Review, Script};
use crate::ready::{self, Context};
use crate::setting::ConfigError;

fn migration_script(m: &Migration) -> Script {
    let sql = m.sql();
    let h = header::header(sql).unwrap_or_default();
    Script {
        name: m.to_string(),
        sql: sql.to_string(),
        transaction: !m.no_transaction(),
        compatible_from: h.compatible_from,
    }
}

fn seed_script(s: &Seed) -> Script {
    Script {
        name: s.name.clone(),
        sql: s.sql.clone(),
        transaction: true,
        compatible_from: None,
    }
}

/// The files `plan` says are pending, migrations (above `skip_upto`, what an adoption
/// records) then seeds, as `run` would apply them.
pub fn pending(set: &MigrationSet, plan: &Plan, skip_upto: Option<i64>) -> Vec<Script> {
    plan.migrations
        .iter()
        .map(|&i| &set.migrations[i])
        .filter(|m| skip_upto.is_none_or(|n| m.version() > n))
        .map(migration_script)
        .chain(plan.seeds.iter().map(|&i| seed_script(&set.seeds[i])))
        .collect()
}

/// Every file of the set, in run order.
fn everything(set: &MigrationSet) -> Vec<Script> {
    set.migrations
        .iter()
        .map(migration_script)
        .chain(set.seeds.iter().map(seed_script))
        .collect()
}

/// Files named on the command line, in the order given; each runs as its header says.
fn given(files: &[PathBuf]) -> std::result::Result<Vec<Script>, ConfigError> {
    files
        .iter()
        .map(|p| {
            let sql = std::fs::read_to_string(p).map_err(|e| {
                ConfigError(format!("dbinit lint: cannot read {}: {e}", p.display()))
            })?;
            let h =
                header::header(&sql).map_err(|e| ConfigError(format!("{}: {e}", p.display())))?;
            Ok(Script {
                name: display(p),
                sql,
                transaction: !h.no_transaction,
                compatible_from: h.compatible_from,
            })
        })
        .collect()
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// Maps the review's failure to this room's: a lost connection or a refused read is told
/// like any other statement of a migration command.
pub(crate) fn lint_error(e: lint::Error) -> Error {
    match e {
        lint::Error::Query { action, source } => pg_error(&action, source),
        e => Error::Lint(e),
    }
}

/// Reviews `scripts` against `db`.
pub async fn review(scripts: Vec<Script>, db: Db<'_>, s: &LintSettings) -> Result<Review> {
    lint::review(scripts, db, s).await.map_err(lint_error)
}

/// The refusal `DBINIT_LINT_FAIL_ON` asks for, if the review earns it.
pub fn gate(review: &Review, gate: Option<Level>) -> Option<Error> {
    let g = gate?;
    if !review.fails(Some(g)) {
        return None;
    }
    let worst: Vec<String> = review
        .files
        .iter()
        .flat_map(|f| f.findings.iter().map(move |j| (f, j)))
        .filter(|(_, j)| j.verdict >= g)
        .map(|(f, j)| {
            format!(
                "{} line {}: {} ({})",
                f.name,
                j.line,
                j.rule,
                j.verdict.as_str()
            )
        })
        .collect();
    let shown = worst.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
    let more = worst.len().saturating_sub(5);
    Some(Error::Unsafe {
        gate: g,
        summary: if more > 0 {
            format!("{shown}; and {more} more")
        } else {
            shown
        },
    })
}

/// `dbinit lint`: `files` when given, else the set's pending files (with a database) or
/// all of them (without). `ctx` is the database to read, when one is configured.
pub async fn lint(
    ctx: Option<&Context<'_>>,
    m: &MigrateSettings,
    files: &[PathBuf],
) -> Result<Review> {
    let named = if files.is_empty() {
        None
    } else {
        Some(given(files)?)
    };
    let Some(ctx) = ctx else {
        let scripts = named.unwrap_or_else(|| everything(&m.set));
        return review(scripts, Db::Offline, &m.lint).await;
    };
    let w = ctx.wait;
    let ready = ready::wait_for_postgres(
        ctx.postgres,
        w.connect_timeout,
        w.backoff,
        ctx.deadline,
        &ctx.app,
    )
    .await?;
    if !ready.on_target {
        let scripts = named.unwrap_or_else(|| everything(&m.set));
        return review(scripts, Db::New(&ready.client), &m.lint).await;
    }
    let scripts = match named {
        Some(s) => s,
        None => {
            let (_, plan) = read_plan(&ready.client, m).await?;
            pending(&m.set, &plan, None)
        }
    };
    review(scripts, Db::Live(&ready.client), &m.lint).await
}

/// `run`, under the lock, before applying: reviews what it is about to apply with the
/// live facts, logs it, and refuses when `DBINIT_LINT_FAIL_ON` says so. A review that
/// cannot be made is logged and does not stop the run, unless a gate is set.
pub(crate) async fn before_apply(
    conn: &Client,
    m: &MigrateSettings,
    scripts: Vec<Script>,
) -> Result<()> {
    if scripts.is_empty() {
        return Ok(());
    }
    match review(scripts, Db::Live(conn), &m.lint).await {
        Ok(r) => {
            lint::log(&r);
            match gate(&r, m.lint.fail_on) {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
        Err(e) if m.lint.fail_on.is_some() => Err(e),
        Err(e) => {
            tracing::warn!(error = %e.render(), "could not review the pending migrations; applying them anyway");
            Ok(())
        }
    }
}
