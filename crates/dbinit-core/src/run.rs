//! The three flows over a migration set: `run` (create, lock, migrate, seed), `wait` (block
//! until another runner has applied everything) and `status` (report, change nothing).

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tokio_postgres::Client;
use tracing::{info, warn};

use crate::backoff::{Backoff, Rng};
use crate::config::{ConfigError, PostgresSettings, Settings, duration_setting};
use crate::error::{Error, Result};
use crate::history::{self, DbState, Plan, TableName};
use crate::migrations::MigrationSet;
use crate::postgres::{self, Class, describe};
use crate::{apply, create, lock, ready};

/// Options of every command that works with a migration set.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Migrations")]
pub struct MigrateArgs {
    /// Directory of migrations (V1__name.sql) to use instead of the set built into the
    /// binary, e.g. a mounted ConfigMap; seeds are read from its seeds/ subdirectory
    #[arg(
        long,
        env = "DBINIT_MIGRATIONS_DIR",
        value_name = "DIR",
        hide_env_values = true
    )]
    pub migrations_dir: Option<PathBuf>,
    /// Directory of seed files [default: MIGRATIONS_DIR/seeds]
    #[arg(
        long,
        env = "DBINIT_SEEDS_DIR",
        value_name = "DIR",
        hide_env_values = true
    )]
    pub seeds_dir: Option<PathBuf>,
    /// Migration history table, refinery's format [default: refinery_schema_history]
    #[arg(
        long,
        env = "DBINIT_HISTORY_TABLE",
        value_name = "TABLE",
        hide_env_values = true
    )]
    pub history_table: Option<String>,
    /// Seed history table [default: dbinit_seed_history]
    #[arg(
        long,
        env = "DBINIT_SEEDS_TABLE",
        value_name = "TABLE",
        hide_env_values = true
    )]
    pub seeds_table: Option<String>,
    /// How long to wait for the migration lock held by another runner [default: 10m]
    #[arg(
        long,
        env = "DBINIT_LOCK_TIMEOUT",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub lock_timeout: Option<String>,
    /// Before re-running a `-- dbinit:no-transaction` file, drop INVALID indexes it builds
    /// (left by an interrupted CREATE INDEX CONCURRENTLY) instead of stopping with exit 5
    #[arg(long, env = "DBINIT_REPAIR_INVALID_INDEXES", hide_env_values = true)]
    pub repair_invalid_indexes: bool,
    /// Owner of the database when dbinit creates it [default: the connecting user]
    #[arg(
        long,
        env = "DBINIT_DB_OWNER",
        value_name = "ROLE",
        hide_env_values = true
    )]
    pub db_owner: Option<String>,
}

/// Validated migration options.
#[derive(Debug, Clone)]
pub struct MigrateSettings {
    /// The migrations and seeds.
    pub set: MigrationSet,
    /// History table.
    pub history: TableName,
    /// Seed history table.
    pub seeds_table: TableName,
    /// Lock timeout.
    pub lock_timeout: Duration,
    /// Owner for a created database.
    pub db_owner: Option<String>,
    /// Drop invalid indexes before re-running a no-transaction file.
    pub repair_invalid_indexes: bool,
}

impl MigrateArgs {
    /// Validates the options and loads the migration set.
    pub fn resolve(self) -> std::result::Result<MigrateSettings, ConfigError> {
        let set = match &self.migrations_dir {
            Some(d) => MigrationSet::from_dir(d, self.seeds_dir.as_deref())?,
            None => MigrationSet::embedded()?,
        };
        let lock_timeout = duration_setting(
            self.lock_timeout,
            "DBINIT_LOCK_TIMEOUT",
            Duration::from_secs(600),
        )?;
        Ok(MigrateSettings {
            set,
            history: TableName::parse(
                "DBINIT_HISTORY_TABLE (--history-table)",
                self.history_table
                    .as_deref()
                    .unwrap_or("refinery_schema_history"),
            )?,
            seeds_table: TableName::parse(
                "DBINIT_SEEDS_TABLE (--seeds-table)",
                self.seeds_table.as_deref().unwrap_or("dbinit_seed_history"),
            )?,
            lock_timeout,
            db_owner: self.db_owner.filter(|o| !o.is_empty()),
            repair_invalid_indexes: self.repair_invalid_indexes,
        })
    }
}

