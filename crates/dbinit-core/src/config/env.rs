//! The process environment beyond clap's options, read here and only here: who we are, the
//! system CA bundle, and how to log before the rest of the configuration is checked.

use std::path::PathBuf;

use crate::telemetry::{LogFormat, LogSettings};

/// What the environment says, typed; read once by [`Env::read`].
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `POD_NAME` (the Downward API), else `HOSTNAME` (a pod's name too): who we are in
    /// `pg_stat_activity`, in logs and as the Lease holder.
    pub host_identity: Option<String>,
    /// `SSL_CERT_FILE`: the CA bundle for `verify-full` when no `POSTGRES_SSLROOTCERT` is set.
    pub ssl_cert_file: Option<PathBuf>,
    /// `RUST_LOG`: the log filter.
    pub log_filter: Option<String>,
    /// `LOG_FORMAT` as given, for logging an error raised before the options are checked.
    pub log_format: Option<String>,
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
            log_filter: var("RUST_LOG"),
            log_format: var("LOG_FORMAT"),
        }
    }

    /// Logging for errors raised before the configuration resolves: `LOG_FORMAT` when it is
    /// valid, text otherwise.
    pub fn early_log(&self) -> LogSettings {
        LogSettings {
            format: self
                .log_format
                .as_deref()
                .and_then(LogFormat::parse)
                .unwrap_or_default(),
            filter: self.log_filter.clone(),
        }
    }
}
