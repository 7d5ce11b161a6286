//! `dbinit run`, `wait` and `status` against real PostgreSQL, with real processes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dbinit_tests::{Finished, Pg, command, finish, run};

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// A migration set in a temp dir: `files` at the top, `seeds` under seeds/.
fn set(files: &[(&str, &str)], seeds: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    write_set(dir.path(), files, seeds);
    dir
}

fn write_set(dir: &Path, files: &[(&str, &str)], seeds: &[(&str, &str)]) {
    for (n, s) in files {
        std::fs::write(dir.join(n), s).expect("write migration");
    }
    if !seeds.is_empty() {
        std::fs::create_dir_all(dir.join("seeds")).expect("mkdir seeds");
        for (n, s) in seeds {
            std::fs::write(dir.join("seeds").join(n), s).expect("write seed");
        }
    }
}

struct Target<'a> {
    pg: &'a Pg,
    db: String,
    dir: &'a Path,
    extra: Vec<(String, String)>,
}

impl Target<'_> {
    fn cmd(&self, sub: &str) -> Command {
        let mut c = command("dbinit");
        c.arg(sub)
            .envs(self.pg.env())
            .env("POSTGRES_DB", &self.db)
            .env("DBINIT_MIGRATIONS_DIR", self.dir)
            .env("DBINIT_TIMEOUT", "60s")
            .envs(self.extra.iter().cloned());
        c
    }

    fn run(&self, sub: &str) -> Finished {
        run(self.cmd(sub))
    }

    fn spawn(&self, sub: &str) -> (Child, Instant) {
        let child = self
            .cmd(sub)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dbinit");
        (child, Instant::now())
    }

    fn sql(&self, q: &str) -> String {
        self.pg.psql(&self.db, q)
    }

    fn history(&self) -> String {
        self.pg.history(&self.db)
    }
}

fn termination(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("termination-log")).unwrap_or_default()
}

#[test]
fn fresh_server_gets_the_application_schema_once() {
    // The embedded set: the agentic_deals schema and its seeds.
    let pg = Pg::start_new();
    let tm = tempfile::tempdir().expect("tmp");
    let env = || {
        let mut c = command("dbinit");
        c.arg("run").envs(pg.env()).env(
            "DBINIT_TERMINATION_MESSAGE_PATH",
            tm.path().join("termination-log"),
        );
        c
    };
    let first = run(env());
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert!(
        first.stderr.contains("created database"),
        "{}",
        first.stderr
    );
    let hist = pg.psql(
        "agentic_deals",
        "SELECT count(*), count(DISTINCT version) FROM refinery_schema_history",
    );
    assert_eq!(hist, "7|7");
    for table in [
        "users",
        "markets",
        "categories",
        "deals",
        "price_history",
        "tracked_deals",
        "goals",
        "notifications",
    ] {
        assert_eq!(
            pg.psql(
                "agentic_deals",
                &format!("SELECT to_regclass('{table}') IS NOT NULL")
            ),
            "t",
            "{table} exists"
        );
    }
    assert_eq!(
        pg.psql("agentic_deals", "SELECT count(*) FROM markets"),
        "5"
    );
    assert_eq!(
        pg.psql("agentic_deals", "SELECT count(*) FROM dbinit_seed_history"),
        "2"
    );
    assert!(
        termination(tm.path()).starts_with("ok: "),
        "{}",
        termination(tm.path())
    );
    assert!(termination(tm.path()).contains("applied 7 migration(s)"));

    let second = run(env());
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(
        second.stderr.contains("nothing to apply"),
        "{}",
        second.stderr
    );
    assert!(
        !second.stderr.contains("lock"),
        "a no-op run takes no lock: {}",
        second.stderr
    );
    assert_eq!(
        pg.psql(
            "agentic_deals",
            "SELECT count(*) FROM refinery_schema_history"
        ),
        "7"
    );
    assert_eq!(
        pg.psql("agentic_deals", "SELECT count(*) FROM markets"),
        "5"
    );
    // refinery's history format: RFC 3339 applied_on, decimal checksum.
    let row = pg.psql(
        "agentic_deals",
        "SELECT applied_on ~ '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z$' AND checksum ~ '^\\d+$' FROM refinery_schema_history WHERE version = 1",
    );
    assert_eq!(row, "t");
}

