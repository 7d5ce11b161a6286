//! Migrations marked `-- dbinit:no-transaction` (CREATE INDEX CONCURRENTLY) against real
//! PostgreSQL, with real processes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dbinit_tests::{Finished, Pg, command, finish, run};

fn cmd(pg: &Pg, db: &str, dir: &Path) -> Command {
    let mut c = command("dbinit");
    c.arg("run")
        .envs(pg.env())
        .env("POSTGRES_DB", db)
        .env("DBINIT_MIGRATIONS_DIR", dir)
        .env("DBINIT_TIMEOUT", "60s");
    c
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (n, s) in files {
        std::fs::write(dir.join(n), s).expect("write migration");
    }
}

fn index_valid(pg: &Pg, db: &str, name: &str) -> String {
    pg.psql(
        db,
        &format!("SELECT coalesce(string_agg(i.indisvalid::text, ','), 'absent') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = '{name}'"),
    )
}

fn ok(o: &Finished) {
    assert_eq!(o.code, Some(0), "{}", o.stderr);
}

const TABLE: &str = "CREATE TABLE items (id int PRIMARY KEY, val int NOT NULL);\nINSERT INTO items SELECT g, g % 1000 FROM generate_series(1, 200000) g;";
const INDEX: &str = "-- dbinit:no-transaction\n-- Builds without blocking writes; idempotent.\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_val_idx ON items (val);\n\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_val_id_idx ON items (val, id);\n";
const AFTER: &str = "CREATE TABLE after_index (id int);";

/// A table with rows, a marked file building two indexes on it, and a file after it.
fn items_set() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        &[
            ("V1__items.sql", TABLE),
            ("V2__items_index.sql", INDEX),
            ("V3__after.sql", AFTER),
        ],
    );
    dir
}

#[test]
fn mixed_set_applies_and_the_second_run_is_a_no_op() {
    let pg = Pg::start_new();
    let dir = items_set();
    let out = run(cmd(&pg, "mixed", dir.path()));
    ok(&out);
    assert_eq!(index_valid(&pg, "mixed", "items_val_idx"), "true");
    assert_eq!(index_valid(&pg, "mixed", "items_val_id_idx"), "true");
    assert_eq!(
        pg.psql("mixed", "SELECT to_regclass('after_index') IS NOT NULL"),
        "t"
    );
    assert_eq!(
        pg.psql("mixed", "SELECT string_agg(version || ':' || name, ',' ORDER BY version) FROM refinery_schema_history"),
        "1:items,2:items_index,3:after"
    );
    let again = run(cmd(&pg, "mixed", dir.path()));
    ok(&again);
    assert!(
        again.stderr.contains("nothing to apply"),
        "{}",
        again.stderr
    );

    // status and wait treat it like any other migration.
    let mut status = command("dbinit");
    status
        .args(["status", "--output", "json"])
        .envs(pg.env())
        .env("POSTGRES_DB", "mixed")
        .env("DBINIT_MIGRATIONS_DIR", dir.path());
    let s = run(status);
    ok(&s);
    assert!(
        s.stdout
            .replace([' ', '\n'], "")
            .contains("{\"name\":\"V2__items_index\",\"state\":\"applied\""),
        "{}",
        s.stdout
    );
}

#[test]
fn five_concurrent_runners_build_the_index_once_without_deadlock() {
    let pg = Pg::start_new();
    let dir = items_set();
    let started = Instant::now();
    let children: Vec<_> = (0..5)
        .map(|_| {
            let child = cmd(&pg, "concurrent", dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            (child, Instant::now())
        })
        .collect();
    let outs: Vec<Finished> = children.into_iter().map(|(c, s)| finish(c, s)).collect();
    outs.iter().for_each(ok);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "no deadlock: {:?}",
        started.elapsed()
    );
    assert_eq!(index_valid(&pg, "concurrent", "items_val_idx"), "true");
    assert_eq!(
        pg.psql(
            "concurrent",
            "SELECT count(*), count(DISTINCT version) FROM refinery_schema_history"
        ),
        "3|3"
    );
    assert_eq!(
        outs.iter()
            .filter(|o| o.stderr.contains("applied migration"))
            .count(),
        1
    );
}

