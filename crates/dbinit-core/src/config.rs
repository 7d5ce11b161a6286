//! Configuration: flags > environment > YAML file > defaults, validated once.
//!
//! clap reads flags and their `env` fallbacks as raw strings; [`resolve`] merges them with the
//! optional `--config` file and turns everything into typed [`Settings`]. Parsing happens here,
//! not in clap, so every error names the environment variable *and* the flag an operator set.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::backoff::Backoff;
use crate::secret::Secret;

/// A configuration error: always exit code 2, always naming the setting.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// PostgreSQL connection options, as an operator sets them in a pod spec.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "PostgreSQL")]
pub struct PostgresArgs {
    /// Connection URL (postgres://user:password@host:port/db?sslmode=require); the
    /// POSTGRES_* settings fill in what it leaves out and must agree with what it says
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<Secret>,
    /// Server host name or address [default: localhost]
    #[arg(
        long,
        env = "POSTGRES_HOST",
        value_name = "HOST",
        hide_env_values = true
    )]
    pub postgres_host: Option<String>,
    /// Server port [default: 5432]
    #[arg(
        long,
        env = "POSTGRES_PORT",
        value_name = "PORT",
        hide_env_values = true
    )]
    pub postgres_port: Option<String>,
    /// User to connect as [default: postgres]
    #[arg(
        long,
        env = "POSTGRES_USER",
        value_name = "USER",
        hide_env_values = true
    )]
    pub postgres_user: Option<String>,
    /// Password (prefer POSTGRES_PASSWORD_FILE with a mounted Secret)
    #[arg(
        long,
        env = "POSTGRES_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub postgres_password: Option<Secret>,
    /// File holding the password, e.g. a mounted Secret; one trailing newline is ignored
    #[arg(
        long,
        env = "POSTGRES_PASSWORD_FILE",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub postgres_password_file: Option<PathBuf>,
    /// The application's database, created if missing [default: agentic_deals]
    #[arg(long, env = "POSTGRES_DB", value_name = "NAME", hide_env_values = true)]
    pub postgres_db: Option<String>,
    /// Database used to check readiness and to create the application's database [default: postgres]
    #[arg(
        long,
        env = "POSTGRES_MAINTENANCE_DB",
        value_name = "NAME",
        hide_env_values = true
    )]
    pub postgres_maintenance_db: Option<String>,
    /// TLS: disable, prefer (encrypt if offered), require (encrypt, no verification),
    /// verify-full (encrypt, verify chain and host name) [default: prefer]
    #[arg(
        long,
        env = "POSTGRES_SSLMODE",
        value_name = "MODE",
        hide_env_values = true
    )]
    pub postgres_sslmode: Option<String>,
    /// PEM file of CA certificates for verify-full [default: the system roots]
    #[arg(
        long,
        env = "POSTGRES_SSLROOTCERT",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub postgres_sslrootcert: Option<PathBuf>,
}

/// Redis connection options. Redis is checked only when one of them is set.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Redis (checked only when configured)")]
pub struct RedisArgs {
    /// Redis URL: redis://[user:password@]host[:port][/db], or rediss:// for TLS
    #[arg(long, env = "REDIS_URL", value_name = "URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,
    /// Redis host (alternative to REDIS_URL)
    #[arg(long, env = "REDIS_HOST", value_name = "HOST", hide_env_values = true)]
    pub redis_host: Option<String>,
    /// Redis port [default: 6379]
    #[arg(long, env = "REDIS_PORT", value_name = "PORT", hide_env_values = true)]
    pub redis_port: Option<String>,
    /// Redis ACL user name (omit for requirepass)
    #[arg(
        long,
        env = "REDIS_USERNAME",
        value_name = "USER",
        hide_env_values = true
    )]
    pub redis_username: Option<String>,
    /// Redis password
    #[arg(
        long,
        env = "REDIS_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub redis_password: Option<Secret>,
    /// File holding the Redis password, e.g. a mounted Secret
    #[arg(
        long,
        env = "REDIS_PASSWORD_FILE",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub redis_password_file: Option<PathBuf>,
    /// Redis logical database number [default: 0]
    #[arg(long, env = "REDIS_DB", value_name = "N", hide_env_values = true)]
    pub redis_db: Option<String>,
}

