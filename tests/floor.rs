//! The compatibility floor against a real PostgreSQL: a contract step declares
//! `-- dbinit:compatible-from=N`; `plan` shows the floor it would set; once applied, it is in
//! the audit table (the history table keeps refinery's four columns for older readers), and
//! the `run`, `wait` and `status --exit-code` of a release whose set ends below N exit 13 with
//! the message naming the floor and the file, while a set that reaches N runs.

use std::path::Path;
use std::process::Command;

use dbinit_tests::{Pg, command, run};

fn dbinit(pg: &Pg, dir: &Path, args: &[&str]) -> Command {
    let mut c = command("dbinit");
    c.args(args)
        .envs(pg.env())
        .env("POSTGRES_DB", "floor")
        .env("DBINIT_MIGRATIONS_DIR", dir)
        .env("DBINIT_TIMEOUT", "20s");
    c
}

fn write(dir: &Path, name: &str, sql: &str) {
    std::fs::write(dir.join(name), sql).expect("write migration");
}

const MESSAGE: &str = "database requires a release with migrations >= V3 (V4__drop_legacy_price \
                       is incompatible with this image, which ends at V2)";

#[test]
fn a_contract_step_excludes_releases_that_end_below_its_floor_with_exit_13() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    write(
        d,
        "V1__prices.sql",
        "CREATE TABLE prices (id int, price numeric, legacy_price numeric);\n",
    );
    write(
        d,
        "V2__currency.sql",
        "ALTER TABLE prices ADD COLUMN currency text;\n",
    );
    write(
        d,
        "V3__copy.sql",
        "UPDATE prices SET price = legacy_price WHERE price IS NULL;\n",
    );
    write(
        d,
        "V4__drop_legacy_price.sql",
        "-- dbinit:compatible-from=3\nALTER TABLE prices DROP COLUMN legacy_price;\n",
    );

    // plan says what the pending contract step would do to older releases.
    let plan = run(dbinit(&pg, d, &["plan"]));
    assert_eq!(plan.code, Some(0), "{}", plan.all_output());
    assert!(
        plan.stdout.contains("sets the compatibility floor V3"),
        "{}",
        plan.stdout
    );
    let json = run(dbinit(&pg, d, &["plan", "--output", "json"]));
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan JSON");
    assert_eq!(v["migrations"][3]["compatible_from"], 3, "{v:#}");

    assert_eq!(run(dbinit(&pg, d, &["run"])).code, Some(0));
    assert_eq!(
        pg.psql(
            "floor",
            "SELECT action || ' ' || version || ' ' || name || ' ' || source FROM dbinit_audit"
        ),
        "compatible-from 4 drop_legacy_price 3"
    );
    assert_eq!(
        pg.psql(
            "floor",
            "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'refinery_schema_history'"
        ),
        "version,name,applied_on,checksum",
        "the history table is refinery's, as older readers expect"
    );

    // A release that ends at V3 (at the floor) still runs: the database is only ahead.
    std::fs::remove_file(d.join("V4__drop_legacy_price.sql")).expect("rm");
    let at = run(dbinit(&pg, d, &["run"]));
    assert_eq!(at.code, Some(0), "{}", at.all_output());
    let st = run(dbinit(&pg, d, &["status", "--exit-code", "--allow-ahead"]));
    assert_eq!(st.code, Some(0), "{}", st.all_output());

    // A release that ends at V2 (below it): every command that would let it start refuses.
    std::fs::remove_file(d.join("V3__copy.sql")).expect("rm");
    for args in [
        &["run"][..],
        &["wait"][..],
        &["status", "--exit-code"][..],
        &["status", "--exit-code", "--allow-ahead"][..],
    ] {
        let out = run(dbinit(&pg, d, args));
        assert_eq!(out.code, Some(13), "{args:?}: {}", out.all_output());
        assert!(
            out.all_output().contains(MESSAGE),
            "{args:?}: {}",
            out.all_output()
        );
    }
    let st = run(dbinit(&pg, d, &["status", "--output", "json"]));
    let v: serde_json::Value = serde_json::from_str(&st.stdout).expect("status JSON");
    assert_eq!(v["verdict"], "incompatible", "{v:#}");
    assert_eq!(v["incompatible"], MESSAGE, "{v:#}");
    let plan = run(dbinit(&pg, d, &["plan"]));
    assert_eq!(plan.code, Some(13), "{}", plan.all_output());
    assert!(
        plan.stdout.contains("incompatible exit 13"),
        "{}",
        plan.stdout
    );
    assert_eq!(
        pg.psql("floor", "SELECT count(*) FROM refinery_schema_history"),
        "4",
        "nothing was applied or removed"
    );
}

#[test]
fn a_floor_above_its_own_file_is_a_configuration_error() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    write(
        dir.path(),
        "V1__a.sql",
        "-- dbinit:compatible-from=2\nSELECT 1;\n",
    );
    let out = run(dbinit(&pg, dir.path(), &["run"]));
    assert_eq!(out.code, Some(2), "{}", out.all_output());
    assert!(
        out.stderr.contains("V1__a") && out.stderr.contains("compatible-from=2"),
        "{}",
        out.stderr
    );
}