/// What a `run` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// The application's database.
    pub database: String,
    /// Whether this run created it.
    pub created: bool,
    /// Migrations applied by this run.
    pub migrations: Vec<String>,
    /// Seeds applied by this run.
    pub seeds: Vec<String>,
    /// Schema version after the run.
    pub version: Option<i32>,
    /// How long this run waited for the lock, when it had to take it.
    pub lock_wait_ms: Option<u64>,
}

impl RunReport {
    /// One line for the log and the termination message.
    pub fn summary(&self, elapsed: Duration) -> String {
        let version = self
            .version
            .map_or("no migrations".to_string(), |v| format!("version {v}"));
        let created = if self.created { ", created" } else { "" };
        if self.migrations.is_empty() && self.seeds.is_empty() {
            format!(
                "database {:?} is up to date at {version}{created}; nothing to apply ({} ms)",
                self.database,
                elapsed.as_millis()
            )
        } else {
            format!(
                "database {:?} at {version}{created}: applied {} migration(s){} and {} seed(s){} in {} ms",
                self.database,
                self.migrations.len(),
                list(&self.migrations),
                self.seeds.len(),
                list(&self.seeds),
                elapsed.as_millis()
            )
        }
    }
}

fn list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => format!(" ({one})"),
        [first, .., last] => format!(" ({first} .. {last})"),
    }
}

/// Connects to the application's database; used after it was created and for the work
/// connection.
async fn connect_target(s: &Settings, app: &str) -> Result<Client> {
    postgres::connect(
        &s.postgres,
        &s.postgres.database,
        app,
        s.wait.connect_timeout,
    )
    .await
    .map_err(|e| {
        let dependency = target_label(&s.postgres);
        match e.class() {
            Class::Refused => Error::Refused {
                dependency,
                reason: e.to_string(),
            },
            _ => Error::Unusable {
                dependency,
                reason: e.to_string(),
            },
        }
    })
}

fn target_label(pg: &PostgresSettings) -> String {
    format!(
        "PostgreSQL at {}:{} (database {:?})",
        pg.host, pg.port, pg.database
    )
}

async fn read(client: &Client, m: &MigrateSettings) -> Result<DbState> {
    history::read_state(client, &m.history, &m.seeds_table, !m.set.seeds.is_empty())
        .await
        .map_err(|e| Error::Postgres {
            action: format!("read the history table {}", m.history.plain()),
            reason: describe(&e),
        })
}

fn pending_names(set: &MigrationSet, plan: &Plan) -> Vec<String> {
    plan.migrations
        .iter()
        .map(|&i| set.migrations[i].to_string())
        .chain(
            plan.seeds
                .iter()
                .map(|&i| format!("seed {}", set.seeds[i].name)),
        )
        .collect()
}

fn applied_version(db: &DbState) -> Option<i32> {
    db.migrations.iter().map(|a| a.version).max()
}

/// Waits for the dependencies, creates the database if missing, and applies whatever is
/// pending under the advisory lock. On an up-to-date database this is one connection and one
/// read: no lock, no writes.
pub async fn run(
    s: &Settings,
    m: &MigrateSettings,
    app: &str,
    deadline: Instant,
) -> Result<RunReport> {
    let ready = ready::wait_for_dependencies(s, app, deadline).await?;
    let mut report = RunReport {
        database: s.postgres.database.clone(),
        ..RunReport::default()
    };
    let check = if ready.on_target {
        ready.client
    } else {
        report.created =
            create::ensure_database(&ready.client, &s.postgres, m.db_owner.as_deref(), deadline)
                .await?;
        drop(ready.client);
        connect_target(s, app).await?
    };
    let state = read(&check, m).await?;
    let plan = history::plan(&m.set, &state)?;
    if !plan.future.is_empty() {
        warn!(future = ?plan.future, "the database has migrations newer than this set (a newer release?); continuing");
    }
    if plan.is_empty() {
        report.version = applied_version(&state);
        return Ok(report);
    }
    info!(
        pending = ?pending_names(&m.set, &plan),
        "pending work; taking the migration lock"
    );

    // The check connection becomes the dedicated lock connection: idle, no snapshot held.
    let key = lock::lock_key(&s.postgres.database, &m.history);
    let waited = lock::acquire(&check, key, m.lock_timeout).await?;
    report.lock_wait_ms = Some(waited.as_millis() as u64);
    if waited > Duration::from_millis(1) {
        info!(
            waited_ms = waited.as_millis() as u64,
            "acquired the migration lock after waiting"
        );
    } else {
        info!("acquired the migration lock");
    }
    let result = migrate_locked(s, m, app, &mut report).await;
    lock::release(&check, key).await;
    result.map(|()| report)
}

