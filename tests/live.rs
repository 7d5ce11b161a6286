//! `dbinit run` against a database that is serving traffic (issue 16), on real servers:
//! DDL behind a long reader retries under a short `lock_timeout` instead of queueing the
//! application behind it; inherited statement timeouts do not kill migrations; a server
//! restart or crash mid-run is survived by the same process. (PgBouncer: tests/pooler.rs.)

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dbinit_tests::fixtures::{
    dbinit_run, logged_migrations, migrations, ok, spawn_piped, write_migrations,
};
use dbinit_tests::{PG_PASSWORD, Pg, PsqlSession, finish, run};

/// The documented default of DBINIT_MIGRATION_LOCK_TIMEOUT.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(3);

/// The application: one psql session running `query` about every 50 ms, each timed by psql
/// (`\timing`: from sending the query to its result, i.e. how long it was blocked).
struct App {
    child: Child,
    stop: Arc<AtomicBool>,
    feeder: std::thread::JoinHandle<()>,
}

impl App {
    fn start(pg: &Pg, db: &str, query: &str) -> Self {
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p"])
            .arg(pg.port.to_string())
            .args(["-U", "postgres", "-d", db])
            .env("PGPASSWORD", PG_PASSWORD)
            .env("PGAPPNAME", "the-app")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn psql");
        let mut stdin = child.stdin.take().expect("stdin");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let query = query.to_string();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(b"\\timing on\n");
            // Bounded: at most 1200 queries (a minute of feeding).
            for _ in 0..1200 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                if stdin.write_all(format!("{query};\n").as_bytes()).is_err() {
                    break;
                }
                let _ = stdin.flush();
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = stdin.write_all(b"\\q\n");
        });
        Self {
            child,
            stop,
            feeder,
        }
    }

    /// Stops feeding, lets psql finish what it was given and returns every query's latency.
    fn stop(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.feeder.join();
        let out = self.child.wait_with_output().expect("psql output");
        BufReader::new(&out.stdout[..])
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| {
                let ms: f64 = l
                    .strip_prefix("Time: ")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()?;
                Some(Duration::from_secs_f64(ms / 1000.0))
            })
            .collect()
    }
}

#[test]
fn ddl_behind_a_long_reader_retries_and_the_app_never_stalls_past_lock_timeout() {
    let pg = Pg::start_new();
    let db = "live_ddl";
    let dir = migrations(&[(
        "V1__items.sql",
        "CREATE TABLE items (id int PRIMARY KEY);\nINSERT INTO items SELECT generate_series(1, 100);",
    )]);
    ok(&run(dbinit_run(pg.env(), db, dir.path())));
    write_migrations(
        dir.path(),
        &[(
            "V2__add_note.sql",
            "ALTER TABLE items ADD COLUMN note text;",
        )],
    );

    // A reader holds ACCESS SHARE on items for 15 s (a report, a slow request).
    let mut reader = PsqlSession::open(&pg, db, "long-reader");
    reader.send("BEGIN;");
    reader.send("SELECT count(*) FROM items;");
    let held_at = Instant::now();
    PsqlSession::wait_for_table_lock(&pg, db, "long-reader", "items");

    // The migration starts behind it (default lock timeout), and the application keeps
    // reading the same table meanwhile.
    let (child, started) = spawn_piped(dbinit_run(pg.env(), db, dir.path()));
    let app = App::start(&pg, db, "SELECT count(*) FROM items");
    std::thread::sleep(Duration::from_secs(15).saturating_sub(held_at.elapsed()));
    reader.send("COMMIT;");
    reader.close();
    let out = finish(child, started);
    std::thread::sleep(Duration::from_millis(300));
    let latencies = app.stop();

    ok(&out);
    assert_eq!(pg.history(db), "1,2");
    assert_eq!(
        pg.psql(
            db,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'"
        ),
        "1"
    );
    assert!(
        out.elapsed >= Duration::from_secs(10),
        "the migration waited for the reader: {:?}",
        out.elapsed
    );
    assert!(
        out.stderr.contains("retrying") && out.stderr.contains("long-reader"),
        "each retry names the session holding the lock:\n{}",
        out.stderr
    );
    let worst = latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "app queries: {}, worst latency {worst:?}, migration took {:?}",
        latencies.len(),
        out.elapsed
    );
    assert!(
        latencies.len() >= 20,
        "the application kept querying during the run: {latencies:?}"
    );
    assert!(
        worst > Duration::from_millis(500),
        "the application met the migration's lock attempts (else this measures nothing): {worst:?}"
    );
    assert!(
        worst <= DEFAULT_LOCK_TIMEOUT + Duration::from_secs(1),
        "an application query waited {worst:?}, more than lock_timeout + 1 s"
    );
}

