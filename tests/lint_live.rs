//! The migration review with a real PostgreSQL: the same `CREATE INDEX` judged ok on a
//! 100-row table and a block on a 2-million-row one (`plan`, `lint`), a lock another
//! session holds named, `run` logging what it is about to apply and refusing only with
//! `DBINIT_LINT_FAIL_ON`, and `plan` plus `lint` under a read-only role leaving the next
//! transaction id, `pg_class` and the statement log as they were (as tests/adopt.rs checks
//! for `plan`).

use std::path::Path;

use dbinit_tests::{Finished, Pg, PgOpts, PsqlSession, command, run};

const UNSAFE: i32 = 14;

fn code(f: &Finished, want: i32) {
    assert_eq!(
        f.code,
        Some(want),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        f.stdout,
        f.stderr
    );
}

fn dbinit(pg: &Pg, db: &str, dir: &Path, args: &[&str]) -> Finished {
    let mut c = command("dbinit");
    c.args(args)
        .envs(pg.env())
        .env("POSTGRES_DB", db)
        .env("DBINIT_MIGRATIONS_DIR", dir)
        .env("DBINIT_TIMEOUT", "60s");
    run(c)
}

/// Two tables through dbinit itself (so `plan` has a history to read), filled and analyzed
/// by hand: `small` with 100 rows, `big` with 2 million.
fn two_tables(pg: &Pg, db: &str, dir: &Path) {
    std::fs::write(
        dir.join("V1__tables.sql"),
        "CREATE TABLE small (id bigint PRIMARY KEY, v text);\nCREATE TABLE big (id bigint PRIMARY KEY, v text);\n",
    )
    .expect("write");
    code(&dbinit(pg, db, dir, &["run"]), 0);
    pg.psql(
        db,
        "INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 100) g;
         INSERT INTO big SELECT g, 'v' || (g % 1000) FROM generate_series(1, 2000000) g;
         ANALYZE small; ANALYZE big;",
    );
    // The same statement on each.
    std::fs::write(
        dir.join("V2__small_v.sql"),
        "CREATE INDEX small_v_idx ON small (v);\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("V3__big_v.sql"),
        "CREATE INDEX big_v_idx ON big (v);\n",
    )
    .expect("write");
}

/// (file, rule, verdict) of every finding of a review.
fn verdicts(review: &serde_json::Value) -> Vec<(String, String, String)> {
    review["files"]
        .as_array()
        .expect("files")
        .iter()
        .flat_map(|f| {
            f["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .map(move |j| {
                    (
                        f["name"].as_str().unwrap_or_default().to_string(),
                        j["rule"].as_str().unwrap_or_default().to_string(),
                        j["verdict"].as_str().unwrap_or_default().to_string(),
                    )
                })
        })
        .collect()
}

fn finding<'a>(review: &'a serde_json::Value, file: &str, rule: &str) -> &'a serde_json::Value {
    review["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| f["name"] == file)
        .flat_map(|f| f["findings"].as_array().expect("findings"))
        .find(|j| j["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} in {file}: {review}"))
}

