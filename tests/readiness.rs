//! `dbinit wait-deps` against real PostgreSQL and Redis servers.

use std::process::Stdio;
use std::time::{Duration, Instant};

use dbinit_tests::{Pg, PgOpts, Redis, RedisOpts, command, finish, free_port, run};

fn wait_deps(env: &[(String, String)]) -> std::process::Command {
    let mut c = command("dbinit");
    c.arg("wait-deps").envs(env.iter().cloned());
    c
}

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[test]
fn postgres_started_late_is_waited_for() {
    let pg = Pg::init(PgOpts::default());
    let mut env = pg.env();
    env.extend([
        kv("DBINIT_TIMEOUT", "60s"),
        kv("DBINIT_BACKOFF_INITIAL", "100ms"),
        kv("DBINIT_BACKOFF_MAX", "1s"),
    ]);
    let started = Instant::now();
    let child = wait_deps(&env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_secs(3));
    pg.start();
    let ready_at = started.elapsed();
    let out = finish(child, started);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // Ready within one backoff cap (1s) of the server accepting connections, plus slack
    // for process scheduling on a busy 2-core machine.
    let lag = out.elapsed.saturating_sub(ready_at);
    assert!(
        lag < Duration::from_millis(2500),
        "took {lag:?} after the server was ready"
    );
    assert!(
        out.stderr.contains("postgres not ready, retrying"),
        "retries are logged: {}",
        out.stderr
    );
    assert!(
        out.stderr.to_lowercase().contains("connection refused"),
        "the reason is logged: {}",
        out.stderr
    );
    assert!(out.stderr.contains("postgres is ready"));
}

#[test]
fn no_postgres_times_out_with_exit_3() {
    let port = free_port();
    let out = run(wait_deps(&[
        kv("POSTGRES_HOST", "127.0.0.1"),
        kv("POSTGRES_PORT", port),
        kv("DBINIT_TIMEOUT", "3s"),
    ]));
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.elapsed >= Duration::from_millis(2900) && out.elapsed < Duration::from_secs(6),
        "exit after about 3 s, took {:?}",
        out.elapsed
    );
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
}

#[test]
fn wrong_password_fails_fast_with_exit_4_and_no_secret() {
    let pg = Pg::start_new();
    let secret = "wrong-Pa55-value-xyz";
    let mut env = pg.env();
    env.retain(|(k, _)| k != "POSTGRES_PASSWORD");
    env.push(kv("POSTGRES_PASSWORD", secret));
    env.push(kv("POSTGRES_USER", "app_user"));
    env.push(kv("DBINIT_TIMEOUT", "60s"));
    pg.psql(
        "postgres",
        "CREATE ROLE app_user LOGIN PASSWORD 'right-one'",
    );
    let out = run(wait_deps(&env));
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(
        out.elapsed < Duration::from_secs(2),
        "fast: {:?}",
        out.elapsed
    );
    assert!(
        out.stderr.contains("authentication failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("app_user"),
        "names the user: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("127.0.0.1"),
        "names the host: {}",
        out.stderr
    );
    assert!(
        !out.all_output().contains(secret),
        "password leaked: {}",
        out.all_output()
    );
}

#[test]
fn missing_password_is_a_clear_refusal() {
    let pg = Pg::start_new();
    let mut env = pg.env();
    env.retain(|(k, _)| k != "POSTGRES_PASSWORD");
    let out = run(wait_deps(&env));
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.stderr.contains("POSTGRES_PASSWORD"), "{}", out.stderr);
}

#[test]
fn password_file_works_and_missing_file_is_exit_2() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{}\n", dbinit_tests::PG_PASSWORD)).expect("write");
    let mut env = pg.env();
    env.retain(|(k, _)| k != "POSTGRES_PASSWORD");
    env.push(kv("POSTGRES_PASSWORD_FILE", file.display()));
    let out = run(wait_deps(&env));
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    env.retain(|(k, _)| k != "POSTGRES_PASSWORD_FILE");
    env.push(kv(
        "POSTGRES_PASSWORD_FILE",
        dir.path().join("nope").display(),
    ));
    let out = run(wait_deps(&env));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("POSTGRES_PASSWORD_FILE"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_maintenance_database_is_exit_4() {
    let pg = Pg::start_new();
    let mut env = pg.env();
    env.push(kv("POSTGRES_DB", "does_not_exist"));
    env.push(kv("POSTGRES_MAINTENANCE_DB", "also_missing"));
    let out = run(wait_deps(&env));
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.stderr.contains("also_missing"), "{}", out.stderr);
}