#[test]
fn per_file_lock_timeout_header_and_a_bad_header() {
    let pg = Pg::start_new();
    let db = "live_header";
    let dir = migrations(&[("V1__items.sql", "CREATE TABLE items (id int);")]);
    ok(&run(dbinit_run(pg.env(), db, dir.path())));
    // The setting says 300 ms; the file says it may wait 20 s for its lock.
    write_migrations(
        dir.path(),
        &[(
            "V2__patient.sql",
            "-- dbinit:lock-timeout=20s\nALTER TABLE items ADD COLUMN note text;",
        )],
    );
    let mut reader = PsqlSession::open(&pg, db, "short-reader");
    reader.send("BEGIN;");
    reader.send("SELECT count(*) FROM items;");
    PsqlSession::wait_for_table_lock(&pg, db, "short-reader", "items");
    let mut c = dbinit_run(pg.env(), db, dir.path());
    c.env("DBINIT_MIGRATION_LOCK_TIMEOUT", "300ms");
    let (child, started) = spawn_piped(c);
    std::thread::sleep(Duration::from_secs(2));
    reader.send("COMMIT;");
    reader.close();
    let out = finish(child, started);
    ok(&out);
    assert!(
        !out.stderr.contains("retrying"),
        "the header's 20 s applied: one attempt that waited:\n{}",
        out.stderr
    );
    assert!(
        out.elapsed >= Duration::from_millis(1500),
        "{:?}",
        out.elapsed
    );
    assert_eq!(pg.history(db), "1,2");

    write_migrations(
        dir.path(),
        &[(
            "V3__bad.sql",
            "-- dbinit:lock-timeout=soon\nALTER TABLE items ADD COLUMN x int;",
        )],
    );
    let out = run(dbinit_run(pg.env(), db, dir.path()));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("V3__bad") && out.stderr.contains("lock-timeout"),
        "names the file and the directive: {}",
        out.stderr
    );
    assert_eq!(pg.history(db), "1,2", "nothing ran");

    let mut c = dbinit_run(pg.env(), db, dir.path());
    c.env("DBINIT_MIGRATION_LOCK_TIMEOUT", "soon");
    let out = run(c);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("DBINIT_MIGRATION_LOCK_TIMEOUT"),
        "names the setting: {}",
        out.stderr
    );
}

#[test]
fn inherited_statement_timeout_does_not_kill_a_long_migration() {
    let pg = Pg::start_new();
    let db = "live_timeout";
    pg.psql(
        "postgres",
        "CREATE ROLE app LOGIN PASSWORD 'app-pw'; ALTER ROLE app SET statement_timeout = '1s'",
    );
    pg.psql("postgres", &format!("CREATE DATABASE {db} OWNER app"));
    let env = || {
        let mut e = pg.env();
        e.retain(|(k, _)| k != "POSTGRES_USER" && k != "POSTGRES_PASSWORD");
        e.push(("POSTGRES_USER".into(), "app".into()));
        e.push(("POSTGRES_PASSWORD".into(), "app-pw".into()));
        e
    };
    // The role's timeout is real: a plain 2 s query as app is cancelled.
    let control = Command::new("psql")
        .args(["-X", "-q", "-h", "127.0.0.1", "-p"])
        .arg(pg.port.to_string())
        .args(["-U", "app", "-d", db, "-c", "SELECT pg_sleep(2)"])
        .env("PGPASSWORD", "app-pw")
        .output()
        .expect("psql");
    assert!(
        String::from_utf8_lossy(&control.stderr).contains("statement timeout"),
        "{}",
        String::from_utf8_lossy(&control.stderr)
    );

    let dir = migrations(&[
        (
            "V1__slow.sql",
            "CREATE TABLE slow (id int);\nSELECT pg_sleep(3);\nINSERT INTO slow VALUES (1);",
        ),
        (
            "V2__slow_index.sql",
            "-- dbinit:no-transaction\nSELECT pg_sleep(2.5);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS slow_id ON slow (id);",
        ),
    ]);
    let out = run(dbinit_run(env(), db, dir.path()));
    ok(&out);
    assert_eq!(pg.history(db), "1,2");
    assert_eq!(
        pg.psql(
            db,
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'slow_id'::regclass"
        ),
        "t"
    );

    // A configured statement timeout does apply: the failure names file and SQLSTATE.
    write_migrations(dir.path(), &[("V3__slower.sql", "SELECT pg_sleep(3);")]);
    let mut c = dbinit_run(env(), db, dir.path());
    c.env("DBINIT_STATEMENT_TIMEOUT", "1s");
    let out = run(c);
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    assert!(
        out.stderr.contains("V3__slower") && out.stderr.contains("57014"),
        "{}",
        out.stderr
    );
}

