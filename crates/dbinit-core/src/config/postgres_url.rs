//! PostgreSQL settings: `DATABASE_URL` (or `DATABASE_URL_FILE`), merged with the
//! `POSTGRES_*` variables and the file's `postgres:` section, which fill in what the URL
//! leaves out and must agree with what it says.
//!
//! Every libpq connection parameter in the URL is either honoured or rejected with exit 2
//! naming it: a parameter that is silently dropped (a `search_path` in `options`) does damage
//! that shows up much later.

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::config::TargetSessionAttrs;

use super::args::PostgresArgs;
use super::env::Env;
use super::file::FilePostgres;
use super::parse::{
    Named, agree, describe, invalid, parse_port, password, percent_decode, pick, read_secret_file,
    service_link_warning, set,
};
use super::tls_files::{check_ca_file, check_client_cert};
use crate::postgres::{PostgresSettings, SslMode};
use crate::secret::Secret;
use crate::setting::ConfigError;

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// Parameters dbinit honours beyond those of the URL's authority and path.
const HONOURED: &str = "sslmode, sslrootcert, sslcert, sslkey, options, application_name, connect_timeout, target_session_attrs, host, port, user, password, dbname";

/// libpq parameters dbinit does not implement: rejected by name rather than ignored.
const NOT_SUPPORTED: &[&str] = &[
    "hostaddr",
    "passfile",
    "require_auth",
    "channel_binding",
    "client_encoding",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslnegotiation",
    "sslcompression",
    "sslpassword",
    "sslcertmode",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "load_balance_hosts",
];

/// What a `DATABASE_URL` says; fields it leaves out are `None`.
#[derive(Debug, Default, PartialEq)]
pub(super) struct UrlParts {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<Secret>,
    database: Option<String>,
    sslmode: Option<SslMode>,
    sslrootcert: Option<PathBuf>,
    sslcert: Option<PathBuf>,
    sslkey: Option<PathBuf>,
    options: Option<String>,
    application_name: Option<String>,
    connect_timeout: Option<Duration>,
    target_session_attrs: Option<TargetSessionAttrs>,
}

fn bad_url(why: &str) -> ConfigError {
    ConfigError(format!(
        "invalid DATABASE_URL (--database-url): {why} (expected postgres://user:password@host:port/database?sslmode=...)"
    ))
}

/// A parameter's value was wrong: names the parameter and what it accepts.
fn bad_param(name: &str, value: &str, accepted: &str) -> ConfigError {
    ConfigError(format!(
        "invalid DATABASE_URL (--database-url): {name}={value:?} is not {accepted}"
    ))
}

