//! Tool mode with real dbmate (npm 2.36, its static Go binary): `dbinit run -- dbmate
//! --no-dump-schema up` on a fresh database, an up-to-date one (no child started), one with
//! a pending migration, a failing migration (exit 5 with dbmate's words), and ten runners
//! at once. The URL dbinit gives it carries sslmode, which lib/pq would otherwise take as
//! `require`.

use std::path::Path;

use dbinit_tests::tools::{
    self, assert_all_succeeded, assert_starts_no_child, concurrently, counts, dbinit, termination,
};
use dbinit_tests::{Pg, run};

fn write(dir: &Path, name: &str, up: &str) {
    std::fs::create_dir_all(dir.join("db/migrations")).expect("mkdir");
    std::fs::write(
        dir.join("db/migrations").join(name),
        format!("-- migrate:up\n{up}\n\n-- migrate:down\n"),
    )
    .expect("write");
}

fn project(sleep_s: u32) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tmp");
    write(
        d.path(),
        "20260101000001_create_items.sql",
        "CREATE TABLE items (id int, name text);",
    );
    write(
        d.path(),
        "20260101000002_data.sql",
        &format!("SELECT pg_sleep({sleep_s});\nINSERT INTO items VALUES (1, 'from 2');"),
    );
    d
}

fn up(pg: &Pg, db: &str, dir: &Path) -> std::process::Command {
    let dbmate = tools::dbmate();
    let bin = dbmate.parent().expect("bin dir");
    let mut c = dbinit(pg, db, dir, "run", &[bin]);
    c.args(["--", "dbmate", "--no-dump-schema", "up"]);
    c
}

#[test]
fn fresh_up_to_date_pending_and_failing() {
    let pg = Pg::start_new();
    let d = project(0);
    let p = d.path();
    let out = run(up(&pg, "items", p));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stdout.contains("Applied: 20260101000002_data.sql"),
        "{}",
        out.all_output()
    );
    assert_eq!(counts(&pg, "items", "items", "name"), "from 2=1");

    let out = run(up(&pg, "items", p));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stderr.contains("dbmate is up to date"),
        "{}",
        out.stderr
    );
    let bin = tools::dbmate().parent().expect("bin").to_path_buf();
    let c = dbinit(&pg, "items", p, "run", &[&bin]);
    assert_starts_no_child(c, "dbmate");

    write(
        p,
        "20260101000003_price.sql",
        "ALTER TABLE items ADD COLUMN price int;",
    );
    let out = run(up(&pg, "items", p));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stderr
            .contains("dbmate has pending migrations: 20260101000003"),
        "{}",
        out.stderr
    );

    write(
        p,
        "20260101000004_broken.sql",
        "CREATE TABLE t_ok (id int);\nALTER TABLE nope ADD COLUMN x int;",
    );
    let out = run(up(&pg, "items", p));
    assert_eq!(out.code, Some(5), "{}", out.all_output());
    let tm = termination(p);
    assert!(
        tm.contains("exited with status 2") && tm.contains("relation \"nope\" does not exist"),
        "{tm}"
    );
    assert_eq!(pg.psql("items", "SELECT to_regclass('t_ok') IS NULL"), "t");
}

#[test]
fn ten_runners_apply_each_migration_once() {
    let pg = Pg::start_new();
    let d = project(3);
    let runs = concurrently(10, |_| up(&pg, "fresh", d.path()));
    assert_all_succeeded(&runs);
    assert_eq!(counts(&pg, "fresh", "items", "name"), "from 2=1");
    assert_eq!(
        pg.psql("fresh", "SELECT count(*) FROM schema_migrations"),
        "2"
    );
}