#[test]
fn ten_concurrent_runners_apply_each_migration_once() {
    let pg = Pg::start_new();
    let dir = set(
        &[
            (
                "V1__log.sql",
                "CREATE TABLE applied_log (migration text NOT NULL, at timestamptz DEFAULT clock_timestamp());\nINSERT INTO applied_log (migration) VALUES ('V1');",
            ),
            (
                "V2__slow.sql",
                "SELECT pg_sleep(0.5);\nINSERT INTO applied_log (migration) VALUES ('V2');",
            ),
            (
                "V3__table.sql",
                "CREATE TABLE things (id int PRIMARY KEY);\nINSERT INTO applied_log (migration) VALUES ('V3');",
            ),
        ],
        &[(
            "001_things.sql",
            "INSERT INTO things VALUES (1), (2) ON CONFLICT DO NOTHING;\nINSERT INTO applied_log (migration) VALUES ('seed');",
        )],
    );
    let t = Target {
        pg: &pg,
        db: "concurrent_app".into(),
        dir: dir.path(),
        extra: vec![],
    };
    let children: Vec<_> = (0..10).map(|_| t.spawn("run")).collect();
    let outs: Vec<Finished> = children.into_iter().map(|(c, s)| finish(c, s)).collect();
    for o in &outs {
        assert_eq!(o.code, Some(0), "{}", o.stderr);
    }
    assert_eq!(t.history(), "1,2,3");
    assert_eq!(
        t.sql("SELECT string_agg(migration, ',' ORDER BY at) FROM applied_log"),
        "V1,V2,V3,seed",
        "every migration and seed ran exactly once"
    );
    let workers = outs
        .iter()
        .filter(|o| o.stderr.contains("applied migration"))
        .count();
    assert_eq!(workers, 1, "exactly one process did the work");
    let waited = outs
        .iter()
        .filter(|o| {
            o.stderr.contains("held by another runner")
                || o.stderr.contains("another runner applied everything")
        })
        .count();
    assert!(
        waited >= 1,
        "the others waited on the lock or found it done"
    );
    pg.assert_no_advisory_lock_soon();
}

/// Kills a runner while its migration runs; returns its outcome and termination message.
fn killed_mid_migration(signal: &str) -> (Finished, String) {
    let pg = Pg::start_new();
    let dir = set(
        &[
            ("V1__first.sql", "CREATE TABLE first_table (id int);"),
            (
                "V2__slow.sql",
                "CREATE TABLE from_slow (id int);\nSELECT pg_sleep(60);",
            ),
        ],
        &[],
    );
    let t = Target {
        pg: &pg,
        db: "killed_app".into(),
        dir: dir.path(),
        extra: vec![kv(
            "DBINIT_TERMINATION_MESSAGE_PATH",
            dir.path().join("termination-log").display(),
        )],
    };
    let (child, started) = t.spawn("run");
    pg.wait_for_query("pg_sleep(60)");
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let out = finish(child, started);
    assert!(
        out.elapsed < Duration::from_secs(20),
        "exited promptly: {:?}",
        out.elapsed
    );
    let tm = termination(dir.path());

    pg.assert_no_advisory_lock_soon();
    assert_eq!(
        t.sql("SELECT to_regclass('from_slow') IS NULL"),
        "t",
        "no trace of V2"
    );
    assert_eq!(t.history(), "1", "V1 applied, V2 absent");

    // The next run (the slow statement now quick) completes.
    write_set(
        dir.path(),
        &[(
            "V2__slow.sql",
            "CREATE TABLE from_slow (id int);\nSELECT pg_sleep(0);",
        )],
        &[],
    );
    let next = t.run("run");
    assert_eq!(next.code, Some(0), "{}", next.stderr);
    assert_eq!(t.history(), "1,2");
    (out, tm)
}

