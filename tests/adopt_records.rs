//! Adoption, continued: Django's and Prisma's history tables (built from fixtures with their
//! real DDL, tests/fixtures/adopt/), and what `wait` and `status` say about a database dbinit
//! did not build — `wait` refuses it at once as `run` does, `status` shows who adopted it.
//! Real PostgreSQL, real processes.

use std::time::Instant;

use dbinit_tests::{Finished, Pg, finish};

#[path = "adopt/target.rs"]
mod target;

use target::*;

/// The line of a refusal that says what was found.
fn refusal_line(o: &Finished) -> String {
    o.all_output()
        .lines()
        .find_map(|l| l.find("has no dbinit history").map(|_| l.to_string()))
        .and_then(|l| l.find("database ").map(|i| l[i..].to_string()))
        .unwrap_or_else(|| panic!("no refusal in:\n{}", o.all_output()))
}

#[test]
fn wait_on_an_unadopted_database_exits_9_at_once_and_status_shows_who_adopted_it() {
    let pg = Pg::start_new();
    let set = small_set();
    let t = Target::new(&pg, "wait_app", set.path()).with("DBINIT_TIMEOUT", "600s");
    t.built_by_other_tool(3, Some("golang_migrate.sql"));

    // `wait` would otherwise wait 10 minutes for a runner that will never migrate this
    // database: it must stop on its own, long before (bounded here, then killed).
    let (child, started) = dbinit_tests::fixtures::spawn_piped(t.cmd(&["wait"]));
    let mut child = child;
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dbinit wait did not exit on an unadopted database: it waits for its timeout");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let waited = finish(child, started);
    code(&waited, UNADOPTED);
    let ran = t.run(&["run"]);
    code(&ran, UNADOPTED);
    assert_eq!(refusal_line(&waited), refusal_line(&ran));

    // With the adopt setting on the wait container, the runner will adopt: wait goes on.
    let t = t
        .with("DBINIT_ADOPT_FROM", "golang-migrate")
        .with("DBINIT_TIMEOUT", "2s");
    let waiting = t.run(&["wait"]);
    code(&waiting, 3);

    let adopted = t.run(&["adopt"]);
    code(&adopted, 0);
    let status = t.run(&["status"]);
    code(&status, 0);
    mentions(
        &status,
        &[
            "adopted from schema_migrations version 3: 3 version(s) up to 3 recorded without running them, at ",
            " by postgres",
        ],
    );
    let json = t.run(&["status", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(v["adoption"]["action"], "adopt", "{v}");
    assert_eq!(
        v["adoption"]["source"], "schema_migrations version 3",
        "{v}"
    );
    assert_eq!(v["adoption"]["versions"], 3, "{v}");
    assert!(
        v["adoption"]["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("postgres (dbinit/")),
        "{v}"
    );
    assert!(
        v["adoption"]["at"]
            .as_str()
            .is_some_and(|a| a.ends_with('Z')),
        "{v}"
    );
    // A database dbinit built itself has no adoption record.
    let fresh = Target::new(&pg, "fresh_app", set.path());
    code(&fresh.run(&["run"]), 0);
    let v: serde_json::Value =
        serde_json::from_str(&fresh.run(&["status", "--output", "json"]).stdout).expect("json");
    assert!(v["adoption"].is_null(), "{v}");
}

#[test]
fn django_history_is_found_and_adopted_through_a_map_of_the_project_app() {
    let pg = Pg::start_new();
    let set = small_set();
    let t = Target::new(&pg, "django_app", set.path());
    t.built_by_other_tool(3, Some("django.sql"));
    let before = t.fingerprint("django_migrations");

    let refused = t.run(&["run"]);
    code(&refused, UNADOPTED);
    mentions(
        &refused,
        &[
            "Django's history table django_migrations at migration sessions.0001_initial",
            "DBINIT_ADOPT_MAP",
        ],
    );
    let t = t.with("DBINIT_ADOPT_MAP", fixture("django.map").display());
    let adopted = t.run(&["adopt", "--from", "django"]);
    code(&adopted, 0);
    assert_eq!(t.history(), "1,2,3");
    assert!(
        t.audit()
            .contains("adopt:3:django_migrations migration shop.0003_orders_total"),
        "{}",
        t.audit()
    );
    let ran = t.run(&["run"]);
    code(&ran, 0);
    mentions(&ran, &["applied 1 migration(s) (V4__invoices)"]);
    assert_eq!(t.fingerprint("django_migrations"), before);
}

#[test]
fn prisma_history_is_found_a_failed_attempt_is_refused_and_a_rolled_back_one_is_not() {
    let pg = Pg::start_new();
    let set = small_set();
    let t = Target::new(&pg, "prisma_app", set.path());
    t.built_by_other_tool(3, Some("prisma.sql"));
    let before = t.fingerprint("_prisma_migrations");

    let refused = t.run(&["run"]);
    code(&refused, UNADOPTED);
    mentions(
        &refused,
        &[
            "Prisma's history table _prisma_migrations at migration 20240301101500_orders_total",
            "DBINIT_ADOPT_FROM=prisma",
        ],
    );
    let t = t.with("DBINIT_ADOPT_MAP", fixture("prisma.map").display());
    // The last attempt failed and nobody resolved it: Prisma itself would stop (P3009).
    t.sql("UPDATE _prisma_migrations SET finished_at = NULL WHERE id LIKE '%4'");
    let failed = t.run(&["adopt", "--from", "prisma"]);
    code(&failed, UNADOPTED);
    mentions(
        &failed,
        &["prisma migrate resolve --rolled-back 20240301101500_orders_total"],
    );
    assert_eq!(t.history(), "absent");
    t.sql("UPDATE _prisma_migrations SET finished_at = started_at + interval '1 second' WHERE id LIKE '%4'");

    code(&t.run(&["adopt", "--from", "prisma"]), 0);
    assert_eq!(t.history(), "1,2,3");
    let ran = t.run(&["run"]);
    code(&ran, 0);
    mentions(&ran, &["applied 1 migration(s) (V4__invoices)"]);
    assert_eq!(t.fingerprint("_prisma_migrations"), before);
}