/// How long and how often to wait for dependencies, and how to log.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Waiting and logging")]
pub struct WaitArgs {
    /// Optional YAML file with the same settings; flags and environment win over it
    #[arg(
        long = "config",
        env = "DBINIT_CONFIG",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub config_file: Option<PathBuf>,
    /// Overall deadline for PostgreSQL and Redis to become ready, e.g. 90s, 5m [default: 300s]
    #[arg(
        long,
        env = "DBINIT_TIMEOUT",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub timeout: Option<String>,
    /// Limit for one connection attempt [default: 5s]
    #[arg(
        long,
        env = "DBINIT_CONNECT_TIMEOUT",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub connect_timeout: Option<String>,
    /// First retry delay; doubles after each failure [default: 100ms]
    #[arg(
        long,
        env = "DBINIT_BACKOFF_INITIAL",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub backoff_initial: Option<String>,
    /// Largest retry delay [default: 2s]
    #[arg(
        long,
        env = "DBINIT_BACKOFF_MAX",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub backoff_max: Option<String>,
    /// Log format: text or json (filter with RUST_LOG) [default: text]
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_name = "FORMAT",
        hide_env_values = true
    )]
    pub log_format: Option<String>,
}

/// All connection and wait options; every command flattens this.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub redis: RedisArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub wait: WaitArgs,
}

/// TLS policy towards PostgreSQL, with libpq's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, without verification (libpq's default).
    Prefer,
    /// TLS or fail, without verification.
    Require,
    /// TLS, certificate chain and host name verified.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => Self::Disable,
            "prefer" | "allow" => Self::Prefer,
            "require" => Self::Require,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

impl LogFormat {
    /// Parses `text` or `json`; the early read done before the rest of the configuration.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "text" | "plain" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Where and how to reach PostgreSQL, validated.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Role to connect as.
    pub user: String,
    /// Password, when the server asks for one.
    pub password: Option<Secret>,
    /// The application's database.
    pub database: String,
    /// Where readiness is checked and `CREATE DATABASE` is issued.
    pub maintenance_database: String,
    /// TLS policy.
    pub sslmode: SslMode,
    /// CA bundle for `verify-full`.
    pub sslrootcert: Option<PathBuf>,
}

/// Where and how to reach Redis, validated.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS (`rediss://`).
    pub tls: bool,
    /// ACL user name.
    pub username: Option<String>,
    /// Password for AUTH.
    pub password: Option<Secret>,
    /// Logical database selected after AUTH.
    pub db: i64,
}

/// Deadline and retry policy for dependency waits.
#[derive(Debug, Clone, Copy)]
pub struct WaitSettings {
    /// Overall deadline, from process start.
    pub timeout: Duration,
    /// Limit of one connection attempt.
    pub connect_timeout: Duration,
    /// Delays between attempts.
    pub backoff: Backoff,
}

/// The whole validated configuration that inner code works with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// PostgreSQL target.
    pub postgres: PostgresSettings,
    /// Redis target, if configured.
    pub redis: Option<RedisSettings>,
    /// Deadline and backoff.
    pub wait: WaitSettings,
    /// Log format.
    pub log_format: LogFormat,
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
}

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
    /// Same as LOG_FORMAT.
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
    pub fn load(path: &Path) -> Result<Self> {
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

/// A value with the names an operator knows it by, for error messages.
struct Named<'a, T> {
    value: Option<T>,
    label: &'a str,
}

/// The first of the flag/env value and the file value, with the label of its origin.
fn pick<'a, T>(arg: Option<T>, env: &'a str, file: Option<T>, file_key: &'a str) -> Named<'a, T> {
    match arg {
        Some(v) => Named {
            value: Some(v),
            label: env,
        },
        None => Named {
            value: file,
            label: file_key,
        },
    }
}

