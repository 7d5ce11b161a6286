//! Tool mode with real sqlx-cli (crates.io 0.9): `dbinit run -- sqlx migrate run` on a fresh
//! database, an up-to-date one (no child started), one with a pending migration, a failing
//! migration (exit 5 with sqlx's words), an edited applied one (exit 6, as sqlx itself would
//! refuse, naming the file), and ten runners at once.

use std::path::Path;

use dbinit_tests::tools::{
    self, assert_all_succeeded, assert_starts_no_child, concurrently, counts, dbinit, termination,
};
use dbinit_tests::{Pg, run};

fn write(dir: &Path, name: &str, sql: &str) {
    std::fs::create_dir_all(dir.join("migrations")).expect("mkdir");
    std::fs::write(dir.join("migrations").join(name), sql).expect("write");
}

fn project(sleep_s: u32) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tmp");
    write(
        d.path(),
        "20260101000001_create_items.sql",
        "CREATE TABLE items (id int, name text);\n",
    );
    write(
        d.path(),
        "20260101000002_data.sql",
        &format!("SELECT pg_sleep({sleep_s});\nINSERT INTO items VALUES (1, 'from 2');\n"),
    );
    d
}

fn migrate(pg: &Pg, db: &str, dir: &Path) -> std::process::Command {
    let sqlx = tools::sqlx();
    let bin = sqlx.parent().expect("bin dir");
    let mut c = dbinit(pg, db, dir, "run", &[bin]);
    c.args(["--", "sqlx", "migrate", "run"]);
    c
}

#[test]
fn fresh_up_to_date_pending_failing_and_edited() {
    let pg = Pg::start_new();
    let d = project(0);
    let p = d.path();
    let out = run(migrate(&pg, "items", p));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stdout.contains("Applied 20260101000002/migrate data"),
        "{}",
        out.all_output()
    );
    assert_eq!(counts(&pg, "items", "items", "name"), "from 2=1");

    let out = run(migrate(&pg, "items", p));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(out.stderr.contains("sqlx is up to date"), "{}", out.stderr);
    let bin = tools::sqlx().parent().expect("bin").to_path_buf();
    let c = dbinit(&pg, "items", p, "run", &[&bin]);
    assert_starts_no_child(c, "sqlx");

    write(
        p,
        "20260101000003_price.sql",
        "ALTER TABLE items ADD COLUMN price int;\n",
    );
    let out = run(migrate(&pg, "items", p));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stderr
            .contains("sqlx has pending migrations: 20260101000003"),
        "{}",
        out.stderr
    );

    write(
        p,
        "20260101000004_broken.sql",
        "CREATE TABLE t_ok (id int);\nALTER TABLE nope ADD COLUMN x int;\n",
    );
    let out = run(migrate(&pg, "items", p));
    assert_eq!(out.code, Some(5), "{}", out.all_output());
    let tm = termination(p);
    assert!(
        tm.contains("while executing migration 20260101000004")
            && tm.contains("relation \"nope\" does not exist"),
        "{tm}"
    );
    assert_eq!(pg.psql("items", "SELECT to_regclass('t_ok') IS NULL"), "t");
    std::fs::remove_file(p.join("migrations/20260101000004_broken.sql")).expect("rm");

    // An applied migration edited: sqlx would refuse; dbinit says so without starting it.
    write(
        p,
        "20260101000003_price.sql",
        "ALTER TABLE items ADD COLUMN price bigint;\n",
    );
    let out = run(migrate(&pg, "items", p));
    assert_eq!(out.code, Some(6), "{}", out.all_output());
    let tm = termination(p);
    assert!(
        tm.contains("migration 20260101000003 was previously applied but has been modified")
            && tm.contains("20260101000003_price.sql"),
        "{tm}"
    );
}

#[test]
fn ten_runners_apply_each_migration_once() {
    let pg = Pg::start_new();
    let d = project(3);
    let runs = concurrently(10, |_| migrate(&pg, "fresh", d.path()));
    assert_all_succeeded(&runs);
    assert_eq!(counts(&pg, "fresh", "items", "name"), "from 2=1");
    assert_eq!(
        pg.psql(
            "fresh",
            "SELECT count(*) FROM _sqlx_migrations WHERE success"
        ),
        "2"
    );
}