/// How many migrations are recorded so far (0 while the server is down or the table absent).
fn applied_count(pg: &Pg, db: &str) -> u32 {
    pg.try_psql(db, "SELECT count(*) FROM refinery_schema_history")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Kills PostgreSQL like a node losing power would: SIGKILL to the postmaster and every
/// backend (pg_ctl makes the postmaster the leader of its own process group).
fn kill_9(pg: &Pg) {
    let pidfile =
        std::fs::read_to_string(pg.data_dir().join("postmaster.pid")).expect("postmaster.pid");
    let pid = pidfile.lines().next().expect("pid line").trim().to_string();
    let status = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -KILL -{pid}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            Instant::now() < deadline,
            "postmaster {pid} survived SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn server_lost_mid_run_is_survived(db: &str, stop: impl Fn(&Pg)) {
    let pg = Pg::start_new();
    let dir = logged_migrations(40, 0.1);
    let (child, started) = spawn_piped(dbinit_run(pg.env(), db, dir.path()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while applied_count(&pg, db) < 8 {
        assert!(Instant::now() < deadline, "the run never got going");
        std::thread::sleep(Duration::from_millis(50));
    }
    let down_at = Instant::now();
    stop(&pg);
    std::thread::sleep(Duration::from_secs(1));
    pg.start();
    let up_after = down_at.elapsed();
    let out = finish(child, started);
    ok(&out);
    let reconnect_line = out
        .stderr
        .lines()
        .find(|l| l.contains("reconnected"))
        .unwrap_or("")
        .to_string();
    // How long after the server was back (pg_ctl start returned) the run had reconnected.
    let since_loss: u64 = reconnect_line
        .split("since_loss_ms=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    let lag = Duration::from_millis(since_loss).saturating_sub(up_after);
    eprintln!(
        "{db}: server down for {up_after:?}; reconnected {lag:?} after it was back; run took {:?}",
        out.elapsed
    );
    assert!(
        lag < Duration::from_secs(2),
        "reconnected {lag:?} after the server was back: {reconnect_line}"
    );
    assert!(
        out.stderr.contains("lost the connection"),
        "the loss was seen and survived:\n{}",
        out.stderr
    );
    assert!(!reconnect_line.is_empty(), "{}", out.stderr);
    let all: Vec<String> = (1..=40).map(|v| v.to_string()).collect();
    assert_eq!(pg.history(db), all.join(","));
    assert_eq!(
        pg.psql(db, "SELECT count(*), count(DISTINCT v) FROM applied_log"),
        "40|40",
        "every migration applied exactly once"
    );
    assert!(
        out.stdout.contains("applied") || out.stderr.contains("applied 40"),
        "{}",
        out.stderr
    );
}

#[test]
fn postgres_stopped_and_restarted_mid_run_the_same_process_finishes() {
    server_lost_mid_run_is_survived("live_restart", Pg::stop);
}

#[test]
fn postgres_killed_9_mid_run_the_same_process_finishes() {
    server_lost_mid_run_is_survived("live_crash", kill_9);
}
