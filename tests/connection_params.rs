//! libpq parameters of `DATABASE_URL` that change what happens on the server, the new
//! environment names of dbinit's own logging, and empty values, against a real PostgreSQL.

use dbinit_tests::{PG_PASSWORD, Pg, PgOpts, Redis, RedisOpts, command, run};

#[test]
fn options_search_path_and_application_name_reach_the_server() {
    let pg = Pg::start_new();
    pg.psql("postgres", "CREATE DATABASE opts");
    pg.psql("opts", "CREATE SCHEMA app");
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("V1__deals.sql"),
        "CREATE TABLE deals (id int);\n",
    )
    .expect("write");
    let url = format!(
        "postgres://postgres:{PG_PASSWORD}@127.0.0.1:{}/opts?options=-c%20search_path%3Dapp&application_name=deals-migrate&connect_timeout=10",
        pg.port
    );
    let mut c = command("dbinit");
    c.arg("run")
        .env("DATABASE_URL", &url)
        .env("DBINIT_MIGRATIONS_DIR", dir.path())
        .env("DBINIT_TIMEOUT", "30s")
        .env("DBINIT_LOG", "debug");
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.all_output().contains(PG_PASSWORD));
    // The table (and refinery's history, as with libpq) landed in the search_path's schema.
    assert_eq!(
        pg.psql(
            "opts",
            "SELECT to_regclass('app.deals') IS NOT NULL, to_regclass('public.deals') IS NULL"
        ),
        "t|t"
    );

    // application_name: visible in pg_stat_activity while dbinit waits for the lock.
    pg.psql("postgres", "ALTER SYSTEM SET log_connections = on");
    pg.psql("postgres", "SELECT pg_reload_conf()");
    let mut c = command("dbinit");
    c.arg("wait-deps").env("DATABASE_URL", &url);
    assert_eq!(run(c).code, Some(0));
    assert!(
        pg.log().contains("application_name=deals-migrate"),
        "the server saw another name"
    );
}

#[test]
fn empty_values_and_the_application_s_log_variables_are_harmless() {
    let pg = Pg::start_new();
    let mut c = command("dbinit");
    c.arg("wait-deps")
        .envs(pg.env())
        // What Helm templates and envFrom produce for settings nobody set.
        .env("REDIS_URL", "")
        .env("DATABASE_URL", "")
        .env("POSTGRES_SSLMODE", "")
        .env("DBINIT_TIMEOUT", "")
        // The application's own logging settings, shared through the same ConfigMap.
        .env("LOG_FORMAT", "logfmt")
        .env("RUST_LOG", "myapp=debug")
        .env_remove("DBINIT_LOG");
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("postgres is ready"),
        "not silenced: {}",
        out.stderr
    );
    assert!(out.stderr.contains("ignoring LOG_FORMAT"), "{}", out.stderr);
    assert!(out.stderr.contains("ignoring RUST_LOG"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("redis"),
        "empty REDIS_URL means no Redis: {}",
        out.stderr
    );

    // dbinit's own names: JSON lines at debug level.
    let mut c = command("dbinit");
    c.arg("wait-deps")
        .envs(pg.env())
        .env("DBINIT_LOG_FORMAT", "json")
        .env("DBINIT_LOG", "debug")
        .env("LOG_FORMAT", "text");
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines.iter().all(|l| l.starts_with('{')), "{}", out.stderr);
    assert!(out.stderr.contains("\"DEBUG\""), "{}", out.stderr);
}

/// What redis-server executes while `f` runs, as MONITOR shows it (arguments of AUTH and
/// HELLO are redacted by the server).
fn monitored(port: u16, password: &str, f: impl FnOnce()) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(format!("AUTH {password}\r\nMONITOR\r\n").as_bytes())
        .expect("MONITOR");
    s.set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .expect("timeout");
    f();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded: the server is quiet once the command has exited.
    for _ in 0..50 {
        match s.read(&mut buf) {
            Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&seen).to_lowercase()
}

