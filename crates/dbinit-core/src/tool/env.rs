//! The connection, in the forms tools read it: `DATABASE_URL` (a libpq URL, the password
//! percent-encoded, `sslmode` always present because dbmate's and golang-migrate's driver
//! lib/pq defaults to `require`), the libpq variables `PGHOST` .. `PGSSLROOTCERT`, and for
//! Flyway `FLYWAY_URL`/`FLYWAY_USER`/`FLYWAY_PASSWORD` (JDBC). The app's own `POSTGRES_*`
//! stay as the pod spec sets them.
//!
//! Two settings are dbinit's, for what happens after the child: `application_name`, unique
//! to the run, so dbinit finds the child's sessions in `pg_stat_activity` and keeps the
//! migration lock until they are gone; and on PostgreSQL 14+
//! `client_connection_check_interval` in `options`, so a backend notices within a second
//! that its killed client is gone instead of running its statement to the end.

use std::time::Duration;

use super::kind::Tool;
use crate::postgres::{PostgresSettings, SslMode};
use crate::secret::Secret;

/// What the child is given.
#[derive(Debug, Clone)]
pub struct ChildEnv {
    /// Variables to set: (name, value). Values may hold the password.
    pub vars: Vec<(&'static str, Secret)>,
    /// `DATABASE_URL`, also what `$(DATABASE_URL)` in an argument becomes.
    pub url: Secret,
    /// The child's `application_name`, as PostgreSQL stores it (at most 63 bytes).
    pub app_name: String,
    /// Every form of the password that may appear in the child's output (as is,
    /// percent-encoded, in the URL), to scrub from what is passed through and reported.
    pub secrets: Vec<Secret>,
}

/// Percent-encodes everything but RFC 3986's unreserved characters: safe in a URL's user
/// info, path and query alike, and decoded the same by libpq, sqlx, lib/pq and JDBC.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sslmode(m: SslMode) -> &'static str {
    match m {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        SslMode::Require => "require",
        SslMode::VerifyCa => "verify-ca",
        SslMode::VerifyFull => "verify-full",
    }
}

fn session_attrs(a: tokio_postgres::config::TargetSessionAttrs) -> Option<&'static str> {
    use tokio_postgres::config::TargetSessionAttrs as T;
    match a {
        T::ReadWrite => Some("read-write"),
        T::ReadOnly => Some("read-only"),
        _ => None,
    }
}

/// The child's `application_name` for a run of `identity`: `dbinit-child/<run> <identity>`,
/// cut to PostgreSQL's 63 bytes.
pub fn app_name(run: &str, identity: &str) -> String {
    crate::text::truncate(&format!("dbinit-child/{run} {identity}"), 63).to_string()
}

