//! PostgreSQL settings: `DATABASE_URL`, merged with the `POSTGRES_*` variables and the
//! file's `postgres:` section, which fill in what the URL leaves out and must agree with what
//! it says.

use std::path::PathBuf;

use super::ConfigError;
use super::args::PostgresArgs;
use super::env::Env;
use super::file::FilePostgres;
use super::parse::{
    Named, agree, invalid, nonempty, parse_port, password, pick, service_link_warning,
};
use crate::postgres::{PostgresSettings, SslMode};
use crate::secret::Secret;

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// What a `DATABASE_URL` says; fields it leaves out are `None`.
#[derive(Debug, Default, PartialEq)]
pub(super) struct UrlParts {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<Secret>,
    database: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<PathBuf>,
}

/// Splits a `DATABASE_URL` into its parts; errors never echo the URL (it holds a password).
pub(super) fn parse_database_url(url: &Secret) -> Result<UrlParts> {
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

/// The checked PostgreSQL settings; warnings (a service-link port) go to `warnings`.
pub(super) fn resolve_postgres(
    a: PostgresArgs,
    f: FilePostgres,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<PostgresSettings> {
    let url = match &a.database_url {
        Some(u) => parse_database_url(u)?,
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
        default_roots: env
            .ssl_cert_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt")),
    })
}
