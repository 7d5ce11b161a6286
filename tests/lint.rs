//! `dbinit lint` without a database, as a CI gate runs it: the fixtures (one unsafe file per
//! rule and its safe twin, `crates/dbinit-lint/fixtures/`) through the real binary, its JSON
//! checked against the published schema by a JSON Schema validator (Python's `jsonschema`,
//! Debian's python3-jsonschema), the `--fail-on` exit codes, and PostgreSQL 15's own
//! regression SQL (the splitter tests' corpus): no panic, findings counted per rule, the
//! time printed (the figure is `make bench`'s: tests make no timed assertions).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dbinit_tests::{Finished, command, run};

/// The documented exit code of `lint --fail-on`.
const UNSAFE: i32 = 14;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn fixtures() -> PathBuf {
    repo().join("crates/dbinit-lint/fixtures")
}

fn schema() -> PathBuf {
    repo().join("crates/dbinit-core/lint.schema.json")
}

fn lint(args: &[&str], files: &[PathBuf]) -> Finished {
    let mut c = command("dbinit");
    c.arg("lint").args(args).args(files);
    run(c)
}

fn code(f: &Finished, want: i32) {
    assert_eq!(
        f.code,
        Some(want),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        f.stdout,
        f.stderr
    );
}

/// Validates `json` against the review schema with a real JSON Schema (2020-12) validator.
fn check_schema(json: &str) {
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.load(sys.stdin)))\n\
             for e in errors[:10]: print(e.json_path, e.message)\n\
             sys.exit(1 if errors else 0)",
        ])
        .arg(schema())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (make deps installs python3-jsonschema)");
    std::io::Write::write_all(py.stdin.as_mut().expect("stdin"), json.as_bytes()).expect("feed");
    let out = py.wait_with_output().expect("python3");
    assert!(
        out.status.success(),
        "the JSON does not match {}:\n{}{}",
        schema().display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_fixture_finds_its_rule_and_its_safe_twin_nothing_json_per_schema() {
    let files = fixture_files();
    let out = lint(&["--output", "json"], &files);
    code(&out, 0);
    check_schema(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["facts"], "static", "{v}");
    assert_eq!(
        v["pg_version"], "13.0",
        "the oldest supported, without a server"
    );
    let reviewed = v["files"].as_array().expect("files");
    assert_eq!(reviewed.len(), files.len());
    let mut pairs = 0;
    for f in reviewed {
        let name = f["name"].as_str().expect("name");
        let file = Path::new(name)
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name");
        let open: Vec<&str> = f["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|j| j["allowed"] == false)
            .map(|j| j["rule"].as_str().expect("rule"))
            .collect();
        if let Some(rule) = file.strip_suffix(".safe.sql") {
            assert!(open.is_empty(), "{file}: {open:?}");
            assert!(
                files.iter().any(|p| p.ends_with(format!("{rule}.sql"))),
                "{file} twins an unsafe file"
            );
            pairs += 1;
        } else {
            let rule = file.trim_end_matches(".sql");
            assert!(open.contains(&rule), "{file} should find {rule}: {open:?}");
        }
    }
    assert!(pairs >= 20, "{pairs} pairs");
}

#[test]
fn fail_on_is_the_gate() {
    let unsafe_file = fixtures().join("require-concurrent-index-creation.sql");
    let safe_file = fixtures().join("require-concurrent-index-creation.safe.sql");
    let blocked = lint(&["--fail-on", "block"], std::slice::from_ref(&unsafe_file));
    code(&blocked, UNSAFE);
    for want in [
        "BLOCK require-concurrent-index-creation (line 2)",
        "takes SHARE on deals: blocks writes, reads go on; builds an index",
        "safe way: `CREATE INDEX CONCURRENTLY IF NOT EXISTS`",
        "lint: 1 file(s), 1 block",
    ] {
        assert!(
            blocked.stdout.contains(want),
            "{want:?} in:\n{}",
            blocked.stdout
        );
    }
    assert!(
        blocked.stderr.contains("refusing to apply")
            && blocked.stderr.contains("DBINIT_LINT_FAIL_ON"),
        "{}",
        blocked.stderr
    );
    code(
        &lint(&["--fail-on", "block"], std::slice::from_ref(&safe_file)),
        0,
    );
    // The same gate from the environment; without one, lint reports and exits 0.
    let mut c = command("dbinit");
    c.args(["lint"])
        .arg(&unsafe_file)
        .env("DBINIT_LINT_FAIL_ON", "warn");
    code(&run(c), UNSAFE);
    code(&lint(&[], &[unsafe_file]), 0);
    // Advice warns: `--fail-on warn` stops at it, `block` does not.
    let advice = fixtures().join("syntax-error.sql");
    code(
        &lint(&["--fail-on", "warn"], std::slice::from_ref(&advice)),
        UNSAFE,
    );
    code(&lint(&["--fail-on", "block"], &[advice]), 0);
    // A bad gate is a configuration error naming the variable.
    let bad = lint(&["--fail-on", "sometimes"], &[safe_file]);
    code(&bad, 2);
    assert!(bad.stderr.contains("DBINIT_LINT_FAIL_ON"), "{}", bad.stderr);
}

#[test]
fn the_projects_own_migrations_pass_the_gate() {
    let mut c = command("dbinit");
    c.args(["lint", "--fail-on", "block", "--migrations-dir"])
        .arg(repo().join("migrations"));
    let out = run(c);
    code(&out, 0);
    assert!(
        out.stdout.contains("lint: 9 file(s), 0 block"),
        "{}",
        out.stdout
    );
}

/// Where the corpus is: `DBINIT_PG_REGRESS_SQL`, else the cache `make test-integration`
/// fills (scripts/pg-regress-sql.sh).
fn corpus_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DBINIT_PG_REGRESS_SQL") {
        return d.into();
    }
    let cache = std::env::var_os("DBINIT_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("dbinit")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/dbinit")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache/dbinit"));
    cache.join("pg15-regress-sql")
}