/// Splits a `DATABASE_URL` into its parts; errors never echo the URL (it holds a password).
pub(super) fn parse_database_url(url: &Secret) -> Result<UrlParts> {
    let raw = url.expose();
    if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
        return Err(bad_url("not a postgres:// or postgresql:// URL"));
    }
    // The parameters dbinit handles itself are taken out of the query first; the authority,
    // the path and the connection-target parameters are parsed by tokio-postgres.
    let (base, query) = raw.split_once('?').unwrap_or((raw, ""));
    // tokio-postgres keeps a broken escape as it is; libpq rejects it, and so do we.
    if percent_decode(base).is_none() {
        return Err(bad_url("bad percent-encoding"));
    }
    let mut parts = UrlParts::default();
    let mut rest = Vec::new();
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(bad_url("a query parameter without =value"));
        };
        let key = percent_decode(k).ok_or_else(|| bad_url("bad percent-encoding"))?;
        let value = || percent_decode(v).ok_or_else(|| bad_url("bad percent-encoding"));
        let path = |name: &str| -> Result<Option<PathBuf>> {
            let v = value()?;
            if v.is_empty() {
                return Err(bad_param(name, "", "a file path"));
            }
            Ok(Some(PathBuf::from(v)))
        };
        match key.as_str() {
            "host" | "port" | "user" | "password" | "dbname" => rest.push(kv),
            "sslmode" => {
                let v = value()?;
                parts.sslmode = Some(SslMode::parse(&v).ok_or_else(|| {
                    bad_param("sslmode", &v, &format!("an sslmode ({})", SslMode::FORMS))
                })?);
            }
            "sslrootcert" => parts.sslrootcert = path("sslrootcert")?,
            "sslcert" => parts.sslcert = path("sslcert")?,
            "sslkey" => parts.sslkey = path("sslkey")?,
            "options" => parts.options = Some(value()?),
            "application_name" => parts.application_name = Some(value()?),
            "connect_timeout" => {
                let v = value()?;
                // libpq: whole seconds; 0 (or negative) means wait forever, which dbinit's
                // own deadline makes meaningless, so it falls back to DBINIT_CONNECT_TIMEOUT.
                let secs: i64 = v.trim().parse().map_err(|_| {
                    bad_param(
                        "connect_timeout",
                        &v,
                        "a whole number of seconds (libpq's form)",
                    )
                })?;
                parts.connect_timeout =
                    (secs > 0).then(|| Duration::from_secs(secs.unsigned_abs().max(2)));
            }
            "target_session_attrs" => {
                let v = value()?;
                parts.target_session_attrs = Some(match v.as_str() {
                    "any" => TargetSessionAttrs::Any,
                    "read-write" => TargetSessionAttrs::ReadWrite,
                    "read-only" => TargetSessionAttrs::ReadOnly,
                    _ => {
                        return Err(bad_param(
                            "target_session_attrs",
                            &v,
                            "supported by dbinit (any, read-write, read-only)",
                        ));
                    }
                });
            }
            k if NOT_SUPPORTED.contains(&k) => {
                return Err(bad_url(&format!(
                    "the libpq parameter {k} is not supported by dbinit (it honours {HONOURED}); remove it"
                )));
            }
            k => {
                let shown =
                    if k.len() <= 40 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        format!("unknown parameter {k}")
                    } else {
                        "an unknown parameter".to_string()
                    };
                return Err(bad_url(&format!("{shown} (dbinit honours {HONOURED})")));
            }
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
        bad_url(&crate::secret::scrub(&detail, [url]))
    })?;
    if cfg.get_hosts().len() > 1 || cfg.get_ports().len() > 1 {
        return Err(bad_url(
            "more than one host is not supported; give one host",
        ));
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

/// `DATABASE_URL`, or the file `DATABASE_URL_FILE` names (a mounted Secret); not both.
fn database_url(a: &mut PostgresArgs) -> Result<Option<Secret>> {
    match (set(a.database_url.take()), set(a.database_url_file.take())) {
        (Some(_), Some(_)) => Err(ConfigError(
            "DATABASE_URL (--database-url) and DATABASE_URL_FILE (--database-url-file) are both set; use one of them".into(),
        )),
        (Some(u), None) => Ok(Some(u)),
        (None, Some(path)) => read_secret_file("DATABASE_URL_FILE", &path).map(Some),
        (None, None) => Ok(None),
    }
}

/// PostgreSQL limits names to 63 bytes (NAMEDATALEN - 1) and cuts longer ones silently.
fn identifier(label: &str, v: Option<String>) -> Result<Option<String>> {
    match v {
        Some(s) if s.len() > 63 => Err(invalid(
            label,
            &s,
            &format!(
                "is {} bytes long; PostgreSQL names are at most 63 bytes",
                s.len()
            ),
        )),
        v => Ok(v),
    }
}

/// The checked PostgreSQL settings; warnings (a service-link port) go to `warnings`.
pub(super) fn resolve_postgres(
    mut a: PostgresArgs,
    f: FilePostgres,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<PostgresSettings> {
    let url = match database_url(&mut a)? {
        Some(u) => parse_database_url(&u)?,
        None => UrlParts::default(),
    };
    let port = match pick(a.postgres_port, "POSTGRES_PORT", f.port, "postgres.port") {
        Named {
            value: Some(raw),
            label,
        } => {
            let p = parse_port(label, &raw)?;
            // A service link names some Service's address, not necessarily this database's:
            // an explicit DATABASE_URL port wins over it instead of conflicting with it.
            let used = !(p.service_link && url.port.is_some());
            if p.service_link {
                warnings.push(service_link_warning(label, &raw, p.value, used));
            }
            used.then_some(p.value)
        }
        _ => None,
    };
    let host = pick(a.postgres_host, "POSTGRES_HOST", f.host, "postgres.host").value;
    let user = identifier(
        "POSTGRES_USER",
        pick(a.postgres_user, "POSTGRES_USER", f.user, "postgres.user").value,
    )?;
    let database = identifier(
        "POSTGRES_DB",
        pick(
            a.postgres_db,
            "POSTGRES_DB",
            f.database,
            "postgres.database",
        )
        .value,
    )?;
    let maintenance_database = identifier(
        "POSTGRES_MAINTENANCE_DB",
        pick(
            a.postgres_maintenance_db,
            "POSTGRES_MAINTENANCE_DB",
            f.maintenance_database,
            "postgres.maintenance_database",
        )
        .value,
    )?;
    let sslmode_raw = pick(
        a.postgres_sslmode,
        "POSTGRES_SSLMODE",
        f.sslmode,
        "postgres.sslmode",
    );
    let explicit_sslmode = match sslmode_raw.value {
        None => None,
        Some(raw) => Some(SslMode::parse(&raw).ok_or_else(|| {
            invalid(
                sslmode_raw.label,
                &raw,
                &format!("is not an sslmode ({})", SslMode::FORMS),
            )
        })?),
    };
    let sslmode = agree(
        explicit_sslmode.map(SslModeName),
        sslmode_raw.label,
        url.sslmode.map(SslModeName),
    )?
    .map_or(SslMode::Prefer, |m| m.0);
    let file = |arg: Option<PathBuf>,
                env: &'static str,
                f: Option<PathBuf>,
                key: &'static str,
                from_url: Option<PathBuf>| {
        let n = pick(arg, env, f, key);
        match (n.value, from_url) {
            (Some(p), _) => (Some(p), describe(n.label)),
            (None, Some(p)) => (
                Some(p),
                format!("{} in DATABASE_URL", key.trim_start_matches("postgres.")),
            ),
            (None, None) => (None, describe(n.label)),
        }
    };
    let (sslrootcert, root_what) = file(
        a.postgres_sslrootcert,
        "POSTGRES_SSLROOTCERT",
        f.sslrootcert,
        "postgres.sslrootcert",
        url.sslrootcert,
    );
    if let Some(p) = &sslrootcert {
        check_ca_file(&root_what, p)?;
    }
    let (sslcert, cert_what) = file(
        a.postgres_sslcert,
        "POSTGRES_SSLCERT",
        f.sslcert,
        "postgres.sslcert",
        url.sslcert,
    );
    let (sslkey, key_what) = file(
        a.postgres_sslkey,
        "POSTGRES_SSLKEY",
        f.sslkey,
        "postgres.sslkey",
        url.sslkey,
    );
    let client_cert = match (sslcert, sslkey) {
        (Some(c), Some(k)) => {
            check_client_cert(&cert_what, &c, &key_what, &k)?;
            Some((c, k))
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError(format!(
                "{cert_what} is set but POSTGRES_SSLKEY (--postgres-sslkey) is not: a client certificate needs its private key"
            )));
        }
        (None, Some(_)) => {
            return Err(ConfigError(format!(
                "{key_what} is set but POSTGRES_SSLCERT (--postgres-sslcert) is not: a private key needs its client certificate"
            )));
        }
    };
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
        client_cert,
        options: url.options,
        application_name: url.application_name,
        connect_timeout: url.connect_timeout,
        target_session_attrs: url.target_session_attrs.unwrap_or(TargetSessionAttrs::Any),
        default_roots: env
            .ssl_cert_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt")),
    })
}

/// An sslmode that prints with libpq's name, for "disagree" messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SslModeName(SslMode);

impl std::fmt::Display for SslModeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}
