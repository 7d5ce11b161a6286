//! README's first command, typed as written: `make demo` brings up a throwaway PostgreSQL and
//! Redis, runs `dbinit run` twice (work, then a no-op) and `dbinit status`, and cleans up.
//! (`make test`, the other one, is what CI runs.)

use std::process::Command;

use dbinit_tests::node::{Readme, repo_root};

#[test]
fn readme_make_demo_runs_as_written() {
    let block = Readme::load().block("two-commands");
    let line = block
        .lines()
        .find(|l| l.trim_start().starts_with("make demo"))
        .expect("README's two commands include `make demo`");
    // One stream, in order: dbinit logs on stderr, the demo's own lines on stdout.
    let mut bash = Command::new("bash");
    bash.args(["-euo", "pipefail", "-c", &format!("exec 2>&1\n{line}")])
        .current_dir(repo_root())
        .env("CARGO_TERM_COLOR", "never");
    // A user's shell has none of the variables `cargo test` gives a test. They matter: ring's
    // build script tracks CARGO_MANIFEST_DIR, so the demo's release build made with it here
    // would be rebuilt from scratch by `make image`'s, made without it.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_") && !matches!(&*name, "CARGO_HOME" | "CARGO_TARGET_DIR") {
            bash.env_remove(&*name);
        }
    }
    let out = bash.output().expect("run bash");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "`{line}` failed: {text}");
    let termination = text
        .lines()
        .find(|l| l.starts_with("== termination message: "))
        .unwrap_or_else(|| panic!("no termination message in: {text}"));
    assert!(
        termination.contains("ok: database \"agentic_deals\" at version 7")
            && termination.contains("applied 7 migration(s)"),
        "first run: {termination}"
    );
    let second = text
        .split("== second run")
        .nth(1)
        .and_then(|rest| rest.split("\n== ").next())
        .unwrap_or_else(|| panic!("no second run in: {text}"));
    assert!(
        second.contains("is up to date at version 7; nothing to apply")
            && !second.contains("applied migration"),
        "the second run should be a no-op: {second}"
    );
    assert!(
        text.contains("refinery_schema_history") && text.contains("deals"),
        "\\dt lists the tables: {text}"
    );
}