#[test]
fn postgres_that_goes_away_and_comes_back_is_waited_for() {
    // A server restart between attempts: "starting up"/refused are both transient.
    let pg = Pg::start_new();
    pg.stop();
    let mut env = pg.env();
    env.extend([
        kv("DBINIT_TIMEOUT", "60s"),
        kv("DBINIT_BACKOFF_MAX", "500ms"),
    ]);
    let started = Instant::now();
    let child = wait_deps(&env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    pg.start();
    let out = finish(child, started);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn redis_absent_times_out_with_exit_3() {
    let pg = Pg::start_new();
    let mut env = pg.env();
    env.extend([
        kv("REDIS_HOST", "127.0.0.1"),
        kv("REDIS_PORT", free_port()),
        kv("DBINIT_TIMEOUT", "3s"),
    ]);
    let out = run(wait_deps(&env));
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.elapsed >= Duration::from_millis(2900) && out.elapsed < Duration::from_secs(6));
    assert!(out.stderr.contains("Redis"), "{}", out.stderr);
    assert!(
        out.stderr.contains("redis not ready, retrying"),
        "{}",
        out.stderr
    );
}

#[test]
fn redis_wrong_password_fails_fast_with_exit_4() {
    let pg = Pg::start_new();
    let redis = Redis::start(RedisOpts {
        password: Some("redis-right-pw".into()),
    });
    let mut env = pg.env();
    env.extend([
        kv(
            "REDIS_URL",
            format!("redis://:redis-wrong-pw@127.0.0.1:{}", redis.port),
        ),
        kv("DBINIT_TIMEOUT", "60s"),
    ]);
    let out = run(wait_deps(&env));
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(2), "{:?}", out.elapsed);
    assert!(
        out.stderr.contains("authentication failed"),
        "{}",
        out.stderr
    );
    assert!(!out.all_output().contains("redis-wrong-pw"));

    // No password at all against requirepass: NOAUTH, also a fast refusal.
    let mut env = pg.env();
    env.extend([kv("REDIS_HOST", "127.0.0.1"), kv("REDIS_PORT", redis.port)]);
    let out = run(wait_deps(&env));
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.stderr.contains("REDIS_PASSWORD"), "{}", out.stderr);
}

#[test]
fn redis_with_requirepass_and_right_password_is_ready() {
    let pg = Pg::start_new();
    let redis = Redis::start(RedisOpts {
        password: Some("redis-right-pw".into()),
    });
    let mut env = pg.env();
    env.extend([
        kv("REDIS_HOST", "127.0.0.1"),
        kv("REDIS_PORT", redis.port),
        kv("REDIS_PASSWORD", "redis-right-pw"),
        kv("REDIS_DB", "3"),
    ]);
    let out = run(wait_deps(&env));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("redis is ready"), "{}", out.stderr);
    assert!(!out.all_output().contains("redis-right-pw"));
}

