//! docs/reviewing.md's `dbinit lint` blocks, run as written: the CI gate on a pull request's
//! new migrations (a git checkout whose `origin/main` lacks them), failing on an unsafe index
//! and passing on its safe twin, and the `-- dbinit:allow=` example acknowledged.

use std::path::Path;
use std::process::Command;

use dbinit_tests::docs::{DocShell, Docs};
use dbinit_tests::node::repo_root;
use dbinit_tests::{command, run};
use serde_json::Value;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=docs", "-c", "user.email=docs@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A checkout whose `origin/main` holds the repository's migrations, with `file` (name, SQL)
/// added on the branch, as a pull request has it.
fn pull_request(file: (&str, &str)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let mig = dir.path().join("migrations");
    std::fs::create_dir(&mig).expect("mkdir");
    for e in std::fs::read_dir(repo_root().join("migrations"))
        .expect("migrations/")
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "sql") {
            std::fs::copy(e.path(), mig.join(e.file_name())).expect("copy");
        }
    }
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "main"]);
    git(
        dir.path(),
        &["update-ref", "refs/remotes/origin/main", "HEAD"],
    );
    std::fs::write(mig.join(file.0), file.1).expect("write");
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "pull request"]);
    dir
}

#[test]
fn the_lint_ci_gate_fails_an_unsafe_index_and_passes_its_safe_twin() {
    let docs = Docs::load();
    let gate = docs.block("lint-ci-gate");

    let unsafe_pr = pull_request((
        "V8__deals_market_idx.sql",
        "CREATE INDEX deals_market_idx ON deals (market_id);\n",
    ));
    let err = DocShell::new()
        .cwd(unsafe_pr.path())
        .run_text(&gate)
        .expect_err("a blocking CREATE INDEX fails the gate");
    assert!(
        err.contains("require-concurrent-index-creation line 1"),
        "the gate names the rule and the line: {err}"
    );

    let safe_pr = pull_request((
        "V8__deals_market_idx.sql",
        "-- dbinit:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS deals_market_idx ON deals (market_id);\n",
    ));
    DocShell::new()
        .cwd(safe_pr.path())
        .run_block(&docs, "lint-ci-gate");
    let review: Value = serde_json::from_str(
        &std::fs::read_to_string(safe_pr.path().join("lint.json")).expect("lint.json"),
    )
    .expect("lint.json is JSON");
    let names: Vec<&str> = review["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        names.iter().any(|n| n.contains("V8__deals_market_idx")),
        "the gate reviewed the pull request's file: {review}"
    );
}

#[test]
fn an_acknowledged_drop_column_is_reported_as_ok() {
    let docs = Docs::load();
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("V8__drop_legacy_flag.sql");
    std::fs::write(&file, docs.block("lint-allow")).expect("write");
    let mut c = command("dbinit");
    c.args(["lint", "--offline", "--output", "json"]).arg(&file);
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let review: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let finding = review["files"][0]["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["rule"] == "ban-drop-column")
        .unwrap_or_else(|| panic!("ban-drop-column is still reported: {review}"))
        .clone();
    assert_eq!(finding["verdict"], "ok", "{finding}");
    assert_eq!(finding["allowed"], true, "{finding}");
}
