//! Reviewing migrations before they run: the wiring around the pure `dbinit-lint` crate.
//! Which server version the rules assume, the live facts of the tables the files touch
//! ([`facts`]: rows, size, who holds locks now; read-only), the verdict each finding earns
//! here ([`verdict`], with the thresholds of [`settings`]) and what is printed or logged
//! ([`report`]). `dbinit lint`, `dbinit plan` and `dbinit run` (which logs, and refuses only
//! when `DBINIT_LINT_FAIL_ON` says so) all come through [`review`].
//!
//! Below the migrate room: it knows scripts, not migration sets.

pub mod facts;
pub mod report;
pub mod settings;
mod verdict;

#[cfg(test)]
mod tests;

use dbinit_lint::{Input, PgVersion, Target};
use tokio_postgres::Client;
use tracing::{info, warn};

pub use report::{Review, Source};
pub use settings::{Level, LintSettings};
use verdict::Linted;

/// Why a review could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A read of the catalog failed.
    #[error("failed to {action}")]
    Query {
        /// What was being read.
        action: String,
        /// The server's or the connection's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The server answered something unexpected.
    #[error("{0}")]
    Answer(String),
    /// The thread that parses could not run.
    #[error("failed to run the linter: {0}")]
    Thread(String),
}

/// One file to review.
#[derive(Debug, Clone)]
pub struct Script {
    /// `V3__orders_index`, a seed's file name, or a path.
    pub name: String,
    /// Its SQL.
    pub sql: String,
    /// Whether it runs in a transaction.
    pub transaction: bool,
    /// Its compatibility floor (`-- dbinit:compatible-from=N`): a declared contract step,
    /// which releases below N refuse to run against.
    pub compatible_from: Option<i64>,
}

/// The database the review reads, if any.
#[derive(Clone, Copy)]
pub enum Db<'a> {
    /// None: static verdicts, the configured PostgreSQL version.
    Offline,
    /// The application's database does not exist yet (connected to the maintenance one):
    /// every table is new.
    New(&'a Client),
    /// The application's database.
    Live(&'a Client),
}

/// squawk's parser recurses; 64 MiB of (virtual) stack is ample for any file
/// `dbinit_lint::lint` accepts, in debug builds too.
const STACK: usize = 64 << 20;

/// At most this many relations are looked up (a file touching more is reviewed without
/// the facts of the rest).
const MAX_TABLES: usize = 500;

/// Lints every script on a thread of its own (a big stack, and the runtime keeps answering
/// signals meanwhile).
async fn lint_all(scripts: Vec<Script>, pg: PgVersion) -> Result<Vec<Linted>, Error> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("dbinit-lint".into())
        .stack_size(STACK)
        .spawn(move || {
            let out: Vec<Linted> = scripts
                .into_iter()
                .map(|s| Linted {
                    lint: dbinit_lint::lint(&Input {
                        sql: &s.sql,
                        in_transaction: s.transaction,
                        pg_version: pg,
                    }),
                    name: s.name,
                    transaction: s.transaction,
                    compatible_from: s.compatible_from,
                })
                .collect();
            let _ = tx.send(out);
        })
        .map_err(|e| Error::Thread(e.to_string()))?;
    rx.await
        .map_err(|_| Error::Thread("the lint thread ended without an answer".into()))
}

/// Reviews `scripts`, in the order they would run, against `db`.
pub async fn review(scripts: Vec<Script>, db: Db<'_>, s: &LintSettings) -> Result<Review, Error> {
    let pg = match db {
        Db::Offline => s.pg_version,
        Db::New(c) | Db::Live(c) => facts::server_version(c).await?,
    };
    let linted = lint_all(scripts, pg).await?;
    let (facts, source) = match db {
        Db::Offline => (None, Source::Static),
        Db::New(_) => (None, Source::NewDatabase),
        Db::Live(c) => {
            let mut targets: Vec<Target> = linted
                .iter()
                .flat_map(|l| &l.lint.statements)
                .filter(|st| st.lock.is_some())
                .flat_map(|st| st.targets.iter().cloned())
                .collect();
            targets.dedup();
            targets.truncate(MAX_TABLES);
            (Some(facts::gather(c, &targets).await?), Source::Live)
        }
    };
    Ok(verdict::review(
        linted,
        facts.as_ref(),
        source,
        pg.to_string(),
        s,
    ))
}

/// Logs the review as `run` does before applying: each finding at warn level (verdict ok
/// at info), then the counts.
pub fn log(review: &Review) {
    for file in &review.files {
        for j in &file.findings {
            let tables = if j.tables.is_empty() {
                j.targets.join(", ")
            } else {
                j.tables
                    .iter()
                    .map(report::describe_table)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let lock = j.lock.map(|l| l.as_str()).unwrap_or("-");
            let recipe = j.recipe.as_deref().unwrap_or("-");
            if j.verdict == Level::Ok {
                info!(file = %file.name, line = j.line, rule = %j.rule, verdict = "ok", lock, tables, reason = %j.reason, "{}", j.message);
            } else {
                warn!(file = %file.name, line = j.line, rule = %j.rule, verdict = j.verdict.as_str(), lock, tables, reason = %j.reason, recipe, "{}", j.message);
            }
        }
    }
    if review.counts_at_least(Level::Warn) > 0 {
        warn!("{}", review.summary());
    } else {
        info!("{}", review.summary());
    }
}