#[test]
fn redis_not_configured_is_not_checked() {
    let pg = Pg::start_new();
    let out = run(wait_deps(&pg.env()));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        !out.stderr.to_lowercase().contains("redis"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_configuration_exits_2_naming_the_variable() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad_yaml = dir.path().join("bad.yaml");
    std::fs::write(&bad_yaml, "postgres:\n  port: abc\n").expect("write");
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (vec![kv("POSTGRES_PORT", "abc")], "POSTGRES_PORT"),
        (vec![kv("POSTGRES_PORT", "0")], "POSTGRES_PORT"),
        (vec![kv("POSTGRES_SSLMODE", "maybe")], "POSTGRES_SSLMODE"),
        (
            vec![
                kv("DATABASE_URL", "postgres://u:pw-in-url@db1:5432/x"),
                kv("POSTGRES_HOST", "db2"),
            ],
            "POSTGRES_HOST",
        ),
        (
            vec![kv("POSTGRES_PASSWORD_FILE", "/nonexistent/pw")],
            "POSTGRES_PASSWORD_FILE",
        ),
        (vec![kv("DBINIT_TIMEOUT", "forever")], "DBINIT_TIMEOUT"),
        (
            vec![kv("DBINIT_BACKOFF_MAX", "1 week")],
            "DBINIT_BACKOFF_MAX",
        ),
        (vec![kv("DBINIT_LOG_FORMAT", "xml")], "DBINIT_LOG_FORMAT"),
        (
            vec![kv("REDIS_HOST", "r"), kv("REDIS_PORT", "six")],
            "REDIS_PORT",
        ),
        (
            vec![kv("REDIS_HOST", "r"), kv("REDIS_DB", "-1")],
            "REDIS_DB",
        ),
        (vec![kv("REDIS_URL", "http://cache")], "REDIS_URL"),
        (
            vec![kv("REDIS_URL", "redis://c"), kv("REDIS_HOST", "c")],
            "REDIS_HOST",
        ),
        (
            vec![kv("DBINIT_CONFIG", bad_yaml.display())],
            "postgres.port",
        ),
        (
            vec![kv("DBINIT_CONFIG", "/nonexistent.yaml")],
            "DBINIT_CONFIG",
        ),
    ];
    for (env, needle) in cases {
        let out = run(wait_deps(&env));
        assert_eq!(out.code, Some(2), "{env:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(needle),
            "{env:?} should name {needle}: {}",
            out.stderr
        );
        assert!(
            !out.all_output().contains("pw-in-url"),
            "secret leaked: {}",
            out.stderr
        );
        assert!(
            out.elapsed < Duration::from_secs(2),
            "config errors are instant"
        );
    }
}

#[test]
fn help_never_shows_secrets_from_the_environment() {
    let out = run({
        let mut c = command("dbinit");
        c.args(["wait-deps", "--help"])
            .env("POSTGRES_PASSWORD", "help-secret-1")
            .env("DATABASE_URL", "postgres://u:help-secret-2@h/d")
            .env("REDIS_PASSWORD", "help-secret-3");
        c
    });
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("POSTGRES_PASSWORD_FILE"));
    assert!(!out.all_output().contains("help-secret"), "{}", out.stdout);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let pg = Pg::start_new();
    let mut env = pg.env();
    env.push(kv("LOG_FORMAT", "json"));
    let out = run(wait_deps(&env));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for line in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.starts_with('{') && line.ends_with('}') && line.contains("\"level\""),
            "not a JSON log line: {line}"
        );
    }
}

/// Kubernetes injects `POSTGRES_PORT=tcp://<ClusterIP>:5432` and `REDIS_PORT=tcp://...` into
/// every pod of a namespace with Services of those names: dbinit reads the port of the first
/// (with a warning) and never takes a lone `REDIS_PORT` as "Redis configured".
#[test]
fn kubernetes_service_link_variables_are_tolerated() {
    let pg = Pg::start_new();
    let redis = Redis::start(RedisOpts::default());
    let mut env: Vec<(String, String)> = pg
        .env()
        .into_iter()
        .filter(|(k, _)| k != "POSTGRES_PORT")
        .collect();
    env.extend([
        kv("POSTGRES_PORT", format!("tcp://127.0.0.1:{}", pg.port)),
        kv("POSTGRES_SERVICE_HOST", "127.0.0.1"),
        kv("POSTGRES_SERVICE_PORT", pg.port),
        kv("REDIS_PORT", format!("tcp://127.0.0.1:{}", free_port())),
        kv("REDIS_SERVICE_HOST", "127.0.0.1"),
        kv("REDIS_PORT_6379_TCP", "tcp://127.0.0.1:6379"),
    ]);
    let out = run(wait_deps(&env));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("POSTGRES_PORT") && out.stderr.contains("Kubernetes injects"),
        "the service-link form is warned about: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("redis is ready") && !out.stderr.contains("Redis at"),
        "a lone REDIS_PORT does not configure Redis: {}",
        out.stderr
    );

    // With REDIS_HOST, the service-link REDIS_PORT is read for its port.
    env.retain(|(k, _)| k != "REDIS_PORT");
    env.extend([
        kv("REDIS_HOST", "127.0.0.1"),
        kv("REDIS_PORT", format!("tcp://10.0.0.9:{}", redis.port)),
    ]);
    let out = run(wait_deps(&env));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("redis is ready"), "{}", out.stderr);
}
