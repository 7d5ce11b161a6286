//! `dbinit run` through a real PgBouncer (Debian's `pgbouncer`) in front of a real PostgreSQL
//! (issue 16): the migration lock must keep excluding other runners when the pooler hands
//! server connections from client to client between transactions.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dbinit_tests::{Finished, PG_PASSWORD, Pg, PgBouncer, PoolMode, command, finish};

fn cmd(env: Vec<(String, String)>, db: &str, dir: &Path) -> Command {
    let mut c = command("dbinit");
    c.arg("run")
        .envs(env)
        .env("POSTGRES_DB", db)
        .env("DBINIT_MIGRATIONS_DIR", dir)
        .env("DBINIT_TIMEOUT", "60s");
    c
}

fn spawn(mut c: Command) -> (Child, Instant) {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbinit");
    (child, Instant::now())
}

fn ok(o: &Finished) {
    assert_eq!(o.code, Some(0), "stderr:\n{}", o.stderr);
}

/// A migration set whose every file logs itself, for counting double applies.
fn logged_set() -> tempfile::TempDir {
    let mut files = vec![(
        "V1__log.sql".to_string(),
        "CREATE TABLE applied_log (v int NOT NULL);\nINSERT INTO applied_log VALUES (1);"
            .to_string(),
    )];
    for v in 2..=6 {
        files.push((
            format!("V{v}__step.sql"),
            format!("INSERT INTO applied_log VALUES ({v});\nSELECT pg_sleep(0.2);"),
        ));
    }
    let dir = tempfile::tempdir().expect("tmp");
    for (n, s) in &files {
        std::fs::write(dir.path().join(n), s).expect("write");
    }
    dir
}

fn ten_runners_through(bouncer: &PgBouncer, pg: &Pg, db: &str) {
    pg.psql("postgres", &format!("CREATE DATABASE {db}"));
    let dir = logged_set();
    let children: Vec<_> = (0..10)
        .map(|_| spawn(cmd(bouncer.env(), db, dir.path())))
        .collect();
    let outs: Vec<Finished> = children.into_iter().map(|(c, s)| finish(c, s)).collect();
    for o in &outs {
        ok(o);
    }
    assert_eq!(pg.history(db), "1,2,3,4,5,6");
    assert_eq!(
        pg.psql(db, "SELECT count(*), count(DISTINCT v) FROM applied_log"),
        "6|6",
        "each migration applied exactly once"
    );
    let slowest = outs.iter().map(|o| o.elapsed).max().unwrap_or_default();
    eprintln!("{db}: 10 runners through PgBouncer, slowest {slowest:?}");
}

#[test]
fn the_harness_pooler_really_shares_session_locks_in_transaction_mode() {
    // The hazard the migration lock must survive: a session-level advisory lock taken
    // through a transaction-mode pooler is held by a server connection another client gets.
    let pg = Pg::start_new();
    let bouncer = PgBouncer::start(&pg, PoolMode::Transaction, 1);
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p"])
            .arg(bouncer.port.to_string())
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .env("PGPASSWORD", PG_PASSWORD)
            .output()
            .expect("psql");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let mut a = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p"])
        .arg(bouncer.port.to_string())
        .args(["-U", "postgres", "-d", "postgres"])
        .env("PGPASSWORD", PG_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("psql");
    let mut a_in = a.stdin.take().expect("stdin");
    a_in.write_all(b"SELECT pg_advisory_lock(42);\n")
        .expect("write");
    a_in.flush().expect("flush");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42",
    ) != "1"
    {
        assert!(Instant::now() < deadline, "client A never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        psql("SELECT pg_try_advisory_lock(42)"),
        "t",
        "client B got A's server connection and with it A's session lock"
    );
    drop(a_in);
    let _ = a.wait();
}

#[test]
fn ten_runners_through_pgbouncer_in_transaction_mode_apply_each_migration_once() {
    let pg = Pg::start_new();
    // Two server connections for ten runners: server connections are shared all the time.
    let bouncer = PgBouncer::start(&pg, PoolMode::Transaction, 2);
    ten_runners_through(&bouncer, &pg, "live_pool_tx");
}

#[test]
fn ten_runners_through_pgbouncer_in_session_mode_apply_each_migration_once() {
    let pg = Pg::start_new();
    let bouncer = PgBouncer::start(&pg, PoolMode::Session, 30);
    ten_runners_through(&bouncer, &pg, "live_pool_session");
}
