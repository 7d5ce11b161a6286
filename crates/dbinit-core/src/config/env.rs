//! The process environment beyond clap's options, read here and only here: who we are, the
//! system CA bundle, the un-namespaced logging variables other programs in the same pod set
//! for themselves, and how to log before the rest of the configuration is checked.

use std::path::PathBuf;

use crate::telemetry::{LogFormat, LogSettings};
use crate::tool::files::ToolEnv;

/// What the environment says, typed; read once by [`Env::read`]. Empty values are unset.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `POD_NAME` (the Downward API), else `HOSTNAME` (a pod's name too): who we are in
    /// `pg_stat_activity`, in logs and as the Lease holder.
    pub host_identity: Option<String>,
    /// `SSL_CERT_FILE`: the CA bundle for `verify-full` when no `POSTGRES_SSLROOTCERT` is set.
    pub ssl_cert_file: Option<PathBuf>,
    /// `RUST_LOG`, which the application in the same pod usually sets for itself: honoured
    /// only when it is a plain level (`debug`), with a warning; ignored otherwise.
    pub rust_log: Option<String>,
    /// `LOG_FORMAT`, the application's too: honoured only when it is `text` or `json`, with a
    /// warning; ignored otherwise.
    pub log_format: Option<String>,
    /// `DBINIT_LOG_FORMAT` as given, for logging an error raised before the options are
    /// checked.
    pub dbinit_log_format: Option<String>,
    /// What migration tools read to find their files (`ALEMBIC_CONFIG`,
    /// `DBMATE_MIGRATIONS_DIR`, `DJANGO_SETTINGS_MODULE`, ..., `PATH`), for tool mode.
    pub tool: ToolEnv,
    /// The working directory, where a migration command runs and its tool looks for files.
    pub cwd: PathBuf,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Env {
    /// Reads the variables.
    pub fn read() -> Self {
        Self {
            host_identity: var("POD_NAME").or_else(|| var("HOSTNAME")),
            ssl_cert_file: var("SSL_CERT_FILE").map(PathBuf::from),
            rust_log: var("RUST_LOG"),
            log_format: var("LOG_FORMAT"),
            dbinit_log_format: var("DBINIT_LOG_FORMAT"),
            tool: ToolEnv {
                alembic_config: var("ALEMBIC_CONFIG"),
                dbmate_migrations_dir: var("DBMATE_MIGRATIONS_DIR"),
                dbmate_migrations_table: var("DBMATE_MIGRATIONS_TABLE"),
                django_settings_module: var("DJANGO_SETTINGS_MODULE"),
                pythonpath: var("PYTHONPATH"),
                virtual_env: var("VIRTUAL_ENV"),
                flyway_locations: var("FLYWAY_LOCATIONS"),
                flyway_table: var("FLYWAY_TABLE"),
                path: std::env::var_os("PATH").filter(|p| !p.is_empty()),
            },
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }

    /// `LOG_FORMAT` when dbinit understands it.
    pub fn compat_log_format(&self) -> Option<LogFormat> {
        self.log_format.as_deref().and_then(LogFormat::parse)
    }

    /// `RUST_LOG` when it is a plain level, which means the same to every program.
    pub fn compat_log_filter(&self) -> Option<String> {
        self.rust_log
            .as_deref()
            .map(str::trim)
            .filter(|l| {
                ["error", "warn", "info", "debug", "trace", "off"]
                    .contains(&l.to_ascii_lowercase().as_str())
            })
            .map(str::to_ascii_lowercase)
    }

    /// Logging for errors raised before the configuration resolves: `DBINIT_LOG_FORMAT` (or
    /// `LOG_FORMAT`) when it is valid, text otherwise; level info.
    pub fn early_log(&self) -> LogSettings {
        LogSettings {
            format: self
                .dbinit_log_format
                .as_deref()
                .and_then(LogFormat::parse)
                .or_else(|| self.compat_log_format())
                .unwrap_or_default(),
            filter: None,
        }
    }
}
