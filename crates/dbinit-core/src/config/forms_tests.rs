//! Tests of the forms Kubernetes users write (issue 14): empty values, the application's
//! logging variables, libpq URL parameters, Redis URL schemes and the image's /migrations.
//! (That the configuration reference names every setting is tests/docs.rs's.)

use std::time::Duration;

use super::args::PostgresArgs;
use super::redis_url::parse_redis_url;
use super::*;
use crate::postgres::SslMode;

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
fn empty_values_are_unset() {
    let mut a = pg(|p| {
        p.postgres_host = Some(String::new());
        p.postgres_port = Some(String::new());
        p.postgres_password = Some(Secret::new(""));
        p.database_url = Some(Secret::new(""));
        p.postgres_sslrootcert = Some("".into());
    });
    a.redis.redis_url = Some(Secret::new(""));
    a.wait.timeout = Some(String::new());
    a.wait.log_format = Some(String::new());
    let s = resolve_env(a).expect("empty means unset");
    assert_eq!(
        (s.postgres.host.as_str(), s.postgres.port),
        ("localhost", 5432)
    );
    assert!(s.postgres.password.is_none() && s.redis.is_none());
    assert_eq!(s.wait.timeout, Duration::from_secs(300));
}

#[test]
fn un_namespaced_log_variables_are_never_fatal() {
    let env = Env {
        log_format: Some("logfmt".into()),
        rust_log: Some("myapp=debug".into()),
        ..Env::default()
    };
    let s = resolve(ConnArgs::default(), &env).expect("not fatal");
    assert_eq!(s.log.format, LogFormat::Text);
    assert_eq!(s.log.filter, None, "another program's filter is not ours");
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    let env = Env {
        log_format: Some("json".into()),
        rust_log: Some("debug".into()),
        ..Env::default()
    };
    let s = resolve(ConnArgs::default(), &env).expect("understood");
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(s.log.filter.as_deref(), Some("debug"));
    let mut a = ConnArgs::default();
    a.wait.log_format = Some("text".into());
    a.wait.log = Some("warn,dbinit_core=debug".into());
    let s = resolve(a, &env).expect("own settings win");
    assert_eq!(s.log.format, LogFormat::Text);
    assert_eq!(s.log.filter.as_deref(), Some("warn,dbinit_core=debug"));
}

#[test]
fn database_url_parameters_are_honoured() {
    let s = resolve_env(pg(|p| {
        p.database_url = Some(Secret::new(
            "postgres://app@db/deals?options=-c%20search_path%3Dapp&application_name=deals-migrate&connect_timeout=7&target_session_attrs=read-write&sslmode=verify-ca",
        ))
    }))
    .expect("valid");
    assert_eq!(s.postgres.options.as_deref(), Some("-c search_path=app"));
    assert_eq!(
        s.postgres.application_name.as_deref(),
        Some("deals-migrate")
    );
    assert_eq!(s.postgres.connect_timeout, Some(Duration::from_secs(7)));
    assert_eq!(s.postgres.sslmode, SslMode::VerifyCa);
    assert_eq!(
        s.postgres.target_session_attrs,
        tokio_postgres::config::TargetSessionAttrs::ReadWrite
    );
    for (query, needle) in [
        ("gssencmode=disable", "gssencmode"),
        ("foo=1", "foo"),
        ("sslmode=verify", "sslmode"),
        ("target_session_attrs=standby", "target_session_attrs"),
    ] {
        let msg = err(pg(|p| {
            p.database_url = Some(Secret::new(format!("postgres://a:hunter22@db/x?{query}")))
        }));
        assert!(
            msg.contains("DATABASE_URL") && msg.contains(needle) && !msg.contains("hunter22"),
            "{msg}"
        );
        assert!(!msg.contains("config file"), "{msg}");
    }
}

#[test]
fn redis_url_schemes() {
    for (url, tls, port) in [
        ("valkey://cache", false, 6379),
        ("valkeys://cache:6380", true, 6380),
        ("rediss://cache?protocol=resp3", true, 6379),
    ] {
        let r = parse_redis_url(&Secret::new(url)).expect(url);
        assert_eq!(
            (r.host.as_str(), r.tls, r.port),
            ("cache", tls, port),
            "{url}"
        );
    }
    assert!(
        parse_redis_url(&Secret::new("redis://c?protocol=resp3"))
            .expect("ok")
            .resp3
    );
    let r = parse_redis_url(&Secret::new("redis+unix://:pw@/run/redis.sock?db=3")).expect("unix");
    assert_eq!(
        r.socket.as_deref(),
        Some(std::path::Path::new("/run/redis.sock"))
    );
    assert_eq!((r.db, r.password.expect("pw").expose()), (3, "pw"));
    for bad in [
        "redis+unix://",
        "memcached://c",
        "redis://c?protocol=resp4",
        "redis://c?x=1",
    ] {
        let e = parse_redis_url(&Secret::new(bad)).expect_err(bad).0;
        assert!(e.contains("REDIS_URL"), "{e}");
    }
}

#[test]
fn the_image_migrations_directory_is_used_when_it_exists() {
    use crate::migrate::set::Source;
    let image = tempfile::tempdir().expect("tmp");
    std::fs::write(image.path().join("V1__own.sql"), "SELECT 1;").expect("write");
    let with = |dir: Option<&std::path::Path>, image_dir: &std::path::Path| MigrateArgs {
        migrations_dir: dir.map(Into::into),
        image_migrations_dir: image_dir.into(),
        ..MigrateArgs::default()
    };
    let m = resolve_migrate(with(None, image.path())).expect("image dir");
    assert_eq!(m.set.source, Source::Dir(image.path().into()));
    assert_eq!(m.set.migrations.len(), 1);
    // An explicit directory wins; an absent image directory means the built-in set.
    let other = tempfile::tempdir().expect("tmp");
    let m = resolve_migrate(with(Some(other.path()), image.path())).expect("explicit");
    assert_eq!(m.set.source, Source::Dir(other.path().into()));
    let m = resolve_migrate(with(None, &image.path().join("absent"))).expect("built in");
    assert_eq!(m.set.source, Source::Embedded);
    // A bad file there is exit 2 naming the directory and the file.
    std::fs::write(image.path().join("V2_bad.sql"), "SELECT 1;").expect("write");
    let e = resolve_migrate(with(None, image.path()))
        .expect_err("bad name")
        .0;
    assert!(
        e.contains("V2_bad.sql") && e.contains(&image.path().display().to_string()),
        "{e}"
    );
}