#[test]
fn sigkill_mid_migration_leaves_no_trace_and_no_lock() {
    let (out, _) = killed_mid_migration("-KILL");
    assert_eq!(out.code, None, "killed by a signal");
}

#[test]
fn sigterm_mid_migration_rolls_back_and_exits_8() {
    let (out, tm) = killed_mid_migration("-TERM");
    assert_eq!(out.code, Some(8), "{}", out.stderr);
    assert!(out.stderr.contains("SIGTERM"), "{}", out.stderr);
    assert!(
        tm.starts_with("interrupted (exit 8): interrupted by SIGTERM"),
        "{tm}"
    );
}

#[test]
fn failing_migration_exits_5_and_keeps_earlier_ones() {
    let pg = Pg::start_new();
    let dir = set(
        &[
            ("V1__good.sql", "CREATE TABLE good (id int);"),
            (
                "V2__bad.sql",
                "CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;",
            ),
            ("V3__later.sql", "CREATE TABLE later (id int);"),
        ],
        &[],
    );
    let t = Target {
        pg: &pg,
        db: "failing_app".into(),
        dir: dir.path(),
        extra: vec![kv(
            "DBINIT_TERMINATION_MESSAGE_PATH",
            dir.path().join("termination-log").display(),
        )],
    };
    let out = t.run("run");
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    for needle in ["V2__bad", "42P01", "no_such_table", "line 2", "rolled back"] {
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    }
    assert_eq!(t.history(), "1");
    assert_eq!(
        t.sql("SELECT to_regclass('half_done') IS NULL AND to_regclass('later') IS NULL"),
        "t"
    );
    let tm = termination(dir.path());
    assert!(
        tm.starts_with("migration-failed (exit 5): migration V2__bad failed"),
        "{tm}"
    );
    pg.assert_no_advisory_lock_soon();
}

#[test]
fn edited_or_missing_applied_migration_exits_6() {
    let pg = Pg::start_new();
    let dir = set(
        &[
            ("V1__a.sql", "CREATE TABLE a (id int);"),
            ("V2__b.sql", "CREATE TABLE b (id int);"),
            ("V3__c.sql", "CREATE TABLE c (id int);"),
        ],
        &[],
    );
    let t = Target {
        pg: &pg,
        db: "diverged_app".into(),
        dir: dir.path(),
        extra: vec![kv(
            "DBINIT_TERMINATION_MESSAGE_PATH",
            dir.path().join("termination-log").display(),
        )],
    };
    assert_eq!(t.run("run").code, Some(0));

    std::fs::write(dir.path().join("V2__b.sql"), "CREATE TABLE b (id bigint);").expect("edit");
    let out = t.run("run");
    assert_eq!(out.code, Some(6), "{}", out.stderr);
    assert!(
        out.stderr.contains("V2__b") && out.stderr.contains("edited"),
        "{}",
        out.stderr
    );
    assert!(termination(dir.path()).starts_with("diverged (exit 6)"));

    std::fs::write(dir.path().join("V2__b.sql"), "CREATE TABLE b (id int);").expect("restore");
    std::fs::remove_file(dir.path().join("V2__b.sql")).expect("remove");
    let out = t.run("run");
    assert_eq!(out.code, Some(6), "{}", out.stderr);
    assert!(
        out.stderr.contains("V2__b") && out.stderr.contains("missing"),
        "{}",
        out.stderr
    );
    assert_eq!(t.history(), "1,2,3", "nothing changed");
}

#[test]
fn database_name_with_quotes_and_semicolon_is_created_literally() {
    let pg = Pg::start_new();
    let dir = set(&[("V1__a.sql", "CREATE TABLE a (id int);")], &[]);
    let name = "we\"ird; DROP DATABASE postgres; --name é";
    let t = Target {
        pg: &pg,
        db: name.into(),
        dir: dir.path(),
        extra: vec![],
    };
    let out = t.run("run");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'we\"ird; DROP DATABASE postgres; --name é'"
        ),
        "1"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'postgres'"
        ),
        "1"
    );
    assert_eq!(t.history(), "1");
}

