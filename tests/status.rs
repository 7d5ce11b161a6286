//! `dbinit status --exit-code` as a CI gate, against a real PostgreSQL: one code per finding
//! (pending, diverged, ahead, INVALID index), and `--output json` checked against the JSON
//! Schema committed in the repository.

use std::path::Path;
use std::process::Command;

use dbinit_tests::{Finished, Pg, command, run};
use serde_json::Value;

fn dbinit(pg: &Pg, db: &str, dir: &Path, args: &[&str]) -> Command {
    let mut c = command("dbinit");
    c.args(args)
        .envs(pg.env())
        .env("POSTGRES_DB", db)
        .env("DBINIT_MIGRATIONS_DIR", dir)
        .env("DBINIT_TIMEOUT", "30s");
    c
}

fn write(dir: &Path, name: &str, sql: &str) {
    std::fs::write(dir.join(name), sql).expect("write migration");
}

fn status(pg: &Pg, db: &str, dir: &Path) -> (Finished, Value) {
    let out = run(dbinit(
        pg,
        db,
        dir,
        &["status", "--exit-code", "--output", "json"],
    ));
    let json: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status printed no JSON ({e}): {}", out.all_output()));
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../crates/dbinit-core/status.schema.json"
        ))
        .expect("status.schema.json"),
    )
    .expect("the schema is JSON");
    let errors = validate(&schema, &schema, &json, "$");
    assert!(errors.is_empty(), "{errors:#?}\n{json:#}");
    (out, json)
}

/// A small JSON Schema check covering what status.schema.json uses: `type` (one or a list),
/// `enum`, `properties`, `required`, `additionalProperties: false`, `items` and local `$ref`.
fn validate(root: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix("#/")
            .expect("local $ref")
            .split('/')
            .fold(root, |s, k| &s[k]);
        assert!(!target.is_null(), "dangling $ref {r}");
        return validate(root, target, v, at);
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type in schema at {at}"),
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            other => panic!("type {other} not handled"),
        });
        if !ok {
            errors.push(format!("{at}: {v} is not of type {types:?}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errors.push(format!("{at}: {v} is not one of {e:?}"));
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().expect("required names");
            if !obj.contains_key(r) {
                errors.push(format!("{at}: required {r} is missing"));
            }
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => errors.extend(validate(root, s, val, &format!("{at}.{k}"))),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{at}: {k} is not in the schema"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            errors.extend(validate(root, items, item, &format!("{at}[{i}]")));
        }
    }
    errors
}

#[test]
fn the_validator_rejects_what_the_schema_forbids() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../crates/dbinit-core/status.schema.json"
        ))
        .expect("schema"),
    )
    .expect("json");
    let good = serde_json::json!({
        "database": "d", "exists": true, "applied_version": 1, "target_version": 1,
        "migration_set_checksum": "x", "verdict": "up-to-date", "invalid_indexes": [],
        "migrations": [{"name": "V1__a", "state": "applied", "applied_on": "t"}], "seeds": []
    });
    assert!(validate(&schema, &schema, &good, "$").is_empty());
    for (key, bad) in [
        ("verdict", serde_json::json!("fine")),
        ("exists", serde_json::json!("yes")),
        (
            "migrations",
            serde_json::json!([{"name": "V1__a", "state": "done", "applied_on": null}]),
        ),
        ("surprise", serde_json::json!(1)),
    ] {
        let mut v = good.clone();
        v[key] = bad;
        assert!(!validate(&schema, &schema, &v, "$").is_empty(), "{key}");
    }
    let mut v = good.clone();
    v.as_object_mut().expect("object").remove("seeds");
    assert!(!validate(&schema, &schema, &v, "$").is_empty());
}