#[test]
fn the_verdict_flips_with_the_tables_size_and_a_held_lock_is_named() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    two_tables(&pg, "flip", dir.path());
    std::fs::write(
        dir.path().join("V4__big_note.sql"),
        "ALTER TABLE big ADD COLUMN note text;\n",
    )
    .expect("write");
    // An application's reader, idle in its transaction, holding ACCESS SHARE on big.
    let mut holder = PsqlSession::open(&pg, "flip", "report-job");
    holder.send("BEGIN;");
    holder.send("SELECT count(*) FROM big WHERE id < 10;");
    PsqlSession::wait_for_table_lock(&pg, "flip", "report-job", "big");
    let holder_pid = pg.psql(
        "flip",
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'report-job'",
    );

    let plan = dbinit(&pg, "flip", dir.path(), &["plan", "--output", "json"]);
    code(&plan, 0);
    let v: serde_json::Value = serde_json::from_str(&plan.stdout).expect("json");
    let lint = &v["lint"];
    assert_eq!(lint["facts"], "live", "{lint}");
    let rule = "require-concurrent-index-creation";
    let small = finding(lint, "V2__small_v", rule);
    let big = finding(lint, "V3__big_v", rule);
    assert_eq!(small["verdict"], "ok", "{small}");
    assert_eq!(big["verdict"], "block", "{big}");
    assert_eq!(big["tables"][0]["name"], "public.big", "{big}");
    let rows = big["tables"][0]["rows"].as_u64().expect("rows");
    assert!((1_900_000..=2_100_000).contains(&rows), "{rows}");
    assert!(
        big["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("DBINIT_LINT_BLOCK_ROWS")
    );
    assert_eq!(
        big["tables"][0]["locks"][0]["pid"].to_string(),
        holder_pid,
        "{big}"
    );
    // ADD COLUMN needs ACCESS EXCLUSIVE, which waits behind the reader: named.
    let held = finding(lint, "V4__big_note", "held-lock");
    assert_eq!(held["verdict"], "warn");
    let message = held["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("pid {holder_pid}")) && message.contains("report-job"),
        "{message}"
    );
    let text = dbinit(&pg, "flip", dir.path(), &["plan"]);
    code(&text, 0);
    for want in [
        "BLOCK require-concurrent-index-creation",
        "public.big (~",
        &format!("held now: pid {holder_pid} (app: report-job"),
    ] {
        assert!(text.stdout.contains(want), "{want:?} in:\n{}", text.stdout);
    }

    // `lint` with the connection reviews the pending files alike; `--offline` cannot size.
    let live = dbinit(&pg, "flip", dir.path(), &["lint", "--output", "json"]);
    code(&live, 0);
    let lv: serde_json::Value = serde_json::from_str(&live.stdout).expect("json");
    let got = verdicts(&lv);
    assert!(
        got.contains(&("V2__small_v".into(), rule.into(), "ok".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("V3__big_v".into(), rule.into(), "block".into())),
        "{got:?}"
    );
    // Offline, the files given: nothing creates the tables, so they are assumed large.
    let pending = [
        dir.path().join("V2__small_v.sql"),
        dir.path().join("V3__big_v.sql"),
    ];
    let mut c = command("dbinit");
    c.args(["lint", "--offline", "--output", "json"])
        .args(&pending)
        .envs(pg.env());
    let offline = run(c);
    code(&offline, 0);
    let ov: serde_json::Value = serde_json::from_str(&offline.stdout).expect("json");
    assert_eq!(ov["facts"], "static");
    let blocks = verdicts(&ov)
        .iter()
        .filter(|(_, r, v)| r == rule && v == "block")
        .count();
    assert_eq!(blocks, 2, "{ov}");
    holder.close();

    // The gate: plan says run would refuse, run refuses and applies nothing...
    let gated = |args: &[&str]| {
        let mut c = command("dbinit");
        c.args(args)
            .envs(pg.env())
            .env("POSTGRES_DB", "flip")
            .env("DBINIT_MIGRATIONS_DIR", dir.path())
            .env("DBINIT_TIMEOUT", "60s")
            .env("DBINIT_LINT_FAIL_ON", "block");
        run(c)
    };
    code(&gated(&["plan"]), UNSAFE);
    let refused = gated(&["run"]);
    code(&refused, UNSAFE);
    assert!(
        refused
            .stderr
            .contains("V3__big_v line 1: require-concurrent-index-creation (block)"),
        "{}",
        refused.stderr
    );
    assert_eq!(pg.history("flip"), "1");
    // ...and without it run logs the findings at warn level and applies.
    let applied = dbinit(&pg, "flip", dir.path(), &["run"]);
    code(&applied, 0);
    let warned: Vec<&str> = applied
        .stderr
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("require-concurrent-index-creation"))
        .collect();
    assert_eq!(
        warned.len(),
        1,
        "only big's index warns:\n{}",
        applied.stderr
    );
    assert!(warned[0].contains("V3__big_v"), "{}", warned[0]);
    assert_eq!(pg.history("flip"), "1,2,3,4");
}

/// The next transaction id: it moves when anything anywhere in the cluster writes.
fn next_xid(pg: &Pg) -> String {
    pg.psql("postgres", "SELECT pg_snapshot_xmax(pg_current_snapshot())")
}

#[test]
fn plan_and_lint_with_a_read_only_role_write_nothing() {
    // No autovacuum (its ANALYZE writes); every statement logged with its role.
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
    two_tables(&pg, "ro", dir.path());
    pg.psql(
        "ro",
        "CREATE ROLE reader LOGIN PASSWORD 'reader-pw';
         REVOKE CONNECT ON DATABASE ro FROM PUBLIC;
         GRANT CONNECT ON DATABASE ro TO reader;
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;
         ALTER ROLE reader SET default_transaction_read_only = on;",
    );
    let relations = || {
        pg.psql(
            "ro",
            "SELECT count(*) || '/' || max(oid::int8) FROM pg_class",
        )
    };
    let (xid, rels) = (next_xid(&pg), relations());
    let reader = |args: &[&str]| {
        let mut c = command("dbinit");
        c.args(args)
            .envs(pg.env())
            .env("POSTGRES_DB", "ro")
            .env("DBINIT_MIGRATIONS_DIR", dir.path())
            .env("DBINIT_TIMEOUT", "60s")
            .env("POSTGRES_USER", "reader")
            .env("POSTGRES_PASSWORD", "reader-pw");
        run(c)
    };
    for args in [
        &["plan", "--output", "json"][..],
        &["lint", "--output", "json"][..],
    ] {
        let out = reader(args);
        code(&out, 0);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
        let review = if args[0] == "plan" { &v["lint"] } else { &v };
        assert_eq!(review["facts"], "live", "{review}");
        let big = finding(review, "V3__big_v", "require-concurrent-index-creation");
        assert_eq!(big["verdict"], "block", "the reader sees the sizes: {big}");
    }
    assert_eq!(
        next_xid(&pg),
        xid,
        "plan or lint assigned a transaction id: it wrote"
    );
    assert_eq!(relations(), rels);
    assert_eq!(pg.history("ro"), "1");
    let log = pg.log();
    let sent: Vec<&str> = log.lines().filter(|l| l.starts_with("reader:")).collect();
    assert!(
        sent.iter().any(|l| l.contains("to_regclass")),
        "the log shows the review's reads:\n{log}"
    );
    for word in [
        "advisory", "CREATE", "INSERT", "UPDATE", "DELETE", "ALTER", "BEGIN",
    ] {
        assert!(
            !sent.iter().any(|l| l.contains(word)),
            "the reader sent {word}:\n{}",
            sent.join("\n")
        );
    }
}