#[test]
fn missing_createdb_privilege_is_exit_4_naming_the_role() {
    let pg = Pg::start_new();
    pg.psql("postgres", "CREATE ROLE no_create LOGIN PASSWORD 'nc-pw'");
    let dir = set(&[("V1__a.sql", "SELECT 1;")], &[]);
    let mut c = command("dbinit");
    c.arg("run")
        .envs(pg.env())
        .env("POSTGRES_USER", "no_create")
        .env("POSTGRES_PASSWORD", "nc-pw")
        .env("POSTGRES_DB", "wanted_db")
        .env("DBINIT_MIGRATIONS_DIR", dir.path());
    let out = run(c);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(
        out.stderr.contains("CREATEDB") && out.stderr.contains("no_create"),
        "{}",
        out.stderr
    );
    assert!(!out.all_output().contains("nc-pw"));
}

#[test]
fn wait_returns_right_after_another_runner_finishes() {
    let pg = Pg::start_new();
    let dir = set(
        &[
            ("V1__a.sql", "CREATE TABLE a (id int);"),
            ("V2__slow.sql", "SELECT pg_sleep(3);"),
        ],
        &[("001.sql", "INSERT INTO a VALUES (1);")],
    );
    let t = Target {
        pg: &pg,
        db: "waited_app".into(),
        dir: dir.path(),
        extra: vec![],
    };
    let (runner, run_started) = t.spawn("run");
    let (waiter, wait_started) = t.spawn("wait");
    let run_out = finish(runner, run_started);
    let run_done = Instant::now();
    let wait_out = finish(waiter, wait_started);
    assert_eq!(run_out.code, Some(0), "{}", run_out.stderr);
    assert_eq!(wait_out.code, Some(0), "{}", wait_out.stderr);
    let lag = Instant::now().saturating_duration_since(run_done);
    assert!(
        lag < Duration::from_millis(1500),
        "wait returned {lag:?} after the run"
    );
    assert!(
        wait_out.elapsed > Duration::from_secs(2),
        "wait really waited"
    );
    assert!(
        !wait_out.stderr.contains("applied migration"),
        "wait applies nothing"
    );
}

#[test]
fn wait_with_nobody_migrating_times_out_naming_what_is_missing() {
    let pg = Pg::start_new();
    let dir = set(
        &[
            ("V1__a.sql", "CREATE TABLE a (id int);"),
            ("V2__b.sql", "SELECT 1;"),
        ],
        &[],
    );
    let t = Target {
        pg: &pg,
        db: "nobody_app".into(),
        dir: dir.path(),
        extra: vec![
            kv("DBINIT_TIMEOUT", "2s"),
            kv(
                "DBINIT_TERMINATION_MESSAGE_PATH",
                dir.path().join("termination-log").display(),
            ),
        ],
    };
    // Database missing entirely: waits for it.
    let out = t.run("wait");
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("nobody_app"), "{}", out.stderr);

    // Database exists with V1 only: names V2.
    std::fs::rename(dir.path().join("V2__b.sql"), dir.path().join("V2__b.hold")).expect("hide");
    assert_eq!(t.run("run").code, Some(0));
    std::fs::rename(dir.path().join("V2__b.hold"), dir.path().join("V2__b.sql")).expect("restore");
    let out = t.run("wait");
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr.contains("V2__b") && !out.stderr.contains("V1__a"),
        "{}",
        out.stderr
    );
    let tm = termination(dir.path());
    assert!(
        tm.starts_with("timeout (exit 3)") && tm.contains("V2__b"),
        "{tm}"
    );
    assert_eq!(t.history(), "1", "wait applied nothing");
}

