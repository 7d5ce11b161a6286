//! Verdicts from findings and facts, without a server (the facts are made here; the live
//! ones are read in tests/lint.rs).

use dbinit_lint::{Input, PgVersion};

use super::Review;
use super::facts::{FactsMap, HeldLock, TableFacts};
use super::report::Source;
use super::settings::{Level, LintSettings};
use super::verdict::{Linted, review};

fn linted(name: &str, sql: &str) -> Linted {
    let transaction = !sql.starts_with("-- dbinit:no-transaction");
    Linted {
        name: name.into(),
        transaction,
        compatible_from: None,
        lint: dbinit_lint::lint(&Input {
            sql,
            in_transaction: transaction,
            pg_version: PgVersion::OLDEST_SUPPORTED,
        }),
    }
}

fn table(name: &str, rows: Option<u64>, bytes: u64) -> TableFacts {
    TableFacts {
        name: name.into(),
        exists: true,
        rows,
        bytes: Some(bytes),
        locks: Vec::new(),
    }
}

fn run(files: &[(&str, &str)], facts: Option<&FactsMap>, source: Source) -> Review {
    review(
        files.iter().map(|(n, s)| linted(n, s)).collect(),
        facts,
        source,
        "15.0".into(),
        &LintSettings::default(),
    )
}

fn verdicts(r: &Review) -> Vec<(String, Level)> {
    r.files
        .iter()
        .flat_map(|f| &f.findings)
        .map(|j| (j.rule.clone(), j.verdict))
        .collect()
}

const INDEX: &str = "CREATE INDEX deals_market_idx ON deals (market_id);";

#[test]
fn the_same_create_index_flips_with_the_tables_size() {
    let facts = |rows| {
        let mut m = FactsMap::new();
        m.insert(
            "\"deals\"".into(),
            table("public.deals", Some(rows), rows * 50),
        );
        m
    };
    let rule = "require-concurrent-index-creation".to_string();
    let small = run(&[("V8", INDEX)], Some(&facts(100)), Source::Live);
    assert_eq!(verdicts(&small), vec![(rule.clone(), Level::Ok)]);
    let medium = run(&[("V8", INDEX)], Some(&facts(50_000)), Source::Live);
    assert_eq!(verdicts(&medium), vec![(rule.clone(), Level::Warn)]);
    let large = run(&[("V8", INDEX)], Some(&facts(2_000_000)), Source::Live);
    assert_eq!(verdicts(&large), vec![(rule.clone(), Level::Block)]);
    let j = &large.files[0].findings[0];
    assert!(j.reason.contains("DBINIT_LINT_BLOCK_ROWS"), "{}", j.reason);
    assert_eq!(j.tables[0].name, "public.deals");
    assert!(large.fails(Some(Level::Block)) && !small.fails(Some(Level::Warn)));
    // A wide table blocks by its size whatever its row estimate.
    let mut wide = FactsMap::new();
    wide.insert("\"deals\"".into(), table("public.deals", Some(10), 2 << 30));
    let r = run(&[("V8", INDEX)], Some(&wide), Source::Live);
    assert_eq!(verdicts(&r), vec![(rule.clone(), Level::Block)]);
    // Without a database nothing is known: assumed large.
    let r = run(&[("V8", INDEX)], None, Source::Static);
    assert_eq!(verdicts(&r), vec![(rule, Level::Block)]);
    assert!(r.files[0].findings[0].reason.contains("no database"));
}

#[test]
fn a_new_table_is_always_safe() {
    let files = [
        (
            "V8__deals",
            "CREATE TABLE deals (id bigint, market_id bigint);",
        ),
        ("V9__deals_idx", INDEX),
        ("V10__drop", "ALTER TABLE deals DROP COLUMN market_id;"),
    ];
    let r = run(&files, None, Source::Static);
    let v = verdicts(&r);
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v.iter().all(|(_, l)| *l == Level::Ok), "{v:?}");
    // Live: it does not exist yet.
    let mut m = FactsMap::new();
    m.insert(
        "\"deals\"".into(),
        TableFacts {
            name: "deals".into(),
            exists: false,
            rows: None,
            bytes: None,
            locks: Vec::new(),
        },
    );
    let r = run(&[("V9", INDEX)], Some(&m), Source::Live);
    assert_eq!(verdicts(&r)[0].1, Level::Ok);
    let r = run(&[("V9", INDEX)], None, Source::NewDatabase);
    assert_eq!(verdicts(&r)[0].1, Level::Ok);
}

