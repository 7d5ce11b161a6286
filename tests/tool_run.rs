//! Tool mode's runner with any command (`sh` scripts standing for a tool dbinit does not
//! know): the connection the child gets, exit statuses and signals as they are reported,
//! SIGTERM forwarded to the child's process group, the grace period and the timeout, the
//! lock shared with SQL runs and held until the child's sessions are gone, and seeds after
//! the command. Real PostgreSQL, real processes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dbinit_tests::{PG_PASSWORD, Pg, command, finish, run};

/// `dbinit run` in tool mode against `db`, with a termination-message file in `dir`.
fn dbinit(pg: &Pg, db: &str, dir: &Path) -> Command {
    let mut c = command("dbinit");
    c.arg("run")
        .envs(pg.env())
        .env("POSTGRES_DB", db)
        .env("POSTGRES_SSLMODE", "disable")
        .env("DBINIT_TIMEOUT", "60s")
        .env(
            "DBINIT_TERMINATION_MESSAGE_PATH",
            dir.join("termination-log"),
        )
        .current_dir(dir);
    c
}

fn sh(c: &mut Command, script: &str) {
    c.args(["--", "sh", "-c", script]);
}

fn termination(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("termination-log")).unwrap_or_default()
}

fn spawn(mut c: Command) -> (Child, Instant) {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbinit");
    (child, Instant::now())
}

/// Waits (bounded) until `path` exists: the child's sign that it got somewhere.
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until the file at `path` holds `text`: a log line of a process.
fn wait_for_text(path: &Path, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(path)
        .unwrap_or_default()
        .contains(text)
    {
        assert!(
            Instant::now() < deadline,
            "{} never said {text:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn the_child_gets_the_connection_in_every_form_and_its_output_is_passed_through() {
    let pg = Pg::start_new();
    // A password that needs percent-encoding in a URL.
    pg.psql(
        "postgres",
        "CREATE ROLE app LOGIN CREATEDB PASSWORD 'p@ss:/w%rd #1'",
    );
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = dbinit(&pg, "app_db", dir.path());
    c.env("POSTGRES_USER", "app")
        .env("POSTGRES_PASSWORD", "p@ss:/w%rd #1")
        .env("POSTGRES_APP_SETTING", "kept");
    // psql with the URL alone, then with the PG* variables alone.
    sh(
        &mut c,
        r#"psql "$DATABASE_URL" -XAtc "SELECT 'url:' || current_user || ':' || current_database() || ':' || current_setting('application_name')" &&
           env -u DATABASE_URL psql -XAtc "SELECT 'pgenv:' || current_user || ':' || current_database()" &&
           echo "posted:$POSTGRES_APP_SETTING:$PGSSLMODE" && echo "on stderr: $PGPASSWORD" >&2"#,
    );
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stdout.contains("url:app:app_db:dbinit-child/"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("pgenv:app:app_db"), "{}", out.stdout);
    assert!(out.stdout.contains("posted:kept:disable"), "{}", out.stdout);
    // Passed through, scrubbed.
    assert!(out.stderr.contains("on stderr: ***"), "{}", out.stderr);
    assert!(
        !out.all_output().contains("p@ss:/w%rd"),
        "{}",
        out.all_output()
    );
    assert!(!out.all_output().contains("p%40ss"), "{}", out.all_output());
    assert!(
        termination(dir.path()).starts_with("ok: "),
        "{}",
        termination(dir.path())
    );
}

#[test]
fn a_failing_child_is_exit_5_with_its_status_and_last_stderr_lines_scrubbed() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = dbinit(&pg, "fail_db", dir.path());
    sh(
        &mut c,
        r#"i=0; while [ $i -lt 40 ]; do echo "noise $i" >&2; i=$((i+1)); done; echo "ERROR: relation \"nope\" does not exist ($DATABASE_URL)" >&2; exit 3"#,
    );
    let out = run(c);
    assert_eq!(out.code, Some(5), "{}", out.all_output());
    let tm = termination(dir.path());
    assert!(
        tm.starts_with("migration-failed (exit 5): the migration command `sh -c"),
        "{tm}"
    );
    assert!(tm.contains("exited with status 3"), "{tm}");
    assert!(
        tm.contains(r#"ERROR: relation "nope" does not exist (***)"#),
        "{tm}"
    );
    assert!(
        tm.contains("noise 39") && !tm.contains("noise 5 |"),
        "only the last lines: {tm}"
    );
    assert!(!tm.contains(PG_PASSWORD), "{tm}");

    // Killed by a signal it did not get from dbinit (the OOM killer, say): named.
    let mut c = dbinit(&pg, "fail_db", dir.path());
    sh(&mut c, "kill -KILL $$");
    let out = run(c);
    assert_eq!(out.code, Some(5), "{}", out.all_output());
    assert!(
        termination(dir.path()).contains("was killed by signal SIGKILL (9)"),
        "{}",
        termination(dir.path())
    );
}

#[test]
fn a_command_that_cannot_run_is_exit_2_naming_it() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = dbinit(&pg, "x_db", dir.path());
    c.args(["--", "no-such-migrator", "up"]);
    let out = run(c);
    assert_eq!(out.code, Some(2), "{}", out.all_output());
    assert!(
        termination(dir.path()).contains("\"no-such-migrator\""),
        "{}",
        termination(dir.path())
    );
    std::fs::write(dir.path().join("migrate.sh"), "#!/bin/sh\n").expect("write");
    let mut c = dbinit(&pg, "x_db", dir.path());
    c.args(["--", "./migrate.sh"]);
    let out = run(c);
    assert_eq!(out.code, Some(2), "{}", out.all_output());
    assert!(
        termination(dir.path()).contains("not executable"),
        "{}",
        termination(dir.path())
    );
    // Nothing was attempted: no database.
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'x_db'"
        ),
        "0"
    );
    // A malformed DBINIT_MIGRATE_COMMAND.
    let mut c = dbinit(&pg, "x_db", dir.path());
    c.env("DBINIT_MIGRATE_COMMAND", "alembic upgrade head");
    let out = run(c);
    assert_eq!(out.code, Some(2), "{}", out.all_output());
    assert!(
        termination(dir.path()).contains("DBINIT_MIGRATE_COMMAND"),
        "{}",
        termination(dir.path())
    );
}