#[test]
fn lock_held_too_long_is_exit_7_naming_the_holder() {
    let pg = Pg::start_new();
    let dir = set(&[("V1__slow.sql", "SELECT pg_sleep(30);")], &[]);
    let t = Target {
        pg: &pg,
        db: "locked_app".into(),
        dir: dir.path(),
        extra: vec![],
    };
    let (holder, _) = t.spawn("run");
    pg.wait_for_query("pg_sleep(30)");
    let mut c = t.cmd("run");
    c.env("DBINIT_LOCK_TIMEOUT", "1s").env(
        "DBINIT_TERMINATION_MESSAGE_PATH",
        dir.path().join("termination-log"),
    );
    let out = run(c);
    assert_eq!(out.code, Some(7), "{}", out.stderr);
    assert!(out.stderr.contains("held by pid"), "{}", out.stderr);
    assert!(
        out.stderr.contains("dbinit/"),
        "names the holder's application_name: {}",
        out.stderr
    );
    assert!(termination(dir.path()).starts_with("lock (exit 7)"));
    let mut holder = holder;
    let _ = holder.kill();
    let _ = holder.wait();
    pg.assert_no_advisory_lock_soon();
}

#[test]
fn status_reports_applied_pending_and_json() {
    let pg = Pg::start_new();
    let dir = set(
        &[("V1__a.sql", "CREATE TABLE a (id int);")],
        &[("001.sql", "SELECT 1;")],
    );
    let t = Target {
        pg: &pg,
        db: "status_app".into(),
        dir: dir.path(),
        extra: vec![],
    };
    let out = t.run("status");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("does not exist yet") && out.stdout.contains("pending  V1__a"),
        "{}",
        out.stdout
    );
    assert_eq!(t.run("run").code, Some(0));
    write_set(dir.path(), &[("V2__b.sql", "SELECT 1;")], &[]);
    let mut c = t.cmd("status");
    c.args(["--output", "json"]);
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let j = out.stdout.replace([' ', '\n'], "");
    assert!(
        j.contains("\"applied_version\":1") && j.contains("\"target_version\":2"),
        "{j}"
    );
    assert!(
        j.contains("{\"name\":\"V1__a\",\"state\":\"applied\""),
        "{j}"
    );
    assert!(
        j.contains("{\"name\":\"V2__b\",\"state\":\"pending\""),
        "{j}"
    );
    assert!(
        j.contains("{\"name\":\"001.sql\",\"state\":\"applied\""),
        "{j}"
    );
}

#[test]
fn bad_migration_file_name_is_a_config_error() {
    let pg = Pg::start_new();
    let dir = set(&[("V1_single_underscore.sql", "SELECT 1;")], &[]);
    let t = Target {
        pg: &pg,
        db: "badname_app".into(),
        dir: dir.path(),
        extra: vec![kv(
            "DBINIT_TERMINATION_MESSAGE_PATH",
            dir.path().join("termination-log").display(),
        )],
    };
    let out = t.run("run");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("V1_single_underscore.sql"),
        "{}",
        out.stderr
    );
    assert!(termination(dir.path()).starts_with("config (exit 2)"));
}

#[test]
fn termination_message_after_refusal_and_timeout() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("termination-log");
    let mut c = command("dbinit");
    c.arg("run")
        .envs(pg.env())
        .env("POSTGRES_PASSWORD", "not-the-password")
        .env("DBINIT_TERMINATION_MESSAGE_PATH", &path);
    let out = run(c);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    let tm = termination(dir.path());
    assert!(
        tm.starts_with("refused (exit 4)") && tm.contains("authentication failed"),
        "{tm}"
    );
    assert!(!tm.contains("not-the-password"));

    let mut c = command("dbinit");
    c.arg("run")
        .env("POSTGRES_HOST", "127.0.0.1")
        .env("POSTGRES_PORT", dbinit_tests::free_port().to_string())
        .env("DBINIT_TIMEOUT", "1s")
        .env("DBINIT_TERMINATION_MESSAGE_PATH", &path);
    assert_eq!(run(c).code, Some(3));
    assert!(termination(dir.path()).starts_with("timeout (exit 3)"));
}