#[test]
fn exit_codes_for_pending_up_to_date_diverged_and_ahead() {
    let pg = Pg::start_new();
    let db = "gate";
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    write(d, "V1__one.sql", "CREATE TABLE one (id int);\n");
    write(d, "V2__two.sql", "CREATE TABLE two (id int);\n");

    // Nothing yet: the database does not even exist.
    let (out, json) = status(&pg, db, d);
    assert_eq!(out.code, Some(10), "{}", out.all_output());
    assert!(
        out.stderr
            .contains("pending: V1__one (2 migration(s), 0 seed(s))"),
        "{}",
        out.stderr
    );
    assert_eq!(json["verdict"], "pending");
    assert_eq!(json["exists"], false);

    assert_eq!(run(dbinit(&pg, db, d, &["run"])).code, Some(0));
    let (out, json) = status(&pg, db, d);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert_eq!(json["verdict"], "up-to-date");
    // Without --exit-code, status keeps exiting 0 whatever it finds.
    write(d, "V3__three.sql", "CREATE TABLE three (id int);\n");
    let plain = run(dbinit(&pg, db, d, &["status"]));
    assert_eq!(plain.code, Some(0), "{}", plain.all_output());
    let (out, _) = status(&pg, db, d);
    assert_eq!(out.code, Some(10), "{}", out.all_output());
    assert!(out.stderr.contains("pending: V3__three"), "{}", out.stderr);
    assert_eq!(run(dbinit(&pg, db, d, &["run"])).code, Some(0));

    // The binary of the previous release: its set ends at V2, the database is at V3.
    std::fs::remove_file(d.join("V3__three.sql")).expect("rm");
    let (out, json) = status(&pg, db, d);
    assert_eq!(out.code, Some(11), "{}", out.all_output());
    assert_eq!(json["verdict"], "ahead");
    assert!(out.stderr.contains("V3__three"), "{}", out.stderr);
    // `helm test` after a rollback: ahead is tolerated with --allow-ahead, still said so.
    let allowed = run(dbinit(
        &pg,
        db,
        d,
        &["status", "--exit-code", "--allow-ahead"],
    ));
    assert_eq!(allowed.code, Some(0), "{}", allowed.all_output());
    assert!(
        allowed.all_output().contains("ahead"),
        "{}",
        allowed.all_output()
    );
    write(d, "V3__three.sql", "CREATE TABLE three (id int);\n");

    // An applied migration edited: drift.
    write(d, "V2__two.sql", "CREATE TABLE two (id bigint);\n");
    let (out, json) = status(&pg, db, d);
    assert_eq!(out.code, Some(6), "{}", out.all_output());
    assert_eq!(json["verdict"], "diverged");
    assert_eq!(json["migrations"][1]["state"], "edited");
    assert!(out.stderr.contains("V2__two"), "{}", out.stderr);
    write(d, "V2__two.sql", "CREATE TABLE two (id int);\n");

    // An applied migration deleted: drift too.
    std::fs::remove_file(d.join("V1__one.sql")).expect("rm");
    let (out, json) = status(&pg, db, d);
    assert_eq!(out.code, Some(6), "{}", out.all_output());
    assert_eq!(json["migrations"][0]["state"], "missing");
}

#[test]
fn an_invalid_index_left_by_a_no_transaction_file_has_its_own_code() {
    let pg = Pg::start_new();
    let db = "invalidgate";
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    // A unique index over duplicate values: CREATE INDEX CONCURRENTLY fails and leaves the
    // index INVALID, exactly as an interrupted build does.
    write(
        d,
        "V1__items.sql",
        "CREATE TABLE items (a int);\nINSERT INTO items VALUES (1), (1);\n",
    );
    write(
        d,
        "V2__items_key.sql",
        "-- dbinit:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS items_a_key ON items (a);\n",
    );
    assert_eq!(run(dbinit(&pg, db, d, &["run"])).code, Some(5));
    let (out, json) = status(&pg, db, d);
    assert_eq!(out.code, Some(12), "{}", out.all_output());
    assert_eq!(json["verdict"], "invalid-index");
    assert_eq!(json["invalid_indexes"][0]["index"], "items_a_key");
    assert_eq!(json["invalid_indexes"][0]["migration"], "V2__items_key");
    assert!(
        out.stderr
            .contains("DROP INDEX CONCURRENTLY IF EXISTS \"items_a_key\""),
        "{}",
        out.stderr
    );
}