#[test]
fn the_json_command_runs_and_flags_after_the_separator_are_the_childs() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = dbinit(&pg, "json_db", dir.path());
    c.env(
        "DBINIT_MIGRATE_COMMAND",
        r#"["sh", "-c", "echo from-json \"$0\" \"$1\"", "--postgres-db", "x y"]"#,
    );
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stdout.contains("from-json --postgres-db x y"),
        "{}",
        out.stdout
    );
    // `--` wins over the variable, and what follows it is the child's, not dbinit's.
    let mut c = dbinit(&pg, "json_db", dir.path());
    c.env("DBINIT_MIGRATE_COMMAND", r#"["false"]"#).args([
        "--",
        "sh",
        "-c",
        "echo args: \"$@\"",
        "sh",
        "--timeout",
        "5y",
    ]);
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(out.stdout.contains("args: --timeout 5y"), "{}", out.stdout);
}

#[test]
fn sigterm_is_forwarded_to_the_process_group_and_the_grace_period_ends_it() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path();
    // The child and its own child both note the signal.
    let mut c = dbinit(&pg, "term_db", p);
    sh(
        &mut c,
        r#"(trap 'touch grandchild-got-term; exit 0' TERM; touch grandchild-started; while :; do sleep 0.1; done) &
           trap 'touch child-got-term; wait; exit 0' TERM; touch child-started; while :; do sleep 0.1; done"#,
    );
    let (child, started) = spawn(c);
    wait_for_file(&p.join("child-started"));
    wait_for_file(&p.join("grandchild-started"));
    kill("-TERM", child.id());
    let out = finish(child, started);
    assert_eq!(out.code, Some(8), "{}", out.all_output());
    assert!(p.join("child-got-term").exists() && p.join("grandchild-got-term").exists());
    let tm = termination(p);
    assert!(
        tm.starts_with(
            "interrupted (exit 8): interrupted by SIGTERM; forwarded to the migration command"
        ),
        "{tm}"
    );
    assert!(tm.contains("which exited with status 0"), "{tm}");
    pg.assert_no_advisory_lock_soon();

    // A child that ignores SIGTERM is killed after DBINIT_CHILD_GRACE.
    let mut c = dbinit(&pg, "term_db", p);
    c.env("DBINIT_CHILD_GRACE", "1s");
    sh(
        &mut c,
        "trap '' TERM; touch stubborn-started; while :; do sleep 0.1; done",
    );
    let (child, started) = spawn(c);
    wait_for_file(&p.join("stubborn-started"));
    kill("-TERM", child.id());
    let out = finish(child, started);
    assert_eq!(out.code, Some(8), "{}", out.all_output());
    let tm = termination(p);
    assert!(
        tm.contains("was killed by signal SIGKILL (9) (killed after the grace period"),
        "{tm}"
    );
}

#[test]
fn a_command_past_its_timeout_is_stopped_and_reported() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = dbinit(&pg, "slow_db", dir.path());
    c.env("DBINIT_MIGRATE_TIMEOUT", "1s");
    sh(
        &mut c,
        "echo 'applying 2/3' >&2; while :; do sleep 0.1; done",
    );
    let out = run(c);
    assert_eq!(out.code, Some(5), "{}", out.all_output());
    let tm = termination(dir.path());
    assert!(
        tm.contains("ran past DBINIT_MIGRATE_TIMEOUT (1s) and was stopped"),
        "{tm}"
    );
    assert!(
        tm.contains("killed by signal SIGTERM (15)") && tm.contains("applying 2/3"),
        "{tm}"
    );
}

