//! Taking over databases that dbinit did not build: refusing to run blind, `baseline`,
//! `adopt` from Alembic, Flyway, golang-migrate, dbmate and sqlx, `plan` and `repair`,
//! against real PostgreSQL with real processes. The other tools' history tables are built by
//! hand from fixtures with their real column layouts (tests/fixtures/adopt/).

use std::process::Stdio;
use std::time::Instant;

use dbinit_tests::{Pg, PgOpts, finish, run};

#[path = "adopt/target.rs"]
mod target;

use target::*;

#[test]
fn alembic_agentic_deals_is_refused_then_adopted_and_only_the_new_migration_applies() {
    let pg = Pg::start_new();
    let set = agentic_deals_plus_v8();
    let t = Target::new(&pg, "agentic_deals", set.path());
    t.built_by_other_tool(7, Some("alembic.sql"));
    t.sql("INSERT INTO users (email, display_name) VALUES ('ann@example.com', 'Ann')");
    let alembic = t.fingerprint("alembic_version");

    // 1. Blind: refused, naming what it found and how to adopt; nothing written.
    let tm = tempfile::tempdir().expect("tmp");
    let refused = run({
        let mut c = t.cmd(&["run"]);
        c.env(
            "DBINIT_TERMINATION_MESSAGE_PATH",
            tm.path().join("termination-log"),
        );
        c
    });
    eprintln!("refused run:\n{}", refused.stderr);
    code(&refused, UNADOPTED);
    mentions(
        &refused,
        &[
            "alembic_version",
            "Alembic",
            "b8f15d3a0e96",
            "dbinit adopt --from alembic",
            "DBINIT_ADOPT_FROM=alembic",
            "DBINIT_ADOPT_MAP",
        ],
    );
    let termination = read(&tm.path().join("termination-log"));
    assert!(
        termination.starts_with("unadopted (exit 9): "),
        "{termination}"
    );
    assert_eq!(t.history(), "absent", "a refused run creates no history");
    assert_eq!(
        t.sql("SELECT to_regclass('dbinit_seed_history') IS NULL"),
        "t"
    );
    assert_eq!(t.sql("SELECT count(*) FROM users"), "1");

    // 2. plan says the same, without writing.
    let plan = t.run(&["plan"]);
    code(&plan, UNADOPTED);
    eprintln!("plan:\n{}", plan.stdout);
    mentions(&plan, &["alembic_version", "b8f15d3a0e96"]);
    assert_eq!(t.history(), "absent");

    // 3. An Alembic head that the map does not know is refused, naming it.
    let bad_map = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(bad_map.path(), "1f6a2c7d9b30 = 1\n").expect("write map");
    let unmapped = run({
        let mut c = t.cmd(&["adopt", "--from", "alembic"]);
        c.env("DBINIT_ADOPT_MAP", bad_map.path());
        c
    });
    code(&unmapped, UNADOPTED);
    mentions(&unmapped, &["b8f15d3a0e96", "not in"]);
    assert_eq!(t.history(), "absent");

    // 4. Adopt with the shipped map: versions 1-7 recorded with the files' checksums.
    let map = repo().join("migrations/alembic-revisions.map");
    let adopted = run({
        let mut c = t.cmd(&["adopt", "--from", "alembic"]);
        c.env("DBINIT_ADOPT_MAP", &map);
        c
    });
    code(&adopted, 0);
    assert_eq!(t.history(), "1,2,3,4,5,6,7");
    eprintln!("adopt:\n{}", adopted.stderr);
    let audit = t.audit();
    assert_eq!(audit.lines().count(), 7, "{audit}");
    assert!(
        audit
            .lines()
            .all(|l| l.starts_with("adopt:") && l.contains("alembic_version")),
        "{audit}"
    );
    assert!(
        audit.contains("adopt:7:alembic_version revision b8f15d3a0e96"),
        "{audit}"
    );
    let status = t.run(&["status"]);
    code(&status, 0);
    assert!(!status.stdout.contains("edited"), "{}", status.stdout);

    // Adopting again changes nothing.
    let again = run({
        let mut c = t.cmd(&["adopt", "--from", "alembic"]);
        c.env("DBINIT_ADOPT_MAP", &map);
        c
    });
    code(&again, 0);
    assert_eq!(t.audit().lines().count(), 7);

    // 5. run applies only V8 (and the idempotent seeds); Alembic's table is untouched.
    let ran = t.run(&["run"]);
    code(&ran, 0);
    mentions(&ran, &["applied 1 migration(s) (V8__deal_alert_threshold)"]);
    assert_eq!(t.history(), "1,2,3,4,5,6,7,8");
    assert_eq!(
        t.sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'tracked_deals' AND column_name = 'alert_drop_pct'"),
        "1"
    );
    assert_eq!(t.sql("SELECT count(*) FROM users"), "1");
    assert_eq!(t.fingerprint("alembic_version"), alembic);
}