#[test]
fn crlf_checkout_is_reported_as_line_endings_with_the_fix() {
    let pg = Pg::start_new();
    let db = "crlf";
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let v1 = "CREATE TABLE one (id int);\nCREATE TABLE two (id int);\n";
    let seed = "INSERT INTO one VALUES (1);\n";
    write(d, "V1__one.sql", v1);
    std::fs::create_dir(d.join("seeds")).expect("mkdir");
    std::fs::write(d.join("seeds/001_one.sql"), seed).expect("write seed");
    assert_eq!(run(dbinit(&pg, db, d, &["run"])).code, Some(0));

    // What git core.autocrlf does on Windows.
    write(d, "V1__one.sql", &v1.replace('\n', "\r\n"));
    let out = run(dbinit(&pg, db, d, &["run"]));
    assert_eq!(out.code, Some(6), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("differs from the applied one only in its line endings")
            && out.stderr.contains("the file has CRLF")
            && out.stderr.contains("eol=lf"),
        "{}",
        out.stderr
    );
    let (out, json) = status(&pg, db, d);
    assert_eq!(out.code, Some(6), "{}", out.all_output());
    assert_eq!(json["migrations"][0]["state"], "edited");
    assert_eq!(json["migrations"][0]["cause"], "line_endings");

    // A real edit stays an ordinary edit.
    write(d, "V1__one.sql", "CREATE TABLE one (id bigint);\n");
    let out = run(dbinit(&pg, db, d, &["run"]));
    assert_eq!(out.code, Some(6), "{}", out.stderr);
    assert!(out.stderr.contains("was edited"), "{}", out.stderr);
    write(d, "V1__one.sql", v1);

    // A seed whose final newline was dropped would run again (seeds are keyed by content):
    // a divergence instead, and the seed is not applied twice.
    std::fs::write(d.join("seeds/001_one.sql"), seed.trim_end()).expect("write seed");
    let out = run(dbinit(&pg, db, d, &["run"]));
    assert_eq!(out.code, Some(6), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("seed 001_one.sql differs from the applied one only in a newline"),
        "{}",
        out.stderr
    );
    assert_eq!(pg.psql(db, "SELECT count(*) FROM one"), "1");
    let (_, json) = status(&pg, db, d);
    assert_eq!(json["seeds"][0]["cause"], "trailing_newline");

    std::fs::write(d.join("seeds/001_one.sql"), seed).expect("write seed");
    assert_eq!(run(dbinit(&pg, db, d, &["run"])).code, Some(0));
}

/// Tool mode: `status --output json` carries the tool's state (schema-checked) and
/// `--exit-code` says the tool's verdict: pending 10, then up to date 0, ahead 11.
#[test]
fn tool_mode_status_reports_the_tool_and_matches_the_schema() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    let m = dir.path().join("db/migrations");
    std::fs::create_dir_all(&m).expect("mkdir");
    std::fs::write(
        m.join("20260101000001_items.sql"),
        "-- migrate:up\nCREATE TABLE items (id int);\n-- migrate:down\n",
    )
    .expect("write");
    let dbmate = dbinit_tests::tools::dbmate();
    let bin = dbmate.parent().expect("bin");
    let cmd = |sub: &[&str]| {
        let mut c = dbinit(&pg, "tool_db", dir.path(), sub);
        c.env_remove("DBINIT_MIGRATIONS_DIR")
            .env("PATH", dbinit_tests::tools::path_with(&[bin]))
            .current_dir(dir.path())
            .args(["--", "dbmate", "--no-dump-schema", "up"]);
        c
    };
    let checked = |out: &Finished| -> Value {
        let json: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("no JSON ({e}): {}", out.all_output()));
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../crates/dbinit-core/status.schema.json"
            ))
            .expect("schema"),
        )
        .expect("json");
        let errors = validate(&schema, &schema, &json, "$");
        assert!(errors.is_empty(), "{errors:#?}\n{json:#}");
        json
    };
    let status = ["status", "--exit-code", "--output", "json"];
    let out = run(cmd(&status));
    assert_eq!(out.code, Some(10), "{}", out.all_output());
    let v = checked(&out);
    assert_eq!(v["tool"]["verdict"], "pending");
    assert_eq!(v["tool"]["pending"][0], "20260101000001");
    assert_eq!(v["command"], "dbmate --no-dump-schema up");
    let out = run(cmd(&["run"]));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    let v = checked(&run(cmd(&status)));
    assert_eq!(v["tool"]["verdict"], "up-to-date");
    assert_eq!(v["tool"]["database_head"][0], "20260101000001");
    // A newer release's row: ahead, 11.
    pg.psql(
        "tool_db",
        "INSERT INTO schema_migrations VALUES ('20991231000000')",
    );
    let out = run(cmd(&status));
    assert_eq!(out.code, Some(11), "{}", out.all_output());
    assert_eq!(checked(&out)["tool"]["ahead"][0], "20991231000000");
}
