//! The pages about migrations, run: the no-transaction and lock-timeout files apply as the
//! pages write them, `dbinit plan` prints what reviewing.md shows, and the CI gate passes on an
//! up-to-date database and fails, naming the verdict, on one with a pending migration.

use std::path::Path;

use dbinit_tests::docs::{DocShell, Docs};
use dbinit_tests::node::repo_root;
use dbinit_tests::{Pg, fixtures};

/// The repository's migrations and seeds, copied into a directory of their own.
fn builtin_set() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let src = repo_root().join("migrations");
    std::fs::create_dir(dir.path().join("seeds")).expect("mkdir");
    for sub in ["", "seeds"] {
        for e in std::fs::read_dir(src.join(sub))
            .expect("migrations/")
            .flatten()
        {
            if e.path().extension().is_some_and(|x| x == "sql") {
                std::fs::copy(e.path(), dir.path().join(sub).join(e.file_name())).expect("copy");
            }
        }
    }
    dir
}

/// A reader's shell configured for `pg` and the migrations in `dir`.
fn shell(pg: &Pg, dir: &Path) -> DocShell {
    let mut sh = DocShell::new();
    sh.set_all(pg.env())
        .set("DBINIT_MIGRATIONS_DIR", dir.display().to_string())
        .set("DBINIT_TIMEOUT", "60s");
    sh
}

fn run_ok(pg: &Pg, dir: &Path) {
    let out = dbinit_tests::run(fixtures::dbinit_run(pg.env(), "agentic_deals", dir));
    assert_eq!(out.code, Some(0), "dbinit run: {}", out.stderr);
}

/// `line` with the version after "(PostgreSQL " written as `N`.
fn any_version(line: &str) -> String {
    match line.split_once("(PostgreSQL ") {
        Some((head, rest)) => {
            let tail = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
            format!("{head}(PostgreSQL N{tail}")
        }
        None => line.to_string(),
    }
}

/// The transcript block `name` (`$ command`, then its output) as (command, output lines).
fn transcript(docs: &Docs, name: &str) -> (String, Vec<String>) {
    let block = docs.block(name);
    let mut lines = block.lines();
    let command = lines
        .next()
        .and_then(|l| l.strip_prefix("$ "))
        .unwrap_or_else(|| panic!("block {name} starts with `$ command`"))
        .to_string();
    (command, lines.map(|l| l.trim_end().to_string()).collect())
}

#[test]
fn migration_examples_apply_and_plan_prints_what_the_page_shows() {
    let docs = Docs::load();
    let pg = Pg::start_new();
    let dir = builtin_set();
    run_ok(&pg, dir.path());

    // reviewing.md: V8 and migrations.md's no-transaction file as V9, then `dbinit plan`.
    std::fs::write(
        dir.path().join("V8__deal_alert_threshold.sql"),
        "ALTER TABLE tracked_deals ADD COLUMN alert_drop_pct numeric(5,2);\n",
    )
    .expect("write V8");
    std::fs::write(
        dir.path().join("V9__deals_market_status_idx.sql"),
        docs.block("no-transaction-file"),
    )
    .expect("write V9");
    let (command, want) = transcript(&docs, "plan-output");
    let ran = shell(&pg, dir.path())
        .run_text(&command)
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    // The server's version is the reader's own (the page shows Debian's 15 at the time).
    let got: Vec<String> = ran
        .stdout
        .lines()
        .map(|l| any_version(l.trim_end()))
        .collect();
    let want: Vec<String> = want.iter().map(|l| any_version(l)).collect();
    assert_eq!(
        got, want,
        "docs/reviewing.md shows what `{command}` prints (stdout), line for line"
    );
    assert_eq!(
        pg.history("agentic_deals"),
        "1,2,3,4,5,6,7",
        "plan wrote nothing"
    );

    run_ok(&pg, dir.path());
    assert_eq!(pg.history("agentic_deals"), "1,2,3,4,5,6,7,8,9");
    assert_eq!(
        pg.psql(
            "agentic_deals",
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'deals_market_status_idx'::regclass"
        ),
        "t",
        "the no-transaction file built its index"
    );

    // live-database.md's header: a file with its own lock timeout applies.
    std::fs::write(
        dir.path().join("V10__deals_score.sql"),
        docs.block("lock-timeout-header"),
    )
    .expect("write V10");
    run_ok(&pg, dir.path());
    assert_eq!(
        pg.psql(
            "agentic_deals",
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'deals' AND column_name = 'score'"
        ),
        "1"
    );
}

#[test]
fn the_ci_gate_passes_when_up_to_date_and_names_the_verdict_when_not() {
    let docs = Docs::load();
    let pg = Pg::start_new();
    let dir = builtin_set();
    run_ok(&pg, dir.path());
    let work = tempfile::tempdir().expect("tmp");
    let mut sh = shell(&pg, dir.path());
    sh.set("POSTGRES_DB", "agentic_deals").cwd(work.path());
    sh.run_block(&docs, "ci-gate");
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(work.path().join("status.json")).expect("status.json"),
    )
    .expect("status.json is JSON");
    assert_eq!(status["verdict"], "up-to-date");

    // A pending migration: the gate's own `exit $code` ends the block with 10.
    std::fs::write(dir.path().join("V8__pending.sql"), "SELECT 1;\n").expect("write");
    let err = sh
        .run_text(&docs.block("ci-gate"))
        .expect_err("a pending migration fails the gate");
    assert!(
        err.contains("schema gate failed with exit 10") && err.contains("pending"),
        "{err}"
    );
}

/// The message the page quotes between backticks, starting with `start` (line breaks as
/// spaces).
fn quoted(page: &str, start: &str) -> String {
    let from = page
        .find(&format!("`{start}"))
        .unwrap_or_else(|| panic!("the page quotes `{start}...`"))
        + 1;
    let len = page[from..].find('`').expect("closing backtick");
    page[from..from + len]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_compatibility_floor_refuses_an_older_release_with_the_pages_words() {
    let docs = Docs::load();
    let pg = Pg::start_new();
    let newer = builtin_set();
    let mut files = vec![(
        "V8__add_legacy_price.sql".to_string(),
        "ALTER TABLE deals ADD COLUMN legacy_price numeric(12,2);\n".to_string(),
    )];
    for v in 9..=13 {
        files.push((format!("V{v}__step.sql"), "SELECT 1;\n".to_string()));
    }
    files.push((
        "V14__drop_legacy_price.sql".to_string(),
        docs.block("compatible-from"),
    ));
    for (name, sql) in &files {
        std::fs::write(newer.path().join(name), sql).expect("write");
    }
    run_ok(&pg, newer.path());
    assert_eq!(
        pg.history("agentic_deals"),
        "1,2,3,4,5,6,7,8,9,10,11,12,13,14"
    );

    // The release before the contract step: its set ends at V11.
    let older = builtin_set();
    for (name, sql) in files.iter().take(4) {
        std::fs::write(older.path().join(name), sql).expect("write");
    }
    let out = dbinit_tests::run(fixtures::dbinit_run(
        pg.env(),
        "agentic_deals",
        older.path(),
    ));
    let want = quoted(&docs.page("docs/migrations.md").text, "database requires");
    assert_eq!(out.code, Some(13), "{}", out.stderr);
    assert!(
        out.all_output().contains(&want),
        "the refusal says what docs/migrations.md quotes, {want:?}:\n{}",
        out.stderr
    );
}