#[test]
fn postgresql_regression_sql_lints_without_a_panic() {
    let dir = corpus_dir();
    assert!(
        dir.join(".complete").exists(),
        "{} is missing: run scripts/pg-regress-sql.sh (make test-integration does)",
        dir.display()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(files.len() > 200, "{} files", files.len());
    // Some files are not UTF-8 (encoding tests): lint reads text, so they go through a copy
    // with the bad bytes replaced, as an editor would show them.
    let tmp = tempfile::tempdir().expect("tmp");
    let files: Vec<PathBuf> = files
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).expect("read");
            match String::from_utf8(bytes) {
                Ok(_) => p.clone(),
                Err(e) => {
                    let copy = tmp.path().join(p.file_name().expect("name"));
                    std::fs::write(&copy, String::from_utf8_lossy(e.as_bytes()).as_bytes())
                        .expect("write");
                    copy
                }
            }
        })
        .collect();
    let out = lint(&["--output", "json"], &files);
    code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let mut per_rule: BTreeMap<String, usize> = BTreeMap::new();
    for f in v["files"].as_array().expect("files") {
        for j in f["findings"].as_array().expect("findings") {
            *per_rule
                .entry(j["rule"].as_str().expect("rule").to_string())
                .or_default() += 1;
        }
    }
    let total: usize = per_rule.values().sum();
    println!(
        "pg15 regression SQL: {} files linted in {:.2} s by this (debug) build, {total} findings",
        files.len(),
        out.elapsed.as_secs_f64()
    );
    let mut by_count: Vec<_> = per_rule.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (rule, n) in by_count {
        println!("  {n:6} {rule}");
    }
    for rule in [
        "require-concurrent-index-creation",
        "ban-drop-table",
        "syntax-error",
    ] {
        assert!(per_rule.contains_key(rule), "{rule} in {per_rule:?}");
    }
}