#[test]
fn breaking_and_failing_findings_block_whatever_the_size() {
    let mut m = FactsMap::new();
    m.insert("\"users\"".into(), table("public.users", Some(3), 8192));
    let r = run(
        &[
            ("V8", "ALTER TABLE users DROP COLUMN legacy;"),
            (
                "V9",
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON users (a);",
            ),
        ],
        Some(&m),
        Source::Live,
    );
    let v = verdicts(&r);
    assert!(
        v.contains(&("ban-drop-column".into(), Level::Block)),
        "{v:?}"
    );
    assert!(
        v.contains(&("concurrently-in-transaction".into(), Level::Block)),
        "{v:?}"
    );
    // Acknowledged: reported, ok.
    let r = run(
        &[(
            "V8",
            "-- dbinit:allow=ban-drop-column\nALTER TABLE users DROP COLUMN legacy;",
        )],
        Some(&m),
        Source::Live,
    );
    assert_eq!(verdicts(&r), vec![("ban-drop-column".into(), Level::Ok)]);
    assert!(r.files[0].findings[0].allowed);
    // A declared contract step: older releases refuse to run against it.
    let mut l = linted("V8", "ALTER TABLE users DROP COLUMN legacy;");
    l.compatible_from = Some(7);
    let r = review(
        vec![l],
        Some(&m),
        Source::Live,
        "15.0".into(),
        &LintSettings::default(),
    );
    assert_eq!(verdicts(&r), vec![("ban-drop-column".into(), Level::Ok)]);
    assert!(r.files[0].findings[0].reason.contains("compatible-from=7"));
}

#[test]
fn a_held_conflicting_lock_is_named() {
    let mut t = table("public.deals", Some(10), 8192);
    t.locks.push(HeldLock {
        pid: 4242,
        mode: "ACCESS SHARE".into(),
        application: Some("report-job".into()),
        user: Some("app".into()),
        state: Some("idle in transaction".into()),
        transaction_seconds: Some(30),
        lock: Some(dbinit_lint::Lock::AccessShare),
    });
    let mut m = FactsMap::new();
    m.insert("\"deals\"".into(), t);
    // ADD COLUMN needs ACCESS EXCLUSIVE: no rule fires, the held lock does.
    let r = run(
        &[("V8", "ALTER TABLE deals ADD COLUMN note text;")],
        Some(&m),
        Source::Live,
    );
    assert_eq!(verdicts(&r), vec![("held-lock".into(), Level::Warn)]);
    let j = &r.files[0].findings[0];
    assert!(
        j.message.contains("pid 4242") && j.message.contains("report-job"),
        "{}",
        j.message
    );
    // CREATE INDEX's SHARE does not conflict with ACCESS SHARE: only its own finding.
    let r = run(&[("V8", INDEX)], Some(&m), Source::Live);
    assert_eq!(
        verdicts(&r),
        vec![("require-concurrent-index-creation".into(), Level::Ok)]
    );
    assert!(r.text().contains("held now: pid 4242"), "{}", r.text());
}

#[test]
fn text_and_counts() {
    let r = run(&[("V8", INDEX), ("V9", "SELECT 1;")], None, Source::Static);
    assert_eq!(r.counts.block, 1);
    assert_eq!(r.verdict, Level::Block);
    let text = r.text();
    for want in [
        "V8 (transaction, 1 statement(s))",
        "BLOCK require-concurrent-index-creation (line 1)",
        "takes SHARE on deals: blocks writes, reads go on",
        "safe way: `CREATE INDEX CONCURRENTLY",
        "lint: 2 file(s), 1 block, 0 warn, 0 ok",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    assert!(
        !text.contains("V9 ("),
        "files without findings are not listed:\n{text}"
    );
}