/// Builds the child's connection settings. `check_interval` is set on servers that have
/// `client_connection_check_interval` (14+).
pub fn build(
    pg: &PostgresSettings,
    app_name: &str,
    check_interval: Option<Duration>,
    tool: Option<Tool>,
) -> ChildEnv {
    let mut options = pg.options.clone().unwrap_or_default();
    if let Some(i) = check_interval {
        if !options.is_empty() {
            options.push(' ');
        }
        options.push_str(&format!(
            "-c client_connection_check_interval={}",
            i.as_millis()
        ));
    }
    let socket = pg.host.starts_with('/');
    let host = if pg.host.contains(':') && !socket {
        format!("[{}]", pg.host)
    } else if socket {
        String::new()
    } else {
        pg.host.clone()
    };
    let userinfo = match &pg.password {
        Some(p) => format!("{}:{}", encode(&pg.user), encode(p.expose())),
        None => encode(&pg.user),
    };
    // Paths only where dbinit was given them: with a root CA file present libpq verifies
    // the chain even under `require`. For verify-* dbinit's default roots are named, as
    // libpq's own default (~/.postgresql/root.crt) rarely exists in an image.
    let rootcert = pg
        .sslrootcert
        .clone()
        .or_else(|| pg.sslmode.verifies().then(|| pg.default_roots.clone()));
    let mut params: Vec<(&str, String)> = vec![("sslmode", sslmode(pg.sslmode).to_string())];
    if socket {
        params.push(("host", pg.host.clone()));
    }
    if let Some(r) = &rootcert {
        params.push(("sslrootcert", r.display().to_string()));
    }
    if let Some((cert, key)) = &pg.client_cert {
        params.push(("sslcert", cert.display().to_string()));
        params.push(("sslkey", key.display().to_string()));
    }
    if let Some(t) = pg.connect_timeout {
        params.push(("connect_timeout", t.as_secs().max(1).to_string()));
    }
    if let Some(a) = session_attrs(pg.target_session_attrs) {
        params.push(("target_session_attrs", a.to_string()));
    }
    params.push(("application_name", app_name.to_string()));
    if !options.is_empty() {
        params.push(("options", options.clone()));
    }
    let query = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let url = format!(
        "postgresql://{userinfo}@{host}:{}/{}?{query}",
        pg.port,
        encode(&pg.database)
    );
    let mut vars: Vec<(&'static str, Secret)> = vec![
        ("DATABASE_URL", Secret::new(url.clone())),
        ("PGHOST", Secret::new(pg.host.clone())),
        ("PGPORT", Secret::new(pg.port.to_string())),
        ("PGUSER", Secret::new(pg.user.clone())),
        ("PGDATABASE", Secret::new(pg.database.clone())),
        ("PGSSLMODE", Secret::new(sslmode(pg.sslmode))),
        ("PGAPPNAME", Secret::new(app_name)),
    ];
    if let Some(p) = &pg.password {
        vars.push(("PGPASSWORD", p.clone()));
    }
    if let Some(r) = &rootcert {
        vars.push(("PGSSLROOTCERT", Secret::new(r.display().to_string())));
    }
    if let Some((cert, key)) = &pg.client_cert {
        vars.push(("PGSSLCERT", Secret::new(cert.display().to_string())));
        vars.push(("PGSSLKEY", Secret::new(key.display().to_string())));
    }
    if !options.is_empty() {
        vars.push(("PGOPTIONS", Secret::new(options.clone())));
    }
    if let Some(t) = pg.connect_timeout {
        vars.push((
            "PGCONNECT_TIMEOUT",
            Secret::new(t.as_secs().max(1).to_string()),
        ));
    }
    if tool == Some(Tool::Flyway) && !socket {
        let mut jdbc = vec![
            format!("sslmode={}", sslmode(pg.sslmode)),
            format!("ApplicationName={}", encode(app_name)),
        ];
        if let Some(r) = &rootcert {
            jdbc.push(format!("sslrootcert={}", encode(&r.display().to_string())));
        }
        if !options.is_empty() {
            jdbc.push(format!("options={}", encode(&options)));
        }
        vars.push((
            "FLYWAY_URL",
            Secret::new(format!(
                "jdbc:postgresql://{host}:{}/{}?{}",
                pg.port,
                encode(&pg.database),
                jdbc.join("&")
            )),
        ));
        vars.push(("FLYWAY_USER", Secret::new(pg.user.clone())));
        if let Some(p) = &pg.password {
            vars.push(("FLYWAY_PASSWORD", p.clone()));
        }
    }
    let mut secrets = vec![Secret::new(url.clone())];
    if let Some(p) = &pg.password {
        secrets.push(p.clone());
        secrets.push(Secret::new(encode(p.expose())));
    }
    ChildEnv {
        vars,
        url: Secret::new(url),
        app_name: app_name.to_string(),
        secrets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn pg() -> PostgresSettings {
        PostgresSettings {
            host: "db.svc".into(),
            port: 5433,
            user: "app@x".into(),
            password: Some(Secret::new("p@ss:/w%rd")),
            database: "agentic deals".into(),
            maintenance_database: "postgres".into(),
            sslmode: SslMode::Prefer,
            sslrootcert: None,
            client_cert: None,
            options: Some("-c search_path=app".into()),
            application_name: Some("theirs".into()),
            connect_timeout: None,
            target_session_attrs: tokio_postgres::config::TargetSessionAttrs::Any,
            default_roots: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
        }
    }

    fn var<'a>(e: &'a ChildEnv, k: &str) -> Option<&'a str> {
        e.vars
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.expose())
    }

    #[test]
    fn url_is_libpq_with_everything_encoded() {
        let e = build(
            &pg(),
            "dbinit-child/1 pod",
            Some(Duration::from_secs(1)),
            None,
        );
        assert_eq!(
            e.url.expose(),
            "postgresql://app%40x:p%40ss%3A%2Fw%25rd@db.svc:5433/agentic%20deals?sslmode=prefer&application_name=dbinit-child%2F1%20pod&options=-c%20search_path%3Dapp%20-c%20client_connection_check_interval%3D1000"
        );
        assert_eq!(var(&e, "PGPASSWORD"), Some("p@ss:/w%rd"));
        assert_eq!(var(&e, "PGDATABASE"), Some("agentic deals"));
        assert_eq!(var(&e, "PGSSLMODE"), Some("prefer"));
        assert_eq!(var(&e, "PGAPPNAME"), Some("dbinit-child/1 pod"));
        assert_eq!(
            var(&e, "PGOPTIONS"),
            Some("-c search_path=app -c client_connection_check_interval=1000")
        );
        assert_eq!(var(&e, "PGSSLROOTCERT"), None);
        assert!(var(&e, "FLYWAY_URL").is_none());
        assert!(e.secrets.iter().any(|s| s.expose() == "p%40ss%3A%2Fw%25rd"));
    }

    #[test]
    fn verify_modes_name_the_roots_and_flyway_gets_jdbc() {
        let mut p = pg();
        p.sslmode = SslMode::VerifyFull;
        p.host = "::1".into();
        p.options = None;
        let e = build(&p, "x", None, Some(Tool::Flyway));
        assert!(
            e.url
                .expose()
                .starts_with("postgresql://app%40x:p%40ss%3A%2Fw%25rd@[::1]:5433/")
        );
        assert!(
            e.url
                .expose()
                .contains("sslrootcert=%2Fetc%2Fssl%2Fcerts%2Fca-certificates.crt")
        );
        assert!(!e.url.expose().contains("options="));
        assert_eq!(
            var(&e, "PGSSLROOTCERT"),
            Some("/etc/ssl/certs/ca-certificates.crt")
        );
        assert!(
            var(&e, "FLYWAY_URL")
                .expect("jdbc")
                .starts_with("jdbc:postgresql://[::1]:5433/agentic%20deals?sslmode=verify-full")
        );
        assert_eq!(var(&e, "FLYWAY_PASSWORD"), Some("p@ss:/w%rd"));
    }

    #[test]
    fn app_name_fits_postgres() {
        assert!(app_name("0123abcd", &"p".repeat(100)).len() <= 63);
    }
}