/// The flag of an environment variable: `DBINIT_LOCK_TIMEOUT` -> `--lock-timeout`,
/// `POSTGRES_PORT` -> `--postgres-port` (the naming every option follows).
fn flag_of(env: &str) -> String {
    let name = env.strip_prefix("DBINIT_").unwrap_or(env);
    format!("--{}", name.to_ascii_lowercase().replace('_', "-"))
}

/// `POSTGRES_PORT (--postgres-port)` or `postgres.port in the config file`.
fn describe(label: &str) -> String {
    if label.contains('.') || label.chars().any(|c| c.is_ascii_lowercase()) {
        format!("{label} in the config file")
    } else {
        format!("{label} ({})", flag_of(label))
    }
}

fn invalid(label: &str, value: &str, why: &str) -> ConfigError {
    ConfigError(format!("invalid {}: {value:?} {why}", describe(label)))
}

fn parse_port(label: &str, raw: &str) -> Result<u16> {
    match raw.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(invalid(label, raw, "is not a TCP port (1-65535)")),
    }
}

/// Parses `250ms`, `3s`, `5m`, `1h`, or a bare number of seconds (`30`).
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let s = raw.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// A duration option given by flag or environment variable `env`: `default` when unset; a bad
/// value is an error naming the variable and its flag.
pub fn duration_setting(raw: Option<String>, env: &str, default: Duration) -> Result<Duration> {
    duration(
        Named {
            value: raw,
            label: env,
        },
        default,
    )
}

fn duration(n: Named<'_, String>, default: Duration) -> Result<Duration> {
    match n.value {
        None => Ok(default),
        Some(raw) => parse_duration(&raw).ok_or_else(|| {
            invalid(
                n.label,
                &raw,
                "is not a duration (examples: 500ms, 30s, 5m, or plain seconds)",
            )
        }),
    }
}

fn nonempty(n: Named<'_, String>) -> Result<Option<String>> {
    match n.value {
        Some(v) if v.is_empty() => Err(ConfigError(format!(
            "{} is set but empty",
            describe(n.label)
        ))),
        v => Ok(v),
    }
}

/// Reads a password file; one trailing newline (as `echo` and most editors leave) is dropped.
fn read_secret_file(label: &str, path: &Path) -> Result<Secret> {
    let mut s = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "{}: cannot read password file {}: {e}",
            describe(label),
            path.display()
        ))
    })?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    Ok(Secret::new(s))
}

/// One password from a literal, a file, or neither — never both.
fn password(
    literal: Option<Secret>,
    literal_env: &str,
    file: Named<'_, PathBuf>,
) -> Result<Option<Secret>> {
    match (literal, file.value) {
        (Some(_), Some(_)) => Err(ConfigError(format!(
            "{literal_env} and {} are both set; use one",
            describe(file.label)
        ))),
        (Some(p), None) => Ok(Some(p)),
        (None, Some(path)) => read_secret_file(file.label, &path).map(Some),
        (None, None) => Ok(None),
    }
}

/// What a `DATABASE_URL` says; fields it leaves out are `None`.
#[derive(Debug, Default, PartialEq)]
struct UrlParts {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<Secret>,
    database: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<PathBuf>,
}

fn parse_database_url(url: &Secret) -> Result<UrlParts> {
    let raw = url.expose();
    let bad = |why: &str| {
        ConfigError(format!(
            "invalid DATABASE_URL (--database-url): {why} (expected postgres://user:password@host:port/database?sslmode=...)"
        ))
    };
    if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
        return Err(bad("not a postgres:// or postgresql:// URL"));
    }
    // sslmode values libpq knows but tokio-postgres does not (verify-full) are taken out of
    // the query first; the rest is parsed by tokio-postgres, which percent-decodes.
    let (base, query) = raw.split_once('?').unwrap_or((raw, ""));
    let mut parts = UrlParts::default();
    let mut rest = Vec::new();
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        match kv.split_once('=') {
            Some(("sslmode", v)) => parts.sslmode = Some(v.to_string()),
            Some(("sslrootcert", v)) => parts.sslrootcert = Some(PathBuf::from(v)),
            _ => rest.push(kv),
        }
    }
    let rebuilt = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    // tokio-postgres' parse error never echoes the input; its source names the bad part.
    let cfg: tokio_postgres::Config = rebuilt.parse().map_err(|e: tokio_postgres::Error| {
        let detail = std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string());
        bad(&crate::secret::scrub(&detail, [url]))
    })?;
    if cfg.get_hosts().len() > 1 {
        return Err(bad("more than one host is not supported"));
    }
    parts.host = cfg.get_hosts().first().map(|h| match h {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    });
    parts.port = cfg.get_ports().first().copied();
    parts.user = cfg.get_user().map(str::to_string);
    parts.password = cfg
        .get_password()
        .map(|p| Secret::new(String::from_utf8_lossy(p).into_owned()));
    parts.database = cfg.get_dbname().map(str::to_string);
    Ok(parts)
}