#[test]
fn tool_and_sql_runs_share_one_lock_held_until_the_childs_sessions_are_gone() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path();
    let sql = tempfile::tempdir().expect("tmp");
    std::fs::write(sql.path().join("V1__t.sql"), "CREATE TABLE t (id int);").expect("write");
    // The child leaves a session behind running a long statement, then exits at once.
    let mut c = dbinit(&pg, "lock_db", p);
    sh(
        &mut c,
        r#"touch started; while [ ! -e go ]; do sleep 0.05; done
           psql -XAtc 'SELECT pg_sleep(300)' >/dev/null 2>&1 & 
           while [ "$(psql -XAtc "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(300)%'")" = 0 ]; do sleep 0.05; done"#,
    );
    let (tool, tool_started) = spawn(c);
    wait_for_file(&p.join("started"));
    // A SQL run meanwhile waits for the same lock.
    let mut s = command("dbinit");
    s.arg("run")
        .envs(pg.env())
        .env("POSTGRES_DB", "lock_db")
        .env("DBINIT_MIGRATIONS_DIR", sql.path())
        .env("DBINIT_TIMEOUT", "60s");
    let log = p.join("sql-run.log");
    let sql_run = s
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn dbinit");
    wait_for_text(&log, "migration lock is held by another runner");
    assert_eq!(pg.psql("lock_db", "SELECT to_regclass('t') IS NULL"), "t");
    std::fs::write(p.join("go"), "").expect("write");
    let out = finish(tool, tool_started);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    // dbinit let go only once the leftover session was gone (terminated after the grace).
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'dbinit-child/%'"
        ),
        "0"
    );
    let status = sql_run.wait_with_output().expect("wait").status;
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(pg.history("lock_db"), "1");
}

#[test]
fn create_index_concurrently_in_the_child_does_not_wait_on_the_lock_even_under_repeatable_read() {
    let pg = Pg::start_new();
    pg.psql("postgres", "CREATE DATABASE rr_db");
    pg.psql(
        "postgres",
        "ALTER DATABASE rr_db SET default_transaction_isolation = 'repeatable read'",
    );
    pg.psql("rr_db", "CREATE TABLE big (id int)");
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = dbinit(&pg, "rr_db", dir.path());
    // Bounded: a lock transaction holding a snapshot would make CIC wait for it forever.
    c.env("DBINIT_MIGRATE_TIMEOUT", "60s");
    sh(
        &mut c,
        "psql -v ON_ERROR_STOP=1 -XAtc 'CREATE INDEX CONCURRENTLY big_id ON big (id)'",
    );
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert_eq!(
        pg.psql(
            "rr_db",
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_id'::regclass"
        ),
        "t"
    );
}

#[test]
fn seeds_follow_the_command_and_an_up_to_date_tool_skips_to_them() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    let seeds = tempfile::tempdir().expect("tmp");
    std::fs::write(
        seeds.path().join("001_markets.sql"),
        "INSERT INTO markets VALUES ('us');",
    )
    .expect("write");
    let mut c = dbinit(&pg, "seed_db", dir.path());
    c.env("DBINIT_SEEDS_DIR", seeds.path());
    sh(
        &mut c,
        "psql -XAtc 'CREATE TABLE IF NOT EXISTS markets (id text)'",
    );
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(out.stderr.contains("applied 1 seed(s)"), "{}", out.stderr);
    assert_eq!(
        pg.psql("seed_db", "SELECT string_agg(id, ',') FROM markets"),
        "us"
    );
    // dbinit's own SQL history is not created: the tool owns the migrations.
    assert_eq!(
        pg.psql(
            "seed_db",
            "SELECT to_regclass('refinery_schema_history') IS NULL"
        ),
        "t"
    );
    // Again: the command runs (no known tool), the seed does not.
    let mut c = dbinit(&pg, "seed_db", dir.path());
    c.env("DBINIT_SEEDS_DIR", seeds.path());
    sh(&mut c, "true");
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert_eq!(pg.psql("seed_db", "SELECT count(*) FROM markets"), "1");
    // DBINIT_MIGRATIONS_DIR is dbinit's own SQL: refused beside a command.
    let mut c = dbinit(&pg, "seed_db", dir.path());
    c.env("DBINIT_MIGRATIONS_DIR", seeds.path());
    sh(&mut c, "true");
    let out = run(c);
    assert_eq!(out.code, Some(2), "{}", out.all_output());
    assert!(
        termination(dir.path()).contains("DBINIT_SEEDS_DIR"),
        "{}",
        termination(dir.path())
    );
}