#[test]
fn flyway_history_is_adopted_by_the_run_setting() {
    let pg = Pg::start_new();
    let set = small_set();
    let t = Target::new(&pg, "flyway_app", set.path());
    t.built_by_other_tool(3, Some("flyway.sql"));
    let before = t.fingerprint("flyway_schema_history");

    let refused = t.run(&["run"]);
    code(&refused, UNADOPTED);
    mentions(
        &refused,
        &[
            "flyway_schema_history",
            "Flyway",
            "version 3",
            "DBINIT_ADOPT_FROM=flyway",
        ],
    );
    assert_eq!(t.history(), "absent");

    // The init-container way: one setting, and the same run then applies V4.
    let t = t.with("DBINIT_ADOPT_FROM", "flyway");
    // plan shows the adoption the run would record, and what it would apply after it.
    let plan = t.run(&["plan", "--output", "json"]);
    code(&plan, 0);
    let v: serde_json::Value = serde_json::from_str(&plan.stdout).expect("json");
    assert_eq!(v["adoption"]["action"], "adopt", "{v}");
    assert_eq!(v["adoption"]["version"], 3, "{v}");
    assert_eq!(v["migrations"][0]["name"], "V4__invoices", "{v}");
    assert_eq!(v["migrations"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(t.history(), "absent");
    let ran = t.run(&["run"]);
    code(&ran, 0);
    mentions(&ran, &["applied 1 migration(s) (V4__invoices)"]);
    assert_eq!(t.history(), "1,2,3,4");
    assert!(
        t.audit().contains("adopt:3:flyway_schema_history"),
        "{}",
        t.audit()
    );
    assert_eq!(t.fingerprint("flyway_schema_history"), before);
    // With dbinit history present the setting is a no-op.
    code(&t.run(&["run"]), 0);
    assert_eq!(t.audit().lines().count(), 3);
}

#[test]
fn golang_migrate_is_adopted_by_detection_and_dirty_is_refused() {
    let pg = Pg::start_new();
    let set = small_set();
    let t = Target::new(&pg, "gm_app", set.path());
    t.built_by_other_tool(3, Some("golang_migrate.sql"));
    let before = t.fingerprint("schema_migrations");

    let refused = t.run(&["run"]);
    code(&refused, UNADOPTED);
    mentions(
        &refused,
        &[
            "schema_migrations",
            "golang-migrate",
            "version 3",
            "dbinit adopt",
        ],
    );

    // A dirty golang-migrate database is not adopted: it has a half-applied migration.
    t.sql("UPDATE schema_migrations SET dirty = true");
    let dirty = t.run(&["adopt"]);
    code(&dirty, UNADOPTED);
    mentions(&dirty, &["dirty"]);
    assert_eq!(t.history(), "absent");
    t.sql("UPDATE schema_migrations SET dirty = false");

    // Without --from, the one tool table found is the one adopted.
    let adopted = t.run(&["adopt"]);
    code(&adopted, 0);
    assert_eq!(t.history(), "1,2,3");
    let ran = t.run(&["run"]);
    code(&ran, 0);
    mentions(&ran, &["applied 1 migration(s) (V4__invoices)"]);
    assert_eq!(t.fingerprint("schema_migrations"), before);
}

#[test]
fn dbmate_timestamp_versions_map_through_the_adopt_map() {
    let pg = Pg::start_new();
    let set = small_set();
    let t = Target::new(&pg, "dbmate_app", set.path());
    t.built_by_other_tool(3, Some("dbmate.sql"));
    let before = t.fingerprint("schema_migrations");

    let refused = t.run(&["run"]);
    code(&refused, UNADOPTED);
    mentions(&refused, &["schema_migrations", "dbmate", "20240301101500"]);

    // dbmate's versions are timestamps: without a map they are refused, naming the map.
    let no_map = t.run(&["adopt", "--from", "dbmate"]);
    code(&no_map, UNADOPTED);
    mentions(&no_map, &["20240301101500", "DBINIT_ADOPT_MAP"]);

    let t = t.with("DBINIT_ADOPT_MAP", fixture("dbmate.map").display());
    code(&t.run(&["adopt", "--from", "dbmate"]), 0);
    assert_eq!(t.history(), "1,2,3");
    assert!(
        t.audit()
            .contains("adopt:1:schema_migrations version 20240105090000"),
        "{}",
        t.audit()
    );
    let ran = t.run(&["run"]);
    code(&ran, 0);
    mentions(&ran, &["applied 1 migration(s) (V4__invoices)"]);
    assert_eq!(t.fingerprint("schema_migrations"), before);
}

#[test]
fn sqlx_history_is_adopted() {
    let pg = Pg::start_new();
    let set = small_set();
    let t = Target::new(&pg, "sqlx_app", set.path());
    t.built_by_other_tool(3, Some("sqlx.sql"));
    let before = t.fingerprint("_sqlx_migrations");

    let refused = t.run(&["run"]);
    code(&refused, UNADOPTED);
    mentions(&refused, &["_sqlx_migrations", "sqlx", "version 3"]);

    // A failed sqlx migration (success = false) is refused.
    t.sql("UPDATE _sqlx_migrations SET success = false WHERE version = 3");
    let failed = t.run(&["adopt", "--from", "sqlx"]);
    code(&failed, UNADOPTED);
    mentions(&failed, &["failed"]);
    t.sql("UPDATE _sqlx_migrations SET success = true WHERE version = 3");

    code(&t.run(&["adopt", "--from", "sqlx"]), 0);
    assert_eq!(t.history(), "1,2,3");
    let ran = t.run(&["run"]);
    code(&ran, 0);
    mentions(&ran, &["applied 1 migration(s) (V4__invoices)"]);
    assert_eq!(t.fingerprint("_sqlx_migrations"), before);
}

#[test]
fn tables_without_any_history_are_refused_then_baselined_by_the_setting() {
    let pg = Pg::start_new();
    let set = small_set();
    let t = Target::new(&pg, "hand_made", set.path());
    t.built_by_other_tool(3, None);
    let refused = t.run(&["run"]);
    code(&refused, UNADOPTED);
    mentions(
        &refused,
        &[
            "accounts",
            "orders",
            "dbinit baseline --version",
            "DBINIT_BASELINE_VERSION",
        ],
    );
    assert_eq!(t.history(), "absent");

    let t = t.with("DBINIT_BASELINE_VERSION", 3);
    let ran = t.run(&["run"]);
    code(&ran, 0);
    mentions(&ran, &["applied 1 migration(s) (V4__invoices)"]);
    assert_eq!(t.history(), "1,2,3,4");
    assert_eq!(
        t.audit(),
        "baseline:1:baseline\nbaseline:2:baseline\nbaseline:3:baseline"
    );

    // On an empty database the setting does nothing: everything is applied from V1.
    let fresh = Target::new(&pg, "fresh_app", set.path()).with("DBINIT_BASELINE_VERSION", 3);
    let ran = fresh.run(&["run"]);
    code(&ran, 0);
    assert_eq!(fresh.history(), "1,2,3,4");
    assert_eq!(fresh.sql("SELECT to_regclass('dbinit_audit') IS NULL"), "t");
}

#[test]
fn baseline_refuses_an_unknown_version_and_is_idempotent() {
    let pg = Pg::start_new();
    let set = small_set();
    let t = Target::new(&pg, "base_app", set.path());
    t.built_by_other_tool(2, None);

    let unknown = t.run(&["baseline", "--version", "42"]);
    code(&unknown, 2);
    mentions(&unknown, &["--version", "42", "1, 2, 3, 4"]);
    assert_eq!(t.history(), "absent");

    code(&t.run(&["baseline", "--version", "2"]), 0);
    assert_eq!(t.history(), "1,2");
    let checksums =
        t.sql("SELECT string_agg(checksum, ',' ORDER BY version) FROM refinery_schema_history");
    let again = t.run(&["baseline", "--version", "2"]);
    code(&again, 0);
    assert_eq!(t.history(), "1,2");
    assert_eq!(
        t.sql("SELECT string_agg(checksum, ',' ORDER BY version) FROM refinery_schema_history"),
        checksums
    );
    assert_eq!(t.sql("SELECT count(*) FROM dbinit_audit"), "2");
    // status agrees: the checksums are the files'.
    let status = t.run(&["status"]);
    code(&status, 0);
    assert!(!status.stdout.contains("edited"), "{}", status.stdout);
    // A database with dbinit history is not baselined over.
    code(&t.run(&["baseline", "--version", "3"]), 2);
    assert_eq!(t.history(), "1,2");
}

#[test]
fn twenty_concurrent_baselines_record_one() {
    let pg = Pg::start_new();
    let set = small_set();
    let t = Target::new(&pg, "base_race", set.path());
    t.built_by_other_tool(3, Some("flyway.sql"));
    let children: Vec<_> = (0..20)
        .map(|_| {
            let child = t
                .cmd(&["baseline", "--version", "3"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn dbinit");
            (child, Instant::now())
        })
        .collect();
    for (c, s) in children {
        code(&finish(c, s), 0);
    }
    assert_eq!(t.history(), "1,2,3");
    assert_eq!(
        t.sql(
            "SELECT count(*), count(DISTINCT version) FROM dbinit_audit WHERE action = 'baseline'"
        ),
        "3|3"
    );
    code(&t.run(&["run"]), 0);
    assert_eq!(t.history(), "1,2,3,4");
}

/// The next transaction id: it moves when anything anywhere in the cluster writes.
fn next_xid(pg: &Pg) -> String {
    pg.psql("postgres", "SELECT pg_snapshot_xmax(pg_current_snapshot())")
}

#[test]
fn plan_with_a_read_only_role_writes_nothing() {
    // No autovacuum: its ANALYZE would write and move the xid under the test. Every
    // statement is logged with its role, to see what plan sent.
    let pg = Pg::init(PgOpts {
        settings: vec![
            ("autovacuum".into(), "off".into()),
            ("log_statement".into(), "all".into()),
            ("log_line_prefix".into(), "%u:".into()),
        ],
        ..PgOpts::default()
    });
    pg.start();
    let dir = tempfile::tempdir().expect("tmp");
    let t = Target::new(&pg, "plan_app", dir.path());
    std::fs::write(dir.path().join(SMALL[0].0), SMALL[0].1).expect("write");
    std::fs::write(dir.path().join(SMALL[1].0), SMALL[1].1).expect("write");
    code(&t.run(&["run"]), 0);
    std::fs::write(
        dir.path().join("V3__orders_total.sql"),
        "ALTER TABLE orders ADD COLUMN total numeric(12,2);\nCOMMENT ON COLUMN orders.total IS 'gross';\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("V4__orders_index.sql"),
        "-- dbinit:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_account_idx ON orders (account_id);\n",
    )
    .expect("write");
    std::fs::create_dir(dir.path().join("seeds")).expect("mkdir");
    std::fs::write(
        dir.path().join("seeds/001_accounts.sql"),
        "INSERT INTO accounts VALUES (1) ON CONFLICT DO NOTHING;",
    )
    .expect("write");

    pg.psql(
        "plan_app",
        "CREATE ROLE reader LOGIN PASSWORD 'reader-pw';
         REVOKE CONNECT ON DATABASE plan_app FROM PUBLIC;
         GRANT CONNECT ON DATABASE plan_app TO reader;
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;
         ALTER ROLE reader SET default_transaction_read_only = on;",
    );
    let relations = || t.sql("SELECT count(*) || '/' || max(oid::int8) FROM pg_class");
    let databases = || {
        pg.psql(
            "postgres",
            "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database",
        )
    };
    let (xid, rels, dbs) = (next_xid(&pg), relations(), databases());

    let reader = |args: &[&str]| {
        let mut c = t.cmd(args);
        c.env("POSTGRES_USER", "reader")
            .env("POSTGRES_PASSWORD", "reader-pw");
        run(c)
    };
    let json = reader(&["plan", "--output", "json"]);
    code(&json, 0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout)
        .unwrap_or_else(|e| panic!("plan --output json is JSON ({e}):\n{}", json.stdout));
    assert_eq!(v["create_database"], false, "{v}");
    assert!(v["refusal"].is_null(), "{v}");
    assert_eq!(v["applied_version"], 2, "{v}");
    let ms = v["migrations"].as_array().expect("migrations");
    assert_eq!(ms.len(), 2, "{v}");
    assert_eq!(ms[0]["name"], "V3__orders_total");
    assert_eq!(ms[0]["transaction"], true);
    assert_eq!(ms[0]["statements"], 2);
    assert_eq!(ms[1]["name"], "V4__orders_index");
    assert_eq!(ms[1]["transaction"], false);
    assert_eq!(ms[1]["statements"], 1);
    let seeds = v["seeds"].as_array().expect("seeds");
    assert_eq!(seeds.len(), 1, "{v}");
    assert_eq!(seeds[0]["name"], "001_accounts.sql");

    let text = reader(&["plan"]);
    code(&text, 0);
    mentions(
        &text,
        &[
            "V3__orders_total",
            "V4__orders_index",
            "no-transaction",
            "001_accounts.sql",
        ],
    );

    assert_eq!(
        next_xid(&pg),
        xid,
        "plan assigned a transaction id: it wrote"
    );
    assert_eq!(relations(), rels);
    assert_eq!(databases(), dbs);
    assert_eq!(t.history(), "1,2");
    // What plan sent: reads only, and no lock (not even a try).
    let log = pg.log();
    let sent: Vec<&str> = log.lines().filter(|l| l.starts_with("reader:")).collect();
    assert!(
        sent.iter().any(|l| l.contains("refinery_schema_history")),
        "the log shows plan's statements:\n{log}"
    );
    for word in [
        "advisory", "CREATE", "INSERT", "UPDATE", "DELETE", "ALTER", "BEGIN",
    ] {
        assert!(
            !sent.iter().any(|l| l.contains(word)),
            "plan sent {word}:\n{}",
            sent.join("\n")
        );
    }

    // The same read-only role cannot run: plan was not lucky, it needs no writes.
    let denied = reader(&["run"]);
    assert_ne!(denied.code, Some(0), "{}", denied.stderr);
    assert_eq!(t.history(), "1,2");
}

#[test]
fn plan_against_a_missing_database_says_it_would_create_it() {
    let pg = Pg::start_new();
    let set = small_set();
    let t = Target::new(&pg, "not_yet", set.path());
    let dbs = pg.psql("postgres", "SELECT count(*) FROM pg_database");
    let xid = next_xid(&pg);
    let text = t.run(&["plan"]);
    code(&text, 0);
    mentions(
        &text,
        &["create database", "not_yet", "V1__accounts", "V4__invoices"],
    );
    let json = t.run(&["plan", "--output", "json"]);
    code(&json, 0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(v["create_database"], true, "{v}");
    assert_eq!(v["migrations"].as_array().map(Vec::len), Some(4), "{v}");
    assert_eq!(pg.psql("postgres", "SELECT count(*) FROM pg_database"), dbs);
    assert_eq!(next_xid(&pg), xid);
}

#[test]
fn repair_changes_one_row_and_adds_one_audit_record() {
    let pg = Pg::start_new();
    let set = small_set();
    let t = Target::new(&pg, "repair_app", set.path());
    code(&t.run(&["run"]), 0);
    let rows = || {
        t.sql("SELECT string_agg(version || '|' || name || '|' || applied_on || '|' || checksum, E'\\n' ORDER BY version) FROM refinery_schema_history")
    };
    let before = rows();
    let old = t.sql("SELECT checksum FROM refinery_schema_history WHERE version = 2");

    // A cosmetic edit of an applied file stops every run...
    std::fs::write(
        set.path().join("V2__orders.sql"),
        "-- orders of an account\nCREATE TABLE orders (id int PRIMARY KEY, account_id int REFERENCES accounts);",
    )
    .expect("edit V2");
    code(&t.run(&["run"]), 6);

    // ...until repair accepts the file; never automatically, never an unapplied version.
    let unapplied = t.run(&["repair", "--version", "9"]);
    code(&unapplied, 2);
    mentions(&unapplied, &["9", "not applied"]);
    assert_eq!(rows(), before);

    let repaired = t.run(&["repair", "--version", "2"]);
    code(&repaired, 0);
    let after = rows();
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed.len(),
        1,
        "exactly one row changes:\n{before}\n--\n{after}"
    );
    assert!(changed[0].0.starts_with("2|orders|"), "{changed:?}");
    let new = t.sql("SELECT checksum FROM refinery_schema_history WHERE version = 2");
    assert_ne!(old, new);
    assert_eq!(
        t.sql("SELECT count(*) || '|' || string_agg(action || '|' || version || '|' || old_checksum || '|' || new_checksum || '|' || (actor <> '') || '|' || (at > now() - interval '1 minute'), ',') FROM dbinit_audit"),
        format!("1|repair|2|{old}|{new}|true|true")
    );
    code(&t.run(&["run"]), 0);
    // Repairing an up-to-date version records nothing.
    code(&t.run(&["repair", "--version", "2"]), 0);
    assert_eq!(t.sql("SELECT count(*) FROM dbinit_audit"), "1");
}

#[test]
fn empty_history_beside_tables_refuses_unless_v1_was_our_interrupted_no_transaction_file() {
    let pg = Pg::start_new();
    // An earlier dbinit created an empty history table before failing on a foreign schema:
    // still refused while another tool's table is there.
    let set = small_set();
    let t = Target::new(&pg, "half_done", set.path());
    t.built_by_other_tool(3, Some("golang_migrate.sql"));
    t.sql("CREATE TABLE refinery_schema_history (version int4 PRIMARY KEY, name varchar(255), applied_on varchar(255), checksum varchar(255))");
    code(&t.run(&["run"]), UNADOPTED);
    assert_eq!(t.history(), "");

    // A no-transaction V1 that failed halfway left a table behind: that is our own start,
    // and the fixed file runs again from the beginning.
    let dir = tempfile::tempdir().expect("tmp");
    let v1 = dir.path().join("V1__first.sql");
    std::fs::write(
        &v1,
        "-- dbinit:no-transaction\nCREATE TABLE IF NOT EXISTS first (id int);\n\nSELECT * FROM not_there_yet;\n",
    )
    .expect("write");
    let t = Target::new(&pg, "notx_first", dir.path());
    code(&t.run(&["run"]), 5);
    assert_eq!(t.sql("SELECT to_regclass('first') IS NOT NULL"), "t");
    assert_eq!(t.history(), "");
    std::fs::write(
        &v1,
        "-- dbinit:no-transaction\nCREATE TABLE IF NOT EXISTS first (id int);\n\nCREATE TABLE IF NOT EXISTS not_there_yet (id int);\n",
    )
    .expect("write");
    code(&t.run(&["run"]), 0);
    assert_eq!(t.history(), "1");
}
