//! docs/adopting.md's walkthrough, steps 1, 2 and 4 as written: a database Alembic built (the
//! Agentic Deals tables and an `alembic_version` row), looked at, adopted by hand, and the
//! audit query. (tests/adopt.rs runs the whole story, step 3 and the other tools included.)

use dbinit_tests::Pg;
use dbinit_tests::docs::{DocShell, Docs};
use dbinit_tests::node::repo_root;

/// `agentic_deals` as `alembic upgrade head` left it: every table of the repository's
/// migrations, and Alembic's history row.
fn built_by_alembic(pg: &Pg) {
    pg.psql("postgres", "CREATE DATABASE agentic_deals");
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("migrations"))
        .expect("migrations/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort_by_key(|p| {
        p.file_name().and_then(|n| n.to_str()).and_then(|n| {
            n.trim_start_matches('V')
                .split("__")
                .next()?
                .parse::<u32>()
                .ok()
        })
    });
    for f in files {
        pg.psql("agentic_deals", &std::fs::read_to_string(f).expect("read"));
    }
    let fixture = repo_root().join("tests/fixtures/adopt/alembic.sql");
    pg.psql(
        "agentic_deals",
        &std::fs::read_to_string(fixture).expect("alembic fixture"),
    );
}

#[test]
fn the_alembic_walkthrough_runs_as_written() {
    let docs = Docs::load();
    let pg = Pg::start_new();
    built_by_alembic(&pg);
    let mut sh = DocShell::new();
    sh.set_all(pg.env())
        .set("DBINIT_TIMEOUT", "60s")
        .set("PGHOST", "127.0.0.1")
        .set("PGPORT", pg.port.to_string())
        .set("PGUSER", "postgres")
        .set("PGPASSWORD", dbinit_tests::PG_PASSWORD);

    // 1. Look: psql prints the head revision; plan refuses with 9 and says why.
    let look = sh.run_block(&docs, "adopt-look");
    assert!(
        look.stdout.contains("b8f15d3a0e96") && look.stdout.contains("alembic_version"),
        "{}",
        look.stdout
    );
    assert_eq!(
        pg.psql(
            "agentic_deals",
            "SELECT to_regclass('refinery_schema_history') IS NULL"
        ),
        "t",
        "looking wrote nothing"
    );

    // 2. Adopt by hand: what the page's comment says it prints.
    let adopt = sh.run_block(&docs, "adopt-by-hand");
    let want = docs
        .block("adopt-by-hand")
        .lines()
        .find_map(|l| l.trim().strip_prefix("# ").map(str::to_string))
        .expect("the block shows what adopt prints");
    assert!(
        format!("{}{}", adopt.stdout, adopt.stderr).contains(&want),
        "adopt prints {want:?}:\n{}{}",
        adopt.stdout,
        adopt.stderr
    );
    assert_eq!(pg.history("agentic_deals"), "1,2,3,4,5,6,7");

    // 4. The audit query: one adopt row per version.
    let rows = pg.psql("agentic_deals", &docs.block("adopt-audit"));
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 7, "{rows}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("|adopt|alembic_version") && l.contains("b8f15d3a0e96|")),
        "{rows}"
    );
}