#[test]
fn go_durations_and_redis_protocol_resp3() {
    let pg = Pg::start_new();
    let redis = Redis::start(RedisOpts {
        password: Some("resp3-pw".into()),
    });
    let wait_deps = |protocol: &str| {
        let mut c = command("dbinit");
        c.arg("wait-deps")
            .envs(pg.env())
            .env(
                "REDIS_URL",
                format!(
                    "redis://:resp3-pw@127.0.0.1:{}/4?protocol={protocol}",
                    redis.port
                ),
            )
            .env("DBINIT_TIMEOUT", "1m30s")
            .env("DBINIT_CONNECT_TIMEOUT", "2500ms")
            .env("DBINIT_BACKOFF_INITIAL", "0.05")
            .env("DBINIT_BACKOFF_MAX", "1s");
        run(c)
    };
    let mut out = None;
    let seen = monitored(redis.port, "resp3-pw", || out = Some(wait_deps("resp3")));
    let out = out.expect("ran");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("redis is ready"), "{}", out.stderr);
    assert!(!out.all_output().contains("resp3-pw"));
    assert!(
        seen.contains("\"hello\" \"3\""),
        "RESP3 is negotiated: {seen}"
    );

    let mut out = None;
    let seen = monitored(redis.port, "resp3-pw", || out = Some(wait_deps("resp2")));
    assert_eq!(out.expect("ran").code, Some(0));
    assert!(!seen.contains("\"hello\""), "RESP2 needs no HELLO: {seen}");
    assert!(seen.contains("\"ping\""), "{seen}");
}

#[test]
fn urls_from_mounted_secret_files() {
    let pg = Pg::start_new();
    let redis = Redis::start(RedisOpts {
        password: Some("file-redis-pw".into()),
    });
    let dir = tempfile::tempdir().expect("tmp");
    let db_url = dir.path().join("database-url");
    let redis_url = dir.path().join("redis-url");
    std::fs::write(
        &db_url,
        format!(
            "postgres://postgres:{PG_PASSWORD}@127.0.0.1:{}/postgres\n",
            pg.port
        ),
    )
    .expect("write");
    std::fs::write(
        &redis_url,
        format!("valkey://:file-redis-pw@127.0.0.1:{}/1\n", redis.port),
    )
    .expect("write");
    let mut c = command("dbinit");
    c.arg("wait-deps")
        .env("DATABASE_URL_FILE", &db_url)
        .env("REDIS_URL_FILE", &redis_url)
        .env("DBINIT_TIMEOUT", "20s");
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("redis is ready"), "{}", out.stderr);
    assert!(!out.all_output().contains(PG_PASSWORD) && !out.all_output().contains("file-redis-pw"));
}

#[test]
fn target_session_attrs_read_write_waits_out_a_read_only_server() {
    let pg = Pg::init(PgOpts {
        settings: vec![("default_transaction_read_only".into(), "on".into())],
        ..PgOpts::default()
    });
    pg.start();
    let url = |attrs: &str| {
        format!(
            "postgres://postgres:{PG_PASSWORD}@127.0.0.1:{}/postgres?target_session_attrs={attrs}",
            pg.port
        )
    };
    // Like a standby: read-write is not satisfied, so dbinit keeps waiting until its deadline.
    let mut c = command("dbinit");
    c.arg("wait-deps")
        .env("DATABASE_URL", url("read-write"))
        .env("DBINIT_TIMEOUT", "3s");
    let out = run(c);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("postgres not ready"), "{}", out.stderr);
    for attrs in ["any", "read-only"] {
        let mut c = command("dbinit");
        c.arg("wait-deps")
            .env("DATABASE_URL", url(attrs))
            .env("DBINIT_TIMEOUT", "10s");
        let out = run(c);
        assert_eq!(out.code, Some(0), "{attrs}: {}", out.stderr);
    }
}
