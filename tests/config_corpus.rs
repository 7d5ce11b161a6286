//! Bad input, exhaustively: a table of bad configurations across every setting (environment,
//! flags, config file, URL forms, ports, durations, identifiers and their length limits,
//! encodings, file modes and missing files, contradictions). Each must exit 2 with a message
//! that names the setting and the form it accepts, echo no secret (a one-character password
//! and a URL-encoded one included), and send nothing to the real PostgreSQL and Redis servers
//! that every case otherwise points at.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use dbinit_tests::tls::{Pki, set_mode};
use dbinit_tests::{PG_PASSWORD, Pg, PgOpts, Redis, RedisOpts, command, run};

/// A password of one character, which must not appear anywhere (chosen so that it cannot
/// occur by chance in a log line).
const ONE_CHAR: &str = "Ω";
/// A password as it is written inside a URL, and what it decodes to.
const ENCODED: &str = "p%40ss%2Fw0rd%C3%A9";
const DECODED: &str = "p@ss/w0rdé";

/// One bad configuration.
struct Case {
    name: &'static str,
    /// `run` unless said otherwise.
    cmd: &'static str,
    /// Set on top of the base environment (`{pg}`, `{redis}`, `{dir}` are replaced).
    env: &'static [(&'static str, &'static str)],
    /// Removed from the base environment.
    unset: &'static [&'static str],
    args: &'static [&'static str],
    /// Must all appear in the output (case-insensitive): the setting and the accepted form.
    expect: &'static [&'static str],
    /// Must not appear.
    absent: &'static [&'static str],
}

const fn case(name: &'static str) -> Case {
    Case {
        name,
        cmd: "run",
        env: &[],
        unset: &[],
        args: &[],
        expect: &[],
        absent: &[],
    }
}

macro_rules! cases {
    ($($name:literal { $($field:ident : $value:expr),* $(,)? })*) => {
        vec![$(Case { $($field: $value,)* ..case($name) }),*]
    };
}