/// Under the lock: re-read (another runner may have finished meanwhile), then apply.
async fn migrate_locked(
    s: &Settings,
    m: &MigrateSettings,
    app: &str,
    report: &mut RunReport,
) -> Result<()> {
    let work = connect_target(s, app).await?;
    // PostgreSQL 14+: notice within a second that a killed runner's connection is gone, even
    // in the middle of a long statement, and roll back. Older servers lack it; harmless.
    let _ = work
        .batch_execute("SET client_connection_check_interval = 1000")
        .await;
    history::ensure_tables(&work, &m.history, &m.seeds_table)
        .await
        .map_err(|e| Error::Postgres {
            action: format!(
                "create the history tables {} and {}",
                m.history.plain(),
                m.seeds_table.plain()
            ),
            reason: describe(&e),
        })?;
    let state = read(&work, m).await?;
    let plan = history::plan(&m.set, &state)?;
    if plan.is_empty() {
        info!("another runner applied everything while we waited; nothing left to do");
        report.version = applied_version(&state);
        return Ok(());
    }
    let migrations: Vec<_> = plan
        .migrations
        .iter()
        .map(|&i| &m.set.migrations[i])
        .collect();
    let seeds: Vec<_> = plan.seeds.iter().map(|&i| &m.set.seeds[i]).collect();
    report.migrations = apply::migrations(
        &work,
        &m.history,
        &migrations,
        !seeds.is_empty(),
        m.repair_invalid_indexes,
    )
    .await?;
    report.version = migrations
        .last()
        .map(|m| m.version())
        .max(applied_version(&state));
    report.seeds = apply::seeds(&work, &m.seeds_table, &seeds).await?;
    Ok(())
}

/// Waits for the dependencies, then until the database holds every migration and seed of the
/// set (applied by someone else), applying nothing. Divergence ends the wait with exit 6.
pub async fn wait(
    s: &Settings,
    m: &MigrateSettings,
    app: &str,
    deadline: Instant,
) -> Result<RunReport> {
    let started = Instant::now();
    let ready = ready::wait_for_dependencies(s, app, deadline).await?;
    let mut client = ready.on_target.then_some(ready.client);
    let poll = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };
    let mut rng = Rng::new();
    let mut attempt = 0;
    let mut next_report = Instant::now();
    loop {
        if client.is_none() {
            match postgres::connect(
                &s.postgres,
                &s.postgres.database,
                app,
                s.wait.connect_timeout,
            )
            .await
            {
                Ok(c) => client = Some(c),
                Err(e) if matches!(e.class(), Class::MissingDatabase | Class::Transient) => {}
                Err(e) => {
                    return Err(Error::Refused {
                        dependency: target_label(&s.postgres),
                        reason: e.to_string(),
                    });
                }
            }
        }
        let missing = match &client {
            None => format!("database {:?} (not created yet)", s.postgres.database),
            Some(c) => match read(c, m).await {
                Ok(state) => {
                    let plan = history::plan(&m.set, &state)?;
                    if plan.is_empty() {
                        return Ok(RunReport {
                            database: s.postgres.database.clone(),
                            version: applied_version(&state),
                            ..RunReport::default()
                        });
                    }
                    pending_names(&m.set, &plan).join(", ")
                }
                Err(e) => {
                    if c.is_closed() {
                        client = None;
                    }
                    e.to_string()
                }
            },
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::SchemaTimeout {
                waited: started.elapsed(),
                missing,
            });
        }
        if now >= next_report {
            info!(%missing, "waiting for another runner to apply migrations");
            next_report = now + Duration::from_secs(5);
        }
        attempt += 1;
        tokio::time::sleep(poll.delay(attempt, &mut rng).min(deadline - now)).await;
    }
}

