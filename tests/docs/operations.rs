//! docs/operations.md's database-side blocks: repairing an edited migration, and the query
//! that shows who holds the migration lock, while a runner holds it. (Its kubectl blocks run
//! against a real apiserver in tests/events.rs.)

use std::time::{Duration, Instant};

use dbinit_tests::docs::{DocShell, Docs};
use dbinit_tests::node::repo_root;
use dbinit_tests::{Pg, PsqlSession, fixtures};

#[test]
fn repair_an_edited_migration_as_written() {
    let docs = Docs::load();
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    for e in std::fs::read_dir(repo_root().join("migrations"))
        .expect("migrations/")
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "sql") {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
        }
    }
    let out = dbinit_tests::run(fixtures::dbinit_run(pg.env(), "agentic_deals", dir.path()));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v3 = dir.path().join("V3__create_deals.sql");
    let mut text = std::fs::read_to_string(&v3).expect("read");
    text.push_str("-- deals: one row per offer seen on a market\n");
    std::fs::write(&v3, text).expect("write");

    let mut sh = DocShell::new();
    sh.set_all(pg.env())
        .set("DBINIT_MIGRATIONS_DIR", dir.path().display().to_string())
        .set("DBINIT_TIMEOUT", "60s");
    sh.run_block(&docs, "repair");
    assert_eq!(
        pg.psql(
            "agentic_deals",
            "SELECT action || ':' || version FROM dbinit_audit"
        ),
        "repair:3"
    );
}

#[test]
fn the_lock_holder_query_finds_a_runner_that_holds_the_lock() {
    let docs = Docs::load();
    let pg = Pg::start_new();
    // A runner that stays inside its migration: V2 waits for an advisory lock the test holds.
    let dir = fixtures::migrations(&[
        ("V1__a.sql", "CREATE TABLE a (id int);"),
        (
            "V2__wait.sql",
            "SELECT pg_advisory_lock(4242); SELECT pg_advisory_unlock(4242);",
        ),
    ]);
    // Advisory locks belong to a database: the gate is taken in the runner's.
    pg.psql("postgres", "CREATE DATABASE agentic_deals");
    let mut gate = PsqlSession::open(&pg, "agentic_deals", "docs-gate");
    gate.send("SELECT pg_advisory_lock(4242);");
    let held =
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted";
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.psql("postgres", held) != "1" {
        assert!(
            Instant::now() < deadline,
            "the test's session never took its lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut child, started) =
        fixtures::spawn_piped(fixtures::dbinit_run(pg.env(), "agentic_deals", dir.path()));
    let waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted";
    let deadline = Instant::now() + Duration::from_secs(60);
    while pg.psql("postgres", waiting) == "0" {
        if child.try_wait().ok().flatten().is_some() {
            let out = dbinit_tests::finish(child, started);
            panic!("the runner ended before it waited: {out:?}");
        }
        assert!(
            Instant::now() < deadline,
            "the runner never waited in its migration: {}",
            pg.psql("postgres", "SELECT string_agg(application_name || ' ' || state || ' ' || query, E'\\n') FROM pg_stat_activity")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let rows = pg.psql("agentic_deals", &docs.block("lock-holders"));
    gate.close();
    let out = dbinit_tests::finish(child, started);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        rows.lines()
            .any(|l| l.contains("dbinit/") && l.contains("idle in transaction")),
        "while a runner migrates, the page's query shows its lock connection idle in transaction:\n{rows}"
    );
}
