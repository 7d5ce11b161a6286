//! Tests of [`super::resolve`]: defaults, precedence, and errors that name the setting.

use std::io::Write;
use std::time::Duration;

use super::args::PostgresArgs;
use super::redis_url::parse_redis_url;
use super::*;
use crate::postgres::SslMode;
use crate::setting::parse_duration;

fn resolve_env(a: ConnArgs) -> Result<Settings> {
    resolve(a, &Env::default())
}

fn pg(f: impl FnOnce(&mut PostgresArgs)) -> ConnArgs {
    let mut a = ConnArgs::default();
    f(&mut a.postgres);
    a
}

fn err(a: ConnArgs) -> String {
    resolve_env(a).expect_err("should fail").0
}

#[test]
fn defaults_follow_the_application_contract() {
    let s = resolve_env(ConnArgs::default()).expect("defaults");
    assert_eq!(s.postgres.host, "localhost");
    assert_eq!(s.postgres.port, 5432);
    assert_eq!(s.postgres.user, "postgres");
    assert_eq!(s.postgres.database, "agentic_deals");
    assert_eq!(s.postgres.maintenance_database, "postgres");
    assert_eq!(s.postgres.sslmode, SslMode::Prefer);
    assert!(s.redis.is_none(), "redis is checked only when configured");
    assert_eq!(s.wait.timeout, Duration::from_secs(300));
    assert_eq!(s.log.format, LogFormat::Text);
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
        (pg(|p| p.postgres_db = Some("d".repeat(64))), "POSTGRES_DB"),
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
    let s = resolve_env(a).expect("valid url");
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
    assert_eq!(resolve_env(a).expect("agree").postgres.host, "db");
}

#[test]
fn password_file_drops_one_trailing_newline() {
    let mut f = tempfile::NamedTempFile::new().expect("tmp");
    f.write_all(b"pa ss\n").expect("write");
    let s = resolve_env(pg(|p| p.postgres_password_file = Some(f.path().into()))).expect("ok");
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
    let s = resolve_env(a).expect("ok");
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

#[test]
fn service_link_ports_are_read_for_their_port_with_a_warning() {
    let s = resolve_env(pg(|p| {
        p.postgres_port = Some("tcp://10.0.0.174:6543".into())
    }))
    .expect("service-link form is accepted");
    assert_eq!(s.postgres.port, 6543);
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("POSTGRES_PORT") && w.contains("6543")),
        "{:?}",
        s.warnings
    );
    // Beside a DATABASE_URL with its own port, the injected one is ignored, not a conflict.
    let s = resolve_env(pg(|p| {
        p.database_url = Some(Secret::new("postgres://app@managed.example:25060/deals"));
        p.postgres_port = Some("tcp://10.0.0.174:5432".into());
    }))
    .expect("url wins over a service link");
    assert_eq!(s.postgres.port, 25060);
    assert!(s.warnings.iter().any(|w| w.contains("ignored")));
    // A plain port still has to agree with the URL.
    assert!(
        err(pg(|p| {
            p.database_url = Some(Secret::new("postgres://app@db:25060/deals"));
            p.postgres_port = Some("5432".into());
        }))
        .contains("POSTGRES_PORT")
    );
    assert!(
        err(pg(|p| p.postgres_port = Some("tcp://10.0.0.1:x".into()))).contains("POSTGRES_PORT")
    );
}

#[test]
fn a_lone_redis_port_never_configures_redis() {
    for port in ["tcp://10.0.0.9:6379", "6379"] {
        let mut a = ConnArgs::default();
        a.redis.redis_port = Some(port.into());
        let s = resolve_env(a).expect("a lone REDIS_PORT is not an error");
        assert!(s.redis.is_none(), "{port}: Redis is not configured");
        assert!(
            s.warnings.iter().any(|w| w.contains("REDIS_PORT")),
            "{port}"
        );
    }
    let mut a = ConnArgs::default();
    a.redis.redis_host = Some("cache".into());
    a.redis.redis_port = Some("tcp://10.0.0.9:6380".into());
    assert_eq!(resolve_env(a).expect("ok").redis.expect("redis").port, 6380);
    let mut a = ConnArgs::default();
    a.redis.redis_url = Some(Secret::new("redis://cache:7000"));
    a.redis.redis_port = Some("tcp://10.0.0.9:6379".into());
    assert_eq!(resolve_env(a).expect("ok").redis.expect("redis").port, 7000);
    // Other Redis settings without a host are still a mistake worth stopping for.
    let mut a = ConnArgs::default();
    a.redis.redis_db = Some("1".into());
    assert!(err(a).contains("REDIS_HOST"));
}