/// One migration or seed in a status report.
#[derive(Debug, Clone, Serialize)]
pub struct StatusEntry {
    /// `V1__create_users` or a seed file name.
    pub name: String,
    /// `applied`, `pending`, `edited` (checksum differs), `missing` (applied, no file) or
    /// `future` (applied by a newer release).
    pub state: &'static str,
    /// When it was applied, if it was.
    pub applied_on: Option<String>,
}

/// What `status` prints.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The application's database.
    pub database: String,
    /// Whether it exists.
    pub exists: bool,
    /// Highest applied migration version.
    pub applied_version: Option<i32>,
    /// Highest version in the set.
    pub target_version: Option<i32>,
    /// Checksum of the whole set.
    pub migration_set_checksum: String,
    /// Migrations, in version order (set and database merged).
    pub migrations: Vec<StatusEntry>,
    /// Seeds, in name order.
    pub seeds: Vec<StatusEntry>,
}

/// Reads the database and compares it with the set; changes nothing.
pub async fn status(
    s: &Settings,
    m: &MigrateSettings,
    app: &str,
    deadline: Instant,
) -> Result<StatusReport> {
    let ready = ready::wait_for_dependencies(s, app, deadline).await?;
    let state = if ready.on_target {
        read(&ready.client, m).await?
    } else {
        DbState::default()
    };
    Ok(status_report(s, m, ready.on_target, &state))
}

fn status_report(s: &Settings, m: &MigrateSettings, exists: bool, db: &DbState) -> StatusReport {
    let mut migrations: Vec<(i32, StatusEntry)> = m
        .set
        .migrations
        .iter()
        .map(|mig| {
            let applied = db.migrations.iter().find(|a| a.version == mig.version());
            let state = match applied {
                None => "pending",
                Some(a) if a.checksum != mig.checksum() || a.name != mig.name() => "edited",
                Some(_) => "applied",
            };
            (
                mig.version(),
                StatusEntry {
                    name: mig.to_string(),
                    state,
                    applied_on: applied.map(|a| a.applied_on.clone()),
                },
            )
        })
        .collect();
    let newest = m.set.target_version();
    for a in &db.migrations {
        if !m.set.migrations.iter().any(|x| x.version() == a.version) {
            let state = if newest.is_none_or(|n| a.version > n) {
                "future"
            } else {
                "missing"
            };
            migrations.push((
                a.version,
                StatusEntry {
                    name: format!("V{}__{}", a.version, a.name),
                    state,
                    applied_on: Some(a.applied_on.clone()),
                },
            ));
        }
    }
    migrations.sort_by_key(|(v, _)| *v);
    let seeds = m
        .set
        .seeds
        .iter()
        .map(|seed| StatusEntry {
            name: seed.name.clone(),
            state: if db
                .seeds
                .iter()
                .any(|(n, c)| *n == seed.name && *c == seed.checksum)
            {
                "applied"
            } else {
                "pending"
            },
            applied_on: None,
        })
        .collect();
    StatusReport {
        database: s.postgres.database.clone(),
        exists,
        applied_version: applied_version(db),
        target_version: m.set.target_version(),
        migration_set_checksum: m.set.checksum(),
        migrations: migrations.into_iter().map(|(_, e)| e).collect(),
        seeds,
    }
}

impl StatusReport {
    /// A human-readable table.
    pub fn text(&self) -> String {
        let mut out = format!(
            "database {:?}{}: applied version {}, target version {}, set checksum {}\n",
            self.database,
            if self.exists {
                ""
            } else {
                " (does not exist yet)"
            },
            self.applied_version.map_or("-".into(), |v| v.to_string()),
            self.target_version.map_or("-".into(), |v| v.to_string()),
            self.migration_set_checksum
        );
        for (title, entries) in [("migrations", &self.migrations), ("seeds", &self.seeds)] {
            out.push_str(&format!("{title}:\n"));
            if entries.is_empty() {
                out.push_str("  (none)\n");
            }
            for e in entries {
                out.push_str(&format!(
                    "  {:<8} {:<40} {}\n",
                    e.state,
                    e.name,
                    e.applied_on.as_deref().unwrap_or("")
                ));
            }
        }
        out
    }
}
