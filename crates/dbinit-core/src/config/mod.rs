//! Configuration: flags > environment > YAML file > defaults, checked once.
//!
//! clap reads flags and their `env` fallbacks as raw strings ([`args`]); [`resolve`] merges
//! them with the optional `--config` file ([`file`]) and turns everything into typed
//! [`Settings`]. Parsing happens here, not in clap, so every error names the environment
//! variable *and* the flag an operator set. The rest of the environment is read in [`env`],
//! and nowhere else.

use std::time::Duration;

pub mod args;
pub mod env;
pub mod file;
#[cfg(test)]
mod forms_tests;
pub mod lint;
mod parse;
mod postgres_url;
mod redis_url;
#[cfg(test)]
mod tests;
mod tls_files;
mod tool;

pub use args::{ConnArgs, MigrateArgs, OutcomeArgs, ToolArgs};
pub use env::Env;
pub use lint::LintArgs;
pub use parse::duration_setting;
pub use tool::{Use, resolve_tool};

use file::FileConfig;
use parse::{Named, duration, invalid, pick, set};
use postgres_url::resolve_postgres;
use redis_url::resolve_redis;

use tokio::time::Instant;

use crate::migrate::adopt::settings::AdoptSettings;
use crate::migrate::session::SessionSettings;
use crate::migrate::set::{Layout, MigrationSet};
use crate::migrate::settings::MigrateSettings;
use crate::postgres::PostgresSettings;
use crate::postgres::sql::TableName;
use crate::ready::{Context, WaitSettings};
use crate::redis::RedisSettings;
use crate::retry::Backoff;
use crate::secret::Secret;
use crate::setting::ConfigError;
use crate::telemetry::{self, LogFormat, LogSettings};

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// The whole checked configuration that inner code works with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// PostgreSQL target.
    pub postgres: PostgresSettings,
    /// Redis target, if configured.
    pub redis: Option<RedisSettings>,
    /// Deadline and backoff.
    pub wait: WaitSettings,
    /// Log format and filter.
    pub log: LogSettings,
    /// `POD_NAME` or `HOSTNAME`, when set.
    pub host_identity: Option<String>,
    /// Things worth a warning that did not stop the run (a service-link port), logged once
    /// logging is set up.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Every secret in the configuration, for [`crate::secret::scrub`].
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut v: Vec<&Secret> = self.postgres.password.iter().collect();
        if let Some(r) = &self.redis {
            v.extend(r.password.iter());
        }
        v
    }

    /// The context of a command that started at `started`, as `identity`: the dependencies
    /// and how long to wait for them.
    pub fn context(&self, identity: &str, started: Instant) -> Context<'_> {
        Context::new(
            &self.postgres,
            self.redis.as_ref(),
            self.wait,
            identity,
            started,
        )
    }

    /// Who we are in `pg_stat_activity` and in logs: the pod name when there is one.
    pub fn identity(&self) -> String {
        self.host_identity
            .clone()
            .unwrap_or_else(|| format!("pid-{}", std::process::id()))
    }
}

