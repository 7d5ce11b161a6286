//! `dbinit run` through a real PgBouncer (Debian's `pgbouncer`) in front of a real PostgreSQL
//! (issue 16): the migration lock must keep excluding other runners when the pooler hands
//! server connections from client to client between transactions.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dbinit_tests::fixtures::{dbinit_run, logged_migrations, ok, spawn_piped};
use dbinit_tests::{Finished, PG_PASSWORD, Pg, PgBouncer, PoolMode, finish};

fn ten_runners_through(bouncer: &PgBouncer, pg: &Pg, db: &str) {
    pg.psql("postgres", &format!("CREATE DATABASE {db}"));
    let dir = logged_migrations(6, 0.2);
    let children: Vec<_> = (0..10)
        .map(|_| spawn_piped(dbinit_run(bouncer.env(), db, dir.path())))
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