fn corpus() -> Vec<Case> {
    cases! {
        // ---- PostgreSQL: ports
        "port: a word" { env: &[("POSTGRES_PORT", "abc")], expect: &["POSTGRES_PORT", "--postgres-port", "1-65535"] }
        "port: zero" { env: &[("POSTGRES_PORT", "0")], expect: &["POSTGRES_PORT", "1-65535"] }
        "port: too big" { env: &[("POSTGRES_PORT", "65536")], expect: &["POSTGRES_PORT", "1-65535"] }
        "port: flag" { args: &["--postgres-port=x1"], expect: &["POSTGRES_PORT", "--postgres-port", "1-65535"] }
        "port: service link without a port" { env: &[("POSTGRES_PORT", "tcp://10.0.0.7")], expect: &["POSTGRES_PORT", "1-65535"] }
        // ---- PostgreSQL: TLS
        "sslmode: unknown" { env: &[("POSTGRES_SSLMODE", "verify")], expect: &["POSTGRES_SSLMODE", "verify-ca", "verify-full"] }
        "sslmode: unknown in DATABASE_URL" {
            env: &[("DATABASE_URL", "postgres://postgres:{pgpw}@127.0.0.1:{pg}/postgres?sslmode=on")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT"],
            expect: &["DATABASE_URL", "sslmode", "verify-full"],
            absent: &["config file"]
        }
        "sslrootcert: no such file" {
            env: &[("POSTGRES_SSLMODE", "verify-full"), ("POSTGRES_SSLROOTCERT", "/nonexistent/ca.pem")],
            expect: &["POSTGRES_SSLROOTCERT", "no such file", "PEM"]
        }
        "sslrootcert: not PEM" {
            env: &[("POSTGRES_SSLMODE", "verify-ca"), ("POSTGRES_SSLROOTCERT", "{dir}/not-pem.txt")],
            expect: &["POSTGRES_SSLROOTCERT", "PEM"]
        }
        "sslcert without sslkey" { env: &[("POSTGRES_SSLCERT", "{dir}/client.crt")], expect: &["POSTGRES_SSLCERT", "POSTGRES_SSLKEY"] }
        "sslkey readable by others" {
            env: &[("POSTGRES_SSLCERT", "{dir}/client.crt"), ("POSTGRES_SSLKEY", "{dir}/open.key")],
            expect: &["POSTGRES_SSLKEY", "0600"]
        }
        "sslkey: no such file" {
            env: &[("POSTGRES_SSLCERT", "{dir}/client.crt"), ("POSTGRES_SSLKEY", "/nonexistent/client.key")],
            expect: &["POSTGRES_SSLKEY", "no such file"]
        }
        "sslkey: a certificate, not a key" {
            env: &[("POSTGRES_SSLCERT", "{dir}/client.crt"), ("POSTGRES_SSLKEY", "{dir}/cert-as.key")],
            expect: &["POSTGRES_SSLKEY", "PEM", "private key"]
        }
        "sslcert in DATABASE_URL, no such file" {
            env: &[("DATABASE_URL", "postgres://postgres@127.0.0.1:{pg}/postgres?sslcert=/nonexistent/c.crt&sslkey={dir}/client.key")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT"],
            expect: &["DATABASE_URL", "sslcert", "no such file"],
            absent: &["config file"]
        }
        // ---- PostgreSQL: passwords
        "password and password file" {
            env: &[("POSTGRES_PASSWORD", ONE_CHAR), ("POSTGRES_PASSWORD_FILE", "{dir}/one-char.pw")],
            expect: &["POSTGRES_PASSWORD", "POSTGRES_PASSWORD_FILE", "one of"]
        }
        "password file: missing" {
            env: &[("POSTGRES_PASSWORD_FILE", "/nonexistent/pw")],
            unset: &["POSTGRES_PASSWORD"],
            expect: &["POSTGRES_PASSWORD_FILE", "no such file"]
        }
        "password file: a directory" {
            env: &[("POSTGRES_PASSWORD_FILE", "{dir}")],
            unset: &["POSTGRES_PASSWORD"],
            expect: &["POSTGRES_PASSWORD_FILE", "file"]
        }
        "password file: not UTF-8" {
            env: &[("POSTGRES_PASSWORD_FILE", "{dir}/latin1.pw")],
            unset: &["POSTGRES_PASSWORD"],
            expect: &["POSTGRES_PASSWORD_FILE", "UTF-8"],
            absent: &["s\u{e9}same"]
        }
        "password file: empty" {
            env: &[("POSTGRES_PASSWORD_FILE", "{dir}/empty.pw")],
            unset: &["POSTGRES_PASSWORD"],
            expect: &["POSTGRES_PASSWORD_FILE", "empty"]
        }
        // ---- PostgreSQL: DATABASE_URL
        "url: not postgres" {
            env: &[("DATABASE_URL", "mysql://root:Ω@127.0.0.1:{pg}/db")],
            expect: &["DATABASE_URL", "postgres://"]
        }
        "url: unknown parameter" {
            env: &[("DATABASE_URL", "postgres://postgres@127.0.0.1:{pg}/postgres?foo=bar")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT"],
            expect: &["DATABASE_URL", "foo", "sslmode"]
        }
        "url: libpq parameter dbinit does not support" {
            env: &[("DATABASE_URL", "postgres://postgres@127.0.0.1:{pg}/postgres?gssencmode=require")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT"],
            expect: &["DATABASE_URL", "gssencmode", "not supported"]
        }
        "url: sslcrl is not supported" {
            env: &[("DATABASE_URL", "postgres://postgres@127.0.0.1:{pg}/postgres?sslmode=verify-full&sslcrl=/x.crl")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT"],
            expect: &["DATABASE_URL", "sslcrl", "not supported"]
        }
        "url: two hosts" {
            env: &[("DATABASE_URL", "postgres://postgres:Ω@127.0.0.1,127.0.0.2:{pg}/postgres")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT"],
            expect: &["DATABASE_URL", "one host"]
        }
        "url: port out of range" {
            env: &[("DATABASE_URL", "postgres://postgres:Ω@127.0.0.1:99999/postgres")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT"],
            expect: &["DATABASE_URL", "port"]
        }
        "url: disagrees with POSTGRES_HOST" {
            env: &[("DATABASE_URL", "postgres://postgres:Ω@10.1.1.1:{pg}/postgres")],
            expect: &["DATABASE_URL", "POSTGRES_HOST", "disagree"]
        }
        "url: encoded password, bad sslmode" {
            env: &[("DATABASE_URL", "postgres://app:{encoded}@127.0.0.1:{pg}/db?sslmode=strict")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER"],
            expect: &["DATABASE_URL", "sslmode", "verify-full"]
        }
        "url: bad percent-encoding" {
            env: &[("DATABASE_URL", "postgres://app:%zzΩ@127.0.0.1:{pg}/db")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER"],
            expect: &["DATABASE_URL", "postgres://"]
        }
        "url: sslmode disagrees with POSTGRES_SSLMODE" {
            env: &[("DATABASE_URL", "postgres://postgres@127.0.0.1:{pg}/postgres?sslmode=require"), ("POSTGRES_SSLMODE", "disable")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT"],
            expect: &["DATABASE_URL", "POSTGRES_SSLMODE", "disagree"]
        }
        "url: connect_timeout not a number" {
            env: &[("DATABASE_URL", "postgres://postgres@127.0.0.1:{pg}/postgres?connect_timeout=soon")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT"],
            expect: &["DATABASE_URL", "connect_timeout", "seconds"]
        }
        "url: target_session_attrs unknown" {
            env: &[("DATABASE_URL", "postgres://postgres@127.0.0.1:{pg}/postgres?target_session_attrs=bogus")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT"],
            expect: &["DATABASE_URL", "target_session_attrs", "read-write"]
        }
        "url file: missing" { env: &[("DATABASE_URL_FILE", "/nonexistent/url")], expect: &["DATABASE_URL_FILE", "no such file"] }
        "url and url file" {
            env: &[("DATABASE_URL", "postgres://postgres:Ω@127.0.0.1:{pg}/postgres"), ("DATABASE_URL_FILE", "{dir}/url")],
            unset: &["POSTGRES_HOST", "POSTGRES_PORT"],
            expect: &["DATABASE_URL", "DATABASE_URL_FILE", "one of"]
        }
        // ---- identifiers and their length limits
        "database name over 63 bytes" { env: &[("POSTGRES_DB", "{long}")], expect: &["POSTGRES_DB", "63 bytes"] }
        "user name over 63 bytes" { env: &[("POSTGRES_USER", "{long}")], expect: &["POSTGRES_USER", "63 bytes"] }
        "maintenance database over 63 bytes" { env: &[("POSTGRES_MAINTENANCE_DB", "{long}")], expect: &["POSTGRES_MAINTENANCE_DB", "63 bytes"] }
        "history table: three parts" { env: &[("DBINIT_HISTORY_TABLE", "a.b.c")], expect: &["DBINIT_HISTORY_TABLE", "schema.table"] }
        "history table over 63 bytes" { env: &[("DBINIT_HISTORY_TABLE", "{long}")], expect: &["DBINIT_HISTORY_TABLE", "63"] }
        "seeds table: only a dot" { env: &[("DBINIT_SEEDS_TABLE", ".")], expect: &["DBINIT_SEEDS_TABLE", "schema.table"] }
        // ---- durations
        "timeout: a word" { env: &[("DBINIT_TIMEOUT", "forever")], expect: &["DBINIT_TIMEOUT", "--timeout", "1m30s"] }
        "timeout: negative" { env: &[("DBINIT_TIMEOUT", "-5s")], expect: &["DBINIT_TIMEOUT", "1m30s"] }
        "timeout: unknown unit" { env: &[("DBINIT_TIMEOUT", "5y")], expect: &["DBINIT_TIMEOUT", "1m30s"] }
        "timeout: a unit missing at the end" { env: &[("DBINIT_TIMEOUT", "1m30")], expect: &["DBINIT_TIMEOUT", "1m30s"] }
        "timeout: flag" { args: &["--timeout=1.5.3s"], expect: &["DBINIT_TIMEOUT", "--timeout", "1m30s"] }
        "connect timeout: words" { env: &[("DBINIT_CONNECT_TIMEOUT", "5 minutes")], expect: &["DBINIT_CONNECT_TIMEOUT", "1m30s"] }
        "lock timeout: words" { env: &[("DBINIT_LOCK_TIMEOUT", "ten minutes")], expect: &["DBINIT_LOCK_TIMEOUT", "1m30s"] }
        "backoff: max below initial" {
            env: &[("DBINIT_BACKOFF_INITIAL", "10s"), ("DBINIT_BACKOFF_MAX", "1s")],
            expect: &["DBINIT_BACKOFF_MAX", "DBINIT_BACKOFF_INITIAL"]
        }
        // ---- logging
        "log format: unknown" { env: &[("DBINIT_LOG_FORMAT", "xml")], expect: &["DBINIT_LOG_FORMAT", "text", "json"] }
        "log filter: unparsable" { env: &[("DBINIT_LOG", "info,dbinit=loud")], expect: &["DBINIT_LOG", "info"] }
        // ---- Redis
        "redis url: not redis" { env: &[("REDIS_URL", "http://127.0.0.1:{redis}")], expect: &["REDIS_URL", "redis://", "valkeys://"] }
        "redis url: port zero" { env: &[("REDIS_URL", "redis://:Ω@127.0.0.1:0")], expect: &["REDIS_URL", "port"] }
        "redis url: db not a number" { env: &[("REDIS_URL", "redis://127.0.0.1:{redis}/cache")], expect: &["REDIS_URL", "database number"] }
        "redis url: unknown protocol" { env: &[("REDIS_URL", "redis://127.0.0.1:{redis}?protocol=resp9")], expect: &["REDIS_URL", "protocol", "resp3"] }
        "redis url: unknown parameter" { env: &[("REDIS_URL", "redis://127.0.0.1:{redis}?timeout=5")], expect: &["REDIS_URL", "timeout", "protocol"] }
        "redis url: unix without a path" { env: &[("REDIS_URL", "redis+unix://")], expect: &["REDIS_URL", "redis+unix:///"] }
        "redis url: encoded password, bad db" {
            env: &[("REDIS_URL", "redis://app:{encoded}@127.0.0.1:{redis}/x")],
            expect: &["REDIS_URL", "database number"]
        }
        "redis url and url file" { env: &[("REDIS_URL_FILE", "{dir}/url")], expect: &["REDIS_URL", "REDIS_URL_FILE", "one of"] }
        "redis url file: a bad URL inside" {
            env: &[("REDIS_URL_FILE", "{dir}/bad-redis-url")],
            unset: &["REDIS_URL"],
            expect: &["REDIS_URL", "database number"]
        }
        "redis url and host" { env: &[("REDIS_HOST", "127.0.0.1")], expect: &["REDIS_URL", "REDIS_HOST"] }
        "redis db: negative" {
            env: &[("REDIS_HOST", "127.0.0.1"), ("REDIS_DB", "-1")],
            unset: &["REDIS_URL"],
            expect: &["REDIS_DB", "0, 1"]
        }
        "redis port: a word" {
            env: &[("REDIS_HOST", "127.0.0.1"), ("REDIS_PORT", "redis")],
            unset: &["REDIS_URL"],
            expect: &["REDIS_PORT", "1-65535"]
        }
        "redis password and password file" {
            env: &[("REDIS_PASSWORD", ONE_CHAR), ("REDIS_PASSWORD_FILE", "{dir}/one-char.pw")],
            expect: &["REDIS_PASSWORD", "REDIS_PASSWORD_FILE", "one of"]
        }
        "redis password without a server" {
            env: &[("REDIS_PASSWORD", ONE_CHAR)],
            unset: &["REDIS_URL"],
            expect: &["REDIS_HOST", "REDIS_URL"]
        }
        "redis CA: no such file" {
            env: &[("REDIS_URL", "rediss://127.0.0.1:{redis}"), ("REDIS_SSLROOTCERT", "/nonexistent/ca.pem")],
            expect: &["REDIS_SSLROOTCERT", "no such file", "PEM"]
        }
        "redis CA without TLS" { env: &[("REDIS_SSLROOTCERT", "{dir}/ca.crt")], expect: &["REDIS_SSLROOTCERT", "rediss://"] }
        // ---- config file
        "config file: missing" { env: &[("DBINIT_CONFIG", "/nonexistent/dbinit.yaml")], expect: &["DBINIT_CONFIG", "/nonexistent/dbinit.yaml"] }
        "config file: unknown key" { env: &[("DBINIT_CONFIG", "{dir}/unknown-key.yaml")], expect: &["DBINIT_CONFIG", "hots"] }
        "config file: bad YAML" { env: &[("DBINIT_CONFIG", "{dir}/bad.yaml")], expect: &["DBINIT_CONFIG", "YAML"] }
        "config file: bad port" {
            env: &[("DBINIT_CONFIG", "{dir}/bad-port.yaml")],
            unset: &["POSTGRES_PORT"],
            expect: &["postgres.port", "config file", "1-65535"]
        }
        "config file: bad duration" { env: &[("DBINIT_CONFIG", "{dir}/bad-timeout.yaml")], unset: &["DBINIT_TIMEOUT"], expect: &["timeout", "config file", "1m30s"] }
        // ---- migrations and commands
        "migrations dir: missing" { env: &[("DBINIT_MIGRATIONS_DIR", "/nonexistent/migrations")], expect: &["DBINIT_MIGRATIONS_DIR", "/nonexistent/migrations"] }
        "migrations dir: bad file name" { env: &[("DBINIT_MIGRATIONS_DIR", "{dir}/badnames")], expect: &["V1_create_users.sql", "V{version}__{name}.sql"] }
        // ---- migration layouts (tests/layouts.rs reads the good ones)
        "layout: unknown" { env: &[("DBINIT_LAYOUT", "flyway")], expect: &["DBINIT_LAYOUT", "--layout", "dbinit, sqlx, golang-migrate, dbmate, prisma"] }
        "layouts: mixed in one folder" {
            env: &[("DBINIT_MIGRATIONS_DIR", "{dir}/mixed")],
            expect: &["V1__accounts.sql (dbinit)", "20230404095503_orders.up.sql", "mixes layouts", "DBINIT_LAYOUT"]
        }
        "layouts: a dbmate file without -- migrate:up" {
            env: &[("DBINIT_MIGRATIONS_DIR", "{dir}/dbmate-no-up")],
            expect: &["20240102000000_orders.sql", "-- migrate:up", "20240101000000_accounts.sql"]
        }
        "layouts: dbmate named, a file without -- migrate:up" {
            env: &[("DBINIT_MIGRATIONS_DIR", "{dir}/dbmate-no-up"), ("DBINIT_LAYOUT", "dbmate")],
            expect: &["20240102000000_orders.sql", "-- migrate:up", "dbmate"]
        }
        "layouts: one version in two layouts" {
            env: &[("DBINIT_MIGRATIONS_DIR", "{dir}/dup-across")],
            expect: &["V1__accounts.sql", "1_accounts.up.sql", "mixes layouts"]
        }
        "layouts: one version written twice (dbmate 001 and 1)" {
            env: &[("DBINIT_MIGRATIONS_DIR", "{dir}/dup-dbmate")],
            expect: &["001_accounts.sql", "1_orders.sql", "same version 1"]
        }
        "layouts: a version above i64" {
            env: &[("DBINIT_MIGRATIONS_DIR", "{dir}/too-big")],
            expect: &["9223372036854775808_big.up.sql", "too large", "0 to 9223372036854775807"]
        }
        "layouts: a dbinit version above i64" {
            env: &[("DBINIT_MIGRATIONS_DIR", "{dir}/too-big-v")],
            expect: &["V9223372036854775808__big.sql", "too large", "0 to 9223372036854775807"]
        }
        "layouts: .sql files only in subfolders" {
            env: &[("DBINIT_MIGRATIONS_DIR", "{dir}/nested")],
            expect: &["postgres/V1__accounts.sql", "subfolders", "DBINIT_MIGRATIONS_DIR", "DBINIT_LAYOUT"]
        }
        "status --exit-code: not a boolean" { cmd: "status", env: &[("DBINIT_STATUS_EXIT_CODE", "maybe")], expect: &["exit-code", "true"] }
    }
}

/// Files some cases point at.
fn fixtures(dir: &Path, pki: &Pki) {
    let w = |name: &str, content: &[u8]| {
        std::fs::write(dir.join(name), content).expect("write fixture")
    };
    w("not-pem.txt", b"hello, I am not a certificate\n");
    w("one-char.pw", ONE_CHAR.as_bytes());
    w("latin1.pw", b"s\xe9same\n");
    w("empty.pw", b"");
    w("url", b"postgres://postgres@127.0.0.1/postgres\n");
    w("bad-redis-url", "redis://:Ω@127.0.0.1:1/cache\n".as_bytes());
    w("unknown-key.yaml", b"postgres: {hots: db}\n");
    w("bad.yaml", b"postgres: [\n");
    w("bad-port.yaml", b"postgres: {port: abc}\n");
    w("bad-timeout.yaml", b"timeout: 1y\n");
    let client = pki.client_cert("client", "postgres");
    for (from, to) in [
        (&client.cert, "client.crt"),
        (&client.key, "client.key"),
        (&client.key, "open.key"),
        (&client.cert, "cert-as.key"),
    ] {
        std::fs::copy(from, dir.join(to)).expect("copy certificate");
    }
    std::fs::copy(pki.ca(), dir.join("ca.crt")).expect("copy CA");
    set_mode(&dir.join("client.key"), 0o600);
    set_mode(&dir.join("open.key"), 0o644);
    set_mode(&dir.join("cert-as.key"), 0o600);
    let up = b"-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\nDROP TABLE t;\n";
    for (folder, files) in [
        (
            "mixed",
            &[
                ("V1__accounts.sql", &b"SELECT 1;"[..]),
                ("20230404095503_orders.up.sql", b"SELECT 2;"),
                ("20230404095503_orders.down.sql", b"SELECT 3;"),
            ][..],
        ),
        (
            "dbmate-no-up",
            &[
                ("20240101000000_accounts.sql", &up[..]),
                ("20240102000000_orders.sql", b"CREATE TABLE o (id int);\n"),
            ],
        ),
        (
            "dup-across",
            &[
                ("V1__accounts.sql", b"SELECT 1;"),
                ("1_accounts.up.sql", b"SELECT 1;"),
                ("1_accounts.down.sql", b"SELECT 1;"),
            ],
        ),
        (
            "dup-dbmate",
            &[("001_accounts.sql", &up[..]), ("1_orders.sql", &up[..])],
        ),
        (
            "too-big",
            &[
                ("1_ok.up.sql", b"SELECT 1;"),
                ("9223372036854775808_big.up.sql", b"SELECT 2;"),
            ],
        ),
        (
            "too-big-v",
            &[("V9223372036854775808__big.sql", b"SELECT 2;")],
        ),
        ("nested/postgres", &[("V1__accounts.sql", b"SELECT 1;")]),
    ] {
        std::fs::create_dir_all(dir.join(folder)).expect("mkdir");
        for (name, content) in files {
            w(&format!("{folder}/{name}"), content);
        }
    }
    std::fs::create_dir(dir.join("badnames")).expect("mkdir");
    w(
        "badnames/V1_create_users.sql",
        b"CREATE TABLE t (id int);\n",
    );
}

/// redis-server's count of connections received so far (this look included).
fn redis_connections(port: u16) -> u64 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
    s.write_all(b"INFO stats\r\n").expect("send INFO");
    let mut text = String::new();
    let mut buf = [0u8; 8192];
    while !text.contains("total_connections_received:") || !text.ends_with("\r\n") {
        let n = s.read(&mut buf).expect("read INFO");
        assert!(n > 0, "redis closed the connection");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_connections_received")
}

fn pg_connections(pg: &Pg) -> usize {
    pg.log().matches("connection received").count()
}

#[test]
fn every_bad_configuration_exits_2_naming_the_setting_and_sends_nothing() {
    let pg = Pg::init(PgOpts {
        settings: vec![("log_connections".into(), "on".into())],
        ..PgOpts::default()
    });
    pg.start();
    let redis = Redis::start(RedisOpts::default());
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    fixtures(dir.path(), &pki);
    let long = "x".repeat(64);
    let subst = |s: &str| {
        s.replace("{pg}", &pg.port.to_string())
            .replace("{redis}", &redis.port.to_string())
            .replace("{dir}", &dir.path().display().to_string())
            .replace("{pgpw}", PG_PASSWORD)
            .replace("{encoded}", ENCODED)
            .replace("{long}", &long)
    };
    let base: BTreeMap<String, String> = pg
        .env()
        .into_iter()
        .chain([(
            "REDIS_URL".to_string(),
            format!("redis://127.0.0.1:{}", redis.port),
        )])
        .collect();
    let cases = corpus();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let pg_before = pg_connections(&pg);
    let redis_before = redis_connections(redis.port);
    let mut failures = Vec::new();
    for c in &cases {
        let mut env = base.clone();
        for k in c.unset {
            env.remove(*k);
        }
        for (k, v) in c.env {
            env.insert(k.to_string(), subst(v));
        }
        let term = dir.path().join("termination-log");
        let _ = std::fs::remove_file(&term);
        // A short deadline, in case a case is not rejected and waits for something.
        if !c.unset.contains(&"DBINIT_TIMEOUT") {
            env.entry("DBINIT_TIMEOUT".into())
                .or_insert_with(|| "5s".into());
        }
        let mut cmd = command("dbinit");
        cmd.arg(c.cmd)
            .args(c.args.iter().map(|a| subst(a)))
            .envs(&env)
            .env("DBINIT_TERMINATION_MESSAGE_PATH", &term);
        let out = run(cmd);
        let all = format!(
            "{}\n{}",
            out.all_output(),
            std::fs::read_to_string(&term).unwrap_or_default()
        );
        let lower = all.to_lowercase();
        let mut why = Vec::new();
        if out.code != Some(2) {
            why.push(format!("exit {:?}, not 2", out.code));
        }
        for e in c.expect {
            if !lower.contains(&e.to_lowercase()) {
                why.push(format!("does not say {e:?}"));
            }
        }
        for a in c.absent {
            if all.contains(a) {
                why.push(format!("says {a:?}"));
            }
        }
        for secret in [ONE_CHAR, ENCODED, DECODED, PG_PASSWORD] {
            if all.contains(secret) {
                why.push(format!("echoes the secret {secret:?}"));
            }
        }
        if !why.is_empty() {
            failures.push(format!(
                "{}: {}\n    output: {}",
                c.name,
                why.join("; "),
                all.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        pg_connections(&pg),
        pg_before,
        "a bad configuration reached PostgreSQL"
    );
    assert_eq!(
        redis_connections(redis.port),
        redis_before + 1,
        "a bad configuration reached Redis"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE NOT datistemplate"
        ),
        "1",
        "a database was created"
    );
}
