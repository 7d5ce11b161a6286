//! The optional YAML file named by `--config` / `DBINIT_CONFIG`: the same settings as the
//! environment, grouped; flags and environment win over it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::setting::ConfigError;

/// The optional YAML file. Keys mirror the environment variables, grouped; unknown keys are
/// errors, so a typo does not silently fall back to a default. Passwords only by file path.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `postgres:` section.
    #[serde(default)]
    pub postgres: FilePostgres,
    /// `redis:` section; presence enables the Redis check.
    pub redis: Option<FileRedis>,
    /// Same as DBINIT_TIMEOUT.
    pub timeout: Option<String>,
    /// Same as DBINIT_CONNECT_TIMEOUT.
    pub connect_timeout: Option<String>,
    /// `backoff:` section.
    #[serde(default)]
    pub backoff: FileBackoff,
    /// Same as DBINIT_LOG_FORMAT.
    pub log_format: Option<String>,
}

/// `postgres:` section of the YAML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct FilePostgres {
    pub host: Option<String>,
    pub port: Option<String>,
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    pub database: Option<String>,
    pub maintenance_database: Option<String>,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<PathBuf>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
}

/// `redis:` section of the YAML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct FileRedis {
    pub host: Option<String>,
    pub port: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub db: Option<String>,
    pub tls: Option<bool>,
    pub sslrootcert: Option<PathBuf>,
}

/// `backoff:` section of the YAML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct FileBackoff {
    pub initial: Option<String>,
    pub max: Option<String>,
}

impl FileConfig {
    /// Reads and parses the YAML file named by `--config`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "DBINIT_CONFIG (--config): cannot read {}: {e}",
                path.display()
            ))
        })?;
        serde_saphyr::from_str(&text).map_err(|e| {
            ConfigError(format!(
                "DBINIT_CONFIG (--config): invalid YAML in {}: {e}",
                path.display()
            ))
        })
    }
}