/// `explicit` from POSTGRES_X, `from_url` from DATABASE_URL: they must agree when both exist.
fn agree<T: PartialEq + std::fmt::Display>(
    explicit: Option<T>,
    label: &str,
    from_url: Option<T>,
) -> Result<Option<T>> {
    match (explicit, from_url) {
        (Some(a), Some(b)) if a != b => Err(ConfigError(format!(
            "DATABASE_URL and {} disagree ({b} vs {a}); set one of them",
            describe(label)
        ))),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

fn resolve_postgres(a: PostgresArgs, f: FilePostgres) -> Result<PostgresSettings> {
    let url = match &a.database_url {
        Some(u) => parse_database_url(u)?,
        None => UrlParts::default(),
    };
    let port = match pick(a.postgres_port, "POSTGRES_PORT", f.port, "postgres.port") {
        Named {
            value: Some(raw),
            label,
        } => Some(parse_port(label, &raw)?),
        _ => None,
    };
    let host = nonempty(pick(
        a.postgres_host,
        "POSTGRES_HOST",
        f.host,
        "postgres.host",
    ))?;
    let user = nonempty(pick(
        a.postgres_user,
        "POSTGRES_USER",
        f.user,
        "postgres.user",
    ))?;
    let database = nonempty(pick(
        a.postgres_db,
        "POSTGRES_DB",
        f.database,
        "postgres.database",
    ))?;
    let maintenance_database = nonempty(pick(
        a.postgres_maintenance_db,
        "POSTGRES_MAINTENANCE_DB",
        f.maintenance_database,
        "postgres.maintenance_database",
    ))?;
    let sslmode_raw = pick(
        a.postgres_sslmode,
        "POSTGRES_SSLMODE",
        f.sslmode,
        "postgres.sslmode",
    );
    let sslmode_label = sslmode_raw.label;
    let sslmode = match agree(sslmode_raw.value, sslmode_label, url.sslmode)? {
        None => SslMode::Prefer,
        Some(raw) => SslMode::parse(&raw).ok_or_else(|| {
            invalid(
                sslmode_label,
                &raw,
                "is not an sslmode (disable, prefer, require, verify-full)",
            )
        })?,
    };
    let sslrootcert = pick(
        a.postgres_sslrootcert,
        "POSTGRES_SSLROOTCERT",
        f.sslrootcert,
        "postgres.sslrootcert",
    )
    .value
    .or(url.sslrootcert);
    if let Some(p) = &sslrootcert
        && !p.is_file()
    {
        return Err(ConfigError(format!(
            "POSTGRES_SSLROOTCERT (--postgres-sslrootcert): no such file {}",
            p.display()
        )));
    }
    let password = password(
        a.postgres_password,
        "POSTGRES_PASSWORD (--postgres-password)",
        pick(
            a.postgres_password_file,
            "POSTGRES_PASSWORD_FILE",
            f.password_file,
            "postgres.password_file",
        ),
    )?;
    Ok(PostgresSettings {
        host: agree(host, "POSTGRES_HOST", url.host)?.unwrap_or_else(|| "localhost".into()),
        port: agree(port, "POSTGRES_PORT", url.port)?.unwrap_or(5432),
        user: agree(user, "POSTGRES_USER", url.user)?.unwrap_or_else(|| "postgres".into()),
        // An explicit password wins over one in the URL: the Secret is the source of truth.
        password: password.or(url.password),
        database: agree(database, "POSTGRES_DB", url.database)?
            .unwrap_or_else(|| "agentic_deals".into()),
        maintenance_database: maintenance_database.unwrap_or_else(|| "postgres".into()),
        sslmode,
        sslrootcert,
    })
}

fn resolve_redis(a: RedisArgs, f: Option<FileRedis>) -> Result<Option<RedisSettings>> {
    let file_given = f.is_some();
    let f = f.unwrap_or_default();
    let host = nonempty(pick(a.redis_host, "REDIS_HOST", f.host, "redis.host"))?;
    let port = pick(a.redis_port, "REDIS_PORT", f.port, "redis.port");
    let db = pick(a.redis_db, "REDIS_DB", f.db, "redis.db");
    let username = nonempty(pick(
        a.redis_username,
        "REDIS_USERNAME",
        f.username,
        "redis.username",
    ))?;
    let password = password(
        a.redis_password,
        "REDIS_PASSWORD (--redis-password)",
        pick(
            a.redis_password_file,
            "REDIS_PASSWORD_FILE",
            f.password_file,
            "redis.password_file",
        ),
    )?;
    let port = match port.value {
        Some(raw) => Some(parse_port(port.label, &raw)?),
        None => None,
    };
    let db = match db.value {
        Some(raw) => Some(match raw.trim().parse::<i64>() {
            Ok(n) if n >= 0 => n,
            _ => {
                return Err(invalid(
                    db.label,
                    &raw,
                    "is not a database number (0, 1, ...)",
                ));
            }
        }),
        None => None,
    };
    if let Some(url) = a.redis_url {
        if host.is_some() {
            return Err(ConfigError(
                "REDIS_URL and REDIS_HOST are both set; use one".into(),
            ));
        }
        let mut r = parse_redis_url(&url)?;
        r.port = port.map_or(Ok(r.port), |p| {
            agree(Some(p), "REDIS_PORT", Some(r.port)).map(|p| p.unwrap_or(r.port))
        })?;
        r.password = password.or(r.password);
        r.username = username.or(r.username);
        if let Some(d) = db {
            r.db = d;
        }
        return Ok(Some(r));
    }
    let Some(host) = host else {
        if file_given || port.is_some() || password.is_some() || db.is_some() {
            return Err(ConfigError(
                "Redis settings are given but no REDIS_HOST (--redis-host) or REDIS_URL (--redis-url)"
                    .into(),
            ));
        }
        return Ok(None);
    };
    Ok(Some(RedisSettings {
        host,
        port: port.unwrap_or(6379),
        tls: f.tls.unwrap_or(false),
        username,
        password,
        db: db.unwrap_or(0),
    }))
}

fn parse_redis_url(url: &Secret) -> Result<RedisSettings> {
    let bad = |why: &str| {
        ConfigError(format!(
            "invalid REDIS_URL (--redis-url): {why} (expected redis://[user:password@]host[:port][/db] or rediss://...)"
        ))
    };
    let raw = url.expose();
    let (tls, rest) = if let Some(r) = raw.strip_prefix("rediss://") {
        (true, r)
    } else if let Some(r) = raw.strip_prefix("redis://") {
        (false, r)
    } else {
        return Err(bad("not a redis:// or rediss:// URL"));
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let user = percent_decode(user).ok_or_else(|| bad("bad percent-encoding"))?;
            let pass = percent_decode(pass).ok_or_else(|| bad("bad percent-encoding"))?;
            (
                (!user.is_empty()).then_some(user),
                (!pass.is_empty()).then(|| Secret::new(pass)),
            )
        }
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h.split_once(']').ok_or_else(|| bad("unclosed [ in host"))?;
        (h.to_string(), p.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
        None => 6379,
    };
    let db = match path {
        "" => 0,
        p => p
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad("the path must be a database number"))?,
    };
    Ok(RedisSettings {
        host,
        port,
        tls,
        username,
        password,
        db,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Merges flags/env with the optional file and defaults into validated [`Settings`].
pub fn resolve(args: ConnArgs) -> Result<Settings> {
    let file = match &args.wait.config_file {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let w = args.wait;
    let log_format = match pick(w.log_format, "LOG_FORMAT", file.log_format, "log_format") {
        Named {
            value: Some(raw),
            label,
        } => LogFormat::parse(&raw).ok_or_else(|| invalid(label, &raw, "is not text or json"))?,
        _ => LogFormat::Text,
    };
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
    Ok(Settings {
        postgres: resolve_postgres(args.postgres, file.postgres)?,
        redis: resolve_redis(args.redis, file.redis)?,
        wait,
        log_format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pg(f: impl FnOnce(&mut PostgresArgs)) -> ConnArgs {
        let mut a = ConnArgs::default();
        f(&mut a.postgres);
        a
    }

    fn err(a: ConnArgs) -> String {
        resolve(a).expect_err("should fail").0
    }

    #[test]
    fn defaults_follow_the_application_contract() {
        let s = resolve(ConnArgs::default()).expect("defaults");
        assert_eq!(s.postgres.host, "localhost");
        assert_eq!(s.postgres.port, 5432);
        assert_eq!(s.postgres.user, "postgres");
        assert_eq!(s.postgres.database, "agentic_deals");
        assert_eq!(s.postgres.maintenance_database, "postgres");
        assert_eq!(s.postgres.sslmode, SslMode::Prefer);
        assert!(s.redis.is_none(), "redis is checked only when configured");
        assert_eq!(s.wait.timeout, Duration::from_secs(300));
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: Vec<(ConnArgs, &str)> = vec![
            (
                pg(|p| p.postgres_port = Some("abc".into())),
                "POSTGRES_PORT (--postgres-port)",
            ),
            (
                pg(|p| p.postgres_port = Some("70000".into())),
                "POSTGRES_PORT",
            ),
            (
                pg(|p| p.postgres_sslmode = Some("maybe".into())),
                "POSTGRES_SSLMODE",
            ),
            (pg(|p| p.postgres_host = Some("".into())), "POSTGRES_HOST"),
            (
                pg(|p| p.postgres_password_file = Some("/nonexistent/pw".into())),
                "POSTGRES_PASSWORD_FILE",
            ),
            (
                pg(|p| {
                    p.database_url = Some(Secret::new("postgres://a@db1/x"));
                    p.postgres_host = Some("db2".into());
                }),
                "POSTGRES_HOST",
            ),
            (
                pg(|p| p.database_url = Some(Secret::new("mysql://a@b/c"))),
                "DATABASE_URL",
            ),
            (
                {
                    let mut a = ConnArgs::default();
                    a.wait.timeout = Some("forever".into());
                    a
                },
                "DBINIT_TIMEOUT (--timeout)",
            ),
            (
                {
                    let mut a = ConnArgs::default();
                    a.wait.log_format = Some("xml".into());
                    a
                },
                "LOG_FORMAT",
            ),
            (
                {
                    let mut a = ConnArgs::default();
                    a.redis.redis_host = Some("r".into());
                    a.redis.redis_port = Some("x".into());
                    a
                },
                "REDIS_PORT",
            ),
            (
                {
                    let mut a = ConnArgs::default();
                    a.redis.redis_url = Some(Secret::new("http://r"));
                    a
                },
                "REDIS_URL",
            ),
            (
                {
                    let mut a = ConnArgs::default();
                    a.redis.redis_url = Some(Secret::new("redis://r"));
                    a.redis.redis_host = Some("r".into());
                    a
                },
                "REDIS_HOST",
            ),
        ];
        for (args, needle) in cases {
            let msg = err(args);
            assert!(msg.contains(needle), "{msg:?} should name {needle}");
        }
    }

    #[test]
    fn database_url_fills_in_and_password_never_shows() {
        let a = pg(|p| {
            p.database_url = Some(Secret::new(
                "postgres://app:s3cr%40t@db.example:6543/deals?sslmode=verify-full",
            ))
        });
        let s = resolve(a).expect("valid url");
        assert_eq!(s.postgres.host, "db.example");
        assert_eq!(s.postgres.port, 6543);
        assert_eq!(s.postgres.user, "app");
        assert_eq!(s.postgres.database, "deals");
        assert_eq!(s.postgres.sslmode, SslMode::VerifyFull);
        assert_eq!(
            s.postgres.password.as_ref().map(Secret::expose),
            Some("s3cr@t")
        );
        assert!(!format!("{s:?}").contains("s3cr"));

        // A broken URL's error does not echo the password.
        let msg = err(pg(|p| {
            p.database_url = Some(Secret::new("postgres://app:hunter22@db:notaport/x"))
        }));
        assert!(
            msg.contains("DATABASE_URL") && !msg.contains("hunter22"),
            "{msg}"
        );
    }

    #[test]
    fn agreeing_url_and_variables_are_fine() {
        let a = pg(|p| {
            p.database_url = Some(Secret::new("postgres://app@db:5432/deals"));
            p.postgres_host = Some("db".into());
            p.postgres_port = Some("5432".into());
        });
        assert_eq!(resolve(a).expect("agree").postgres.host, "db");
    }

    #[test]
    fn password_file_drops_one_trailing_newline() {
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(b"pa ss\n").expect("write");
        let s = resolve(pg(|p| p.postgres_password_file = Some(f.path().into()))).expect("ok");
        assert_eq!(s.postgres.password.expect("pw").expose(), "pa ss");
    }

    #[test]
    fn password_and_password_file_conflict() {
        let f = tempfile::NamedTempFile::new().expect("tmp");
        let msg = err(pg(|p| {
            p.postgres_password = Some(Secret::new("x"));
            p.postgres_password_file = Some(f.path().into());
        }));
        assert!(msg.contains("POSTGRES_PASSWORD") && msg.contains("POSTGRES_PASSWORD_FILE"));
    }

    #[test]
    fn redis_url_parses() {
        let r = parse_redis_url(&Secret::new("rediss://u:p%3Aw@cache:6380/2")).expect("ok");
        assert_eq!(
            (r.host.as_str(), r.port, r.tls, r.db),
            ("cache", 6380, true, 2)
        );
        assert_eq!(r.username.as_deref(), Some("u"));
        assert_eq!(r.password.expect("pw").expose(), "p:w");
        let r = parse_redis_url(&Secret::new("redis://:pw@[::1]")).expect("ok");
        assert_eq!((r.host.as_str(), r.port, r.username), ("::1", 6379, None));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5m"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("forever"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("3 days"), None);
    }

    #[test]
    fn file_fills_gaps_and_flags_win() {
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        writeln!(
            f,
            "postgres:\n  host: filehost\n  port: 6000\n  database: filedb\nredis:\n  host: cache\ntimeout: 10s\nbackoff:\n  max: 1s\n"
        )
        .expect("write");
        let mut a = ConnArgs::default();
        a.wait.config_file = Some(f.path().into());
        a.postgres.postgres_port = Some("7000".into());
        let s = resolve(a).expect("ok");
        assert_eq!(s.postgres.host, "filehost");
        assert_eq!(s.postgres.port, 7000, "flag/env beats file");
        assert_eq!(s.postgres.database, "filedb");
        assert_eq!(s.redis.expect("redis").host, "cache");
        assert_eq!(s.wait.timeout, Duration::from_secs(10));
        assert_eq!(s.wait.backoff.max, Duration::from_secs(1));
    }

    #[test]
    fn file_errors_name_the_key() {
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        writeln!(f, "postgres:\n  port: abc\n").expect("write");
        let mut a = ConnArgs::default();
        a.wait.config_file = Some(f.path().into());
        let msg = err(a);
        assert!(msg.contains("postgres.port in the config file"), "{msg}");

        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        writeln!(f, "postgres:\n  hots: x\n").expect("write");
        let mut a = ConnArgs::default();
        a.wait.config_file = Some(f.path().into());
        assert!(err(a).contains("hots"));
    }
}