#[test]
fn interrupted_build_leaves_an_invalid_index_that_is_reported_then_repaired() {
    let pg = Pg::start_new();
    let db = "interrupted";
    let dir = tempfile::tempdir().expect("tmp");
    // An index expression that is slow only while the database says so.
    write(
        dir.path(),
        &[(
            "V1__slow_table.sql",
            "CREATE TABLE slow (id int);\nINSERT INTO slow SELECT generate_series(1, 2000);\n\
         CREATE FUNCTION slow_id(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$\n\
         BEGIN\n  IF current_setting('dbinit_test.slow', true) = 'on' THEN PERFORM pg_sleep(0.005); END IF;\n  RETURN i;\nEND $$;",
        )],
    );
    ok(&run(cmd(&pg, db, dir.path())));
    pg.psql(
        "postgres",
        &format!("ALTER DATABASE {db} SET dbinit_test.slow = 'on'"),
    );
    write(
        dir.path(),
        &[(
            "V2__slow_index.sql",
            "-- dbinit:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS slow_idx ON slow ((slow_id(id)));",
        )],
    );
    let mut child = cmd(&pg, db, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    pg.wait_for_query("CREATE INDEX CONCURRENTLY IF NOT EXISTS slow_idx");
    std::thread::sleep(Duration::from_secs(1));
    child.kill().expect("SIGKILL mid-build");
    let _ = child.wait();
    pg.assert_no_advisory_lock_soon();
    assert_eq!(
        index_valid(&pg, db, "slow_idx"),
        "false",
        "the interrupted build left an INVALID index"
    );
    assert_eq!(pg.history(db), "1");

    let out = run(cmd(&pg, db, dir.path()));
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    assert!(
        out.stderr.contains("slow_idx") && out.stderr.contains("INVALID"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("DROP INDEX CONCURRENTLY IF EXISTS \\\"slow_idx\\\"")
            || out
                .stderr
                .contains("DROP INDEX CONCURRENTLY IF EXISTS \"slow_idx\""),
        "gives the repair statement: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--repair-invalid-indexes"),
        "{}",
        out.stderr
    );
    assert_eq!(
        index_valid(&pg, db, "slow_idx"),
        "false",
        "nothing was changed"
    );

    pg.psql(
        "postgres",
        &format!("ALTER DATABASE {db} SET dbinit_test.slow = 'off'"),
    );
    let mut repair = cmd(&pg, db, dir.path());
    repair.env("DBINIT_REPAIR_INVALID_INDEXES", "true");
    let out = run(repair);
    ok(&out);
    assert!(
        out.stderr.contains("dropping an INVALID index"),
        "{}",
        out.stderr
    );
    assert_eq!(index_valid(&pg, db, "slow_idx"), "true");
    assert_eq!(pg.history(db), "1,2");
}

#[test]
fn unmarked_concurrently_fails_pointing_at_the_marker() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        &[
            ("V1__items.sql", "CREATE TABLE items (val int);"),
            (
                "V2__index.sql",
                "CREATE INDEX CONCURRENTLY items_val_idx ON items (val);",
            ),
        ],
    );
    let out = run(cmd(&pg, "unmarked", dir.path()));
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    assert!(
        out.stderr.contains("V2__index") && out.stderr.contains("25001"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("-- dbinit:no-transaction"),
        "points at the marker: {}",
        out.stderr
    );
    assert_eq!(pg.history("unmarked"), "1");
}

#[test]
fn failing_statement_in_a_marked_file_names_its_line() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        &[(
            "V1__notx.sql",
            "-- dbinit:no-transaction\nCREATE TABLE IF NOT EXISTS first (id int);\n\nSELECT * FROM\n  missing_table;\n",
        )],
    );
    let out = run(cmd(&pg, "notxfail", dir.path()));
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    for needle in ["statement 2 of 2", "line 4", "42P01", "idempotent"] {
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    }
    assert_eq!(
        pg.psql("notxfail", "SELECT to_regclass('first') IS NOT NULL"),
        "t",
        "statement 1 stays"
    );
    assert_eq!(
        pg.psql("notxfail", "SELECT count(*) FROM refinery_schema_history"),
        "0"
    );
}