/// Merges flags/env with the optional file and defaults into validated [`Settings`].
pub fn resolve(args: ConnArgs, env: &Env) -> Result<Settings> {
    let file = match &args.wait.config_file {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let w = args.wait;
    let backoff = Backoff {
        initial: duration(
            pick(
                w.backoff_initial,
                "DBINIT_BACKOFF_INITIAL",
                file.backoff.initial,
                "backoff.initial",
            ),
            Backoff::default().initial,
        )?,
        max: duration(
            pick(
                w.backoff_max,
                "DBINIT_BACKOFF_MAX",
                file.backoff.max,
                "backoff.max",
            ),
            Backoff::default().max,
        )?,
    };
    if backoff.max < backoff.initial {
        return Err(ConfigError(
            "DBINIT_BACKOFF_MAX (--backoff-max) is smaller than DBINIT_BACKOFF_INITIAL (--backoff-initial)"
                .into(),
        ));
    }
    let wait = WaitSettings {
        timeout: duration(
            pick(w.timeout, "DBINIT_TIMEOUT", file.timeout, "timeout"),
            Duration::from_secs(300),
        )?,
        connect_timeout: duration(
            pick(
                w.connect_timeout,
                "DBINIT_CONNECT_TIMEOUT",
                file.connect_timeout,
                "connect_timeout",
            ),
            Duration::from_secs(5),
        )?,
        backoff,
    };
    let mut warnings = Vec::new();
    let log = resolve_log(w.log_format, w.log, file.log_format, env, &mut warnings)?;
    Ok(Settings {
        postgres: resolve_postgres(args.postgres, file.postgres, env, &mut warnings)?,
        redis: resolve_redis(args.redis, file.redis, &mut warnings)?,
        wait,
        log,
        host_identity: env.host_identity.clone(),
        warnings,
    })
}

/// dbinit's own logging settings, `DBINIT_LOG_FORMAT` and `DBINIT_LOG`. The un-namespaced
/// `LOG_FORMAT` and `RUST_LOG` belong to the application sharing the pod spec: never fatal,
/// honoured only when dbinit understands them, with a warning either way.
fn resolve_log(
    format: Option<String>,
    filter: Option<String>,
    file_format: Option<String>,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<LogSettings> {
    let format = match pick(format, "DBINIT_LOG_FORMAT", file_format, "log_format") {
        Named {
            value: Some(raw),
            label,
        } => LogFormat::parse(&raw).ok_or_else(|| invalid(label, &raw, "is not text or json"))?,
        _ => match (&env.log_format, env.compat_log_format()) {
            (Some(raw), Some(f)) => {
                warnings.push(format!("using LOG_FORMAT={raw:?} for dbinit's logs too; set DBINIT_LOG_FORMAT to choose them separately"));
                f
            }
            (Some(raw), None) => {
                warnings.push(format!("ignoring LOG_FORMAT={raw:?} (not text or json; dbinit's own setting is DBINIT_LOG_FORMAT)"));
                LogFormat::Text
            }
            _ => LogFormat::Text,
        },
    };
    let filter = match set(filter) {
        Some(f) => {
            telemetry::check_filter(&f).map_err(|e| {
                invalid(
                    "DBINIT_LOG",
                    &f,
                    &format!(
                        "is not a log filter ({e}); examples: info, debug, warn,dbinit_core=debug"
                    ),
                )
            })?;
            Some(f)
        }
        None => match (&env.rust_log, env.compat_log_filter()) {
            (Some(_), Some(level)) => {
                warnings.push(format!("using RUST_LOG={level:?} for dbinit's logs too; set DBINIT_LOG to choose them separately"));
                Some(level)
            }
            (Some(_), None) => {
                warnings.push("ignoring RUST_LOG (it names other programs' modules; dbinit's own setting is DBINIT_LOG)".into());
                None
            }
            _ => None,
        },
    };
    Ok(LogSettings { format, filter })
}

/// Checks the migration options and loads the migration set.
pub fn resolve_migrate(a: MigrateArgs) -> Result<MigrateSettings> {
    let seeds_dir = set(a.seeds_dir.clone());
    let dir = match set(a.migrations_dir.clone()) {
        Some(d) => Some(d),
        // An image built FROM dbinit with `COPY migrations /migrations` switches by itself.
        None if a.image_migrations_dir.is_dir() => {
            tracing::info!(
                "migrations from {} (image directory)",
                a.image_migrations_dir.display()
            );
            Some(a.image_migrations_dir.clone())
        }
        None => None,
    };
    let layout = set(a.layout.clone())
        .map(|l| {
            Layout::parse(&l).ok_or_else(|| {
                ConfigError(format!(
                    "invalid DBINIT_LAYOUT (--layout): {l:?} is not a layout dbinit reads (one of {})",
                    Layout::ALL.map(Layout::id).join(", ")
                ))
            })
        })
        .transpose()?;
    let migrations = match &dir {
        Some(d) => MigrationSet::from_dir(d, seeds_dir.as_deref(), layout)?,
        None => MigrationSet::embedded(layout)?,
    };
    tracing::info!(
        layout = %migrations.layout,
        detected = layout.is_none(),
        migrations = migrations.migrations.len(),
        "migration files"
    );
    migrate_settings(a, migrations)
}

/// Checks the migration options of tool mode: the tool applies the migrations, so dbinit's
/// own set is empty, and only seeds (`DBINIT_SEEDS_DIR`) are read. Neither the set built
/// into the binary nor `/migrations` is used: in an application's image that directory
/// may well hold the tool's own files.
pub fn resolve_migrate_tool(a: MigrateArgs) -> Result<MigrateSettings> {
    if set(a.migrations_dir.clone()).is_some() {
        return Err(ConfigError(
            "DBINIT_MIGRATIONS_DIR (--migrations-dir) names dbinit's own SQL migrations, but a migration command (or --tool) is set: the tool applies the migrations. For SQL seeds after the command, set DBINIT_SEEDS_DIR".into(),
        ));
    }
    let seeds = MigrationSet::seeds_only(set(a.seeds_dir.clone()).as_deref())?;
    migrate_settings(a, seeds)
}

/// The options every migration command shares, over the set it will use.
fn migrate_settings(a: MigrateArgs, migrations: MigrationSet) -> Result<MigrateSettings> {
    let lint = lint::resolve_lint(a.lint.clone())?;
    let lock_timeout = duration_setting(
        a.lock_timeout,
        "DBINIT_LOCK_TIMEOUT",
        Duration::from_secs(600),
    )?;
    let adopt = AdoptSettings::resolve(
        set(a.baseline_version),
        set(a.adopt_from),
        set(a.adopt_map),
        &migrations,
    )?;
    let session = SessionSettings {
        lock_timeout: duration_setting(
            a.migration_lock_timeout,
            "DBINIT_MIGRATION_LOCK_TIMEOUT",
            SessionSettings::default().lock_timeout,
        )?,
        statement_timeout: duration_setting(
            a.statement_timeout,
            "DBINIT_STATEMENT_TIMEOUT",
            Duration::ZERO,
        )?,
    };
    for mig in &migrations.migrations {
        crate::migrate::floor::declared(mig)
            .map_err(|e| ConfigError(format!("migration {mig}: {e}")))?;
    }
    Ok(MigrateSettings {
        adopt,
        set: migrations,
        history: TableName::parse(
            "DBINIT_HISTORY_TABLE (--history-table)",
            set(a.history_table)
                .as_deref()
                .unwrap_or("refinery_schema_history"),
        )?,
        seeds_table: TableName::parse(
            "DBINIT_SEEDS_TABLE (--seeds-table)",
            set(a.seeds_table)
                .as_deref()
                .unwrap_or("dbinit_seed_history"),
        )?,
        lock_timeout,
        session,
        db_owner: a.db_owner.filter(|o| !o.is_empty()),
        repair_invalid_indexes: a.repair_invalid_indexes,
        lint,
    })
}
