//! The fixtures (one unsafe file per rule and its safe twin, in `fixtures/`) and the finer
//! points: acknowledgements, squawk's ignore comments, deduplication, locks and targets.

use std::path::Path;

use super::*;

const PG15: PgVersion = PgVersion {
    major: 15,
    minor: 0,
};

fn lint_sql(sql: &str, in_transaction: bool) -> FileLint {
    lint(&Input {
        sql,
        in_transaction,
        pg_version: PG15,
    })
}

/// As dbinit runs it: in a transaction unless the first line says otherwise.
fn lint_file(sql: &str) -> FileLint {
    lint_sql(sql, !sql.starts_with("-- dbinit:no-transaction"))
}

fn rules_of(l: &FileLint) -> Vec<String> {
    l.findings
        .iter()
        .filter(|f| !f.allowed)
        .map(|f| f.rule.clone())
        .collect()
}

#[test]
fn every_fixture_finds_its_rule_and_its_safe_twin_finds_nothing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql") && !n.ends_with(".safe.sql"))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "{names:?}");
    for name in &names {
        let rule = name.trim_end_matches(".sql");
        let read =
            |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
        let unsafe_ = lint_file(&read(name));
        assert!(
            rules_of(&unsafe_).iter().any(|r| r == rule),
            "{name} should find {rule}: {:#?}",
            unsafe_.findings
        );
        let finding = unsafe_
            .findings
            .iter()
            .find(|f| f.rule == rule)
            .expect("found");
        assert!(
            finding.recipe.as_deref().is_some_and(|r| !r.is_empty()),
            "{rule} has a recipe"
        );
        let safe = lint_file(&read(&format!("{rule}.safe.sql")));
        assert!(
            rules_of(&safe).is_empty(),
            "{rule}.safe.sql should find nothing: {:#?}",
            safe.findings
        );
    }
    // Every rule of the list has its pair.
    for rule in [
        "require-concurrent-index-creation",
        "require-concurrent-index-deletion",
        "require-concurrent-reindex",
        "constraint-missing-not-valid",
        "adding-foreign-key-constraint",
        "disallowed-unique-constraint",
        "adding-not-nullable-field",
        "changing-column-type",
        "adding-field-with-default",
        "adding-serial-column",
        "adding-serial-primary-key-field",
        "ban-drop-column",
        "ban-drop-table",
        "renaming-column",
        "renaming-table",
        "vacuum-full",
        "cluster",
        "backfill-with-ddl",
        "concurrently-in-transaction",
    ] {
        assert!(
            names.contains(&format!("{rule}.sql")),
            "no fixture for {rule}"
        );
    }
}

#[test]
fn a_foreign_key_is_one_finding_with_both_tables() {
    let l = lint_sql(
        "ALTER TABLE app.deals ADD CONSTRAINT fk FOREIGN KEY (m) REFERENCES markets (id);",
        true,
    );
    assert_eq!(rules_of(&l), vec!["adding-foreign-key-constraint"]);
    let s = &l.statements[0];
    assert_eq!(s.lock, Some(Lock::ShareRowExclusive));
    assert_eq!(s.effect, Effect::Scan);
    let names: Vec<String> = s.targets.iter().map(|t| t.name().to_string()).collect();
    assert_eq!(names, vec!["app.deals", "markets"]);
    // An added UNIQUE is not told to use NOT VALID, which PostgreSQL refuses there.
    let l = lint_sql("ALTER TABLE users ADD CONSTRAINT k UNIQUE (email);", true);
    assert_eq!(rules_of(&l), vec!["disallowed-unique-constraint"]);
}

#[test]
fn allow_covers_a_statement_or_the_file() {
    let sql = "-- dbinit:allow=ban-drop-column\nALTER TABLE t DROP COLUMN a;\nALTER TABLE t DROP COLUMN b;\n";
    let l = lint_sql(sql, true);
    let drops: Vec<(usize, bool)> = l
        .findings
        .iter()
        .filter(|f| f.rule == "ban-drop-column")
        .map(|f| (f.line, f.allowed))
        .collect();
    assert_eq!(drops, vec![(2, true), (3, false)]);

    let file = "-- dbinit:allow=ban-drop-column, renaming-column\n\nALTER TABLE t DROP COLUMN a;\nALTER TABLE t RENAME COLUMN b TO c;\n";
    assert!(rules_of(&lint_sql(file, true)).is_empty());

    // Multi-line statements are covered whole, unlike squawk-ignore's next-line rule.
    let multi = "ALTER TABLE t ADD COLUMN x text;\n-- dbinit:allow=ban-drop-column\nALTER TABLE t\n  DROP COLUMN d;\n";
    assert!(rules_of(&lint_sql(multi, true)).is_empty());
}

#[test]
fn squawk_ignore_is_honoured_for_dbinits_own_rules_too() {
    let sql = "ALTER TABLE t ADD COLUMN c bigint;\n-- squawk-ignore backfill-with-ddl\nUPDATE t SET c = 1;\n";
    let l = lint_sql(sql, true);
    assert!(rules_of(&l).is_empty(), "{:#?}", l.findings);
    let file = "-- squawk-ignore-file\nALTER TABLE t ADD COLUMN s bigserial;\nDROP TABLE u;\n";
    assert!(rules_of(&lint_sql(file, true)).is_empty());
    // A typo is still squawk's unused-ignore; a dbinit rule name is not.
    let typo = "-- squawk-ignore ban-drop-colum\nALTER TABLE t DROP COLUMN g;\n";
    let r = rules_of(&lint_sql(typo, true));
    assert!(r.contains(&"unused-ignore".to_string()), "{r:?}");
}

#[test]
fn unknown_allow_names_are_reported() {
    let l = lint_sql("-- dbinit:allow=nope\nSELECT 1;\n", true);
    assert_eq!(rules_of(&l), vec!["unknown-rule"]);
    assert!(l.findings[0].message.contains("nope"));
}

#[test]
fn concurrently_in_a_transaction_is_one_finding() {
    let one = "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);";
    assert_eq!(
        rules_of(&lint_sql(one, true)),
        vec!["concurrently-in-transaction"]
    );
    assert!(rules_of(&lint_sql(one, false)).is_empty());
    let vacuum = "VACUUM t;";
    assert_eq!(
        rules_of(&lint_sql(vacuum, true)),
        vec!["concurrently-in-transaction"]
    );
}

#[test]
fn locks_effects_and_targets_per_statement() {
    let sql = "CREATE TABLE app.t (id bigint PRIMARY KEY);
CREATE INDEX i ON App.Users (email);
ALTER TABLE \"App\".\"Users\" ALTER COLUMN email TYPE text;
ALTER TABLE users ADD COLUMN id2 bigserial;
ALTER TABLE users ADD COLUMN at timestamptz DEFAULT clock_timestamp();
ALTER TABLE users ADD COLUMN note text;
DROP INDEX app.i, j;
VACUUM FULL app.users, orders;
UPDATE app.users SET flag = true;
ALTER TABLE t VALIDATE CONSTRAINT c;
SELECT 1;
";
    let l = lint_sql(sql, false);
    let got: Vec<(Option<Lock>, Effect, Vec<String>)> = l
        .statements
        .iter()
        .map(|s| {
            (
                s.lock,
                s.effect,
                s.targets.iter().map(|t| t.name().to_string()).collect(),
            )
        })
        .collect();
    use Effect as E;
    use Lock as L;
    let want: Vec<(Option<Lock>, Effect, Vec<&str>)> = vec![
        (Some(L::AccessExclusive), E::None, vec!["app.t"]),
        (Some(L::Share), E::IndexBuild, vec!["app.users"]),
        (Some(L::AccessExclusive), E::Rewrite, vec!["App.Users"]),
        (Some(L::AccessExclusive), E::Rewrite, vec!["users"]),
        (Some(L::AccessExclusive), E::Rewrite, vec!["users"]),
        (Some(L::AccessExclusive), E::None, vec!["users"]),
        (Some(L::AccessExclusive), E::None, vec!["app.i", "j"]),
        (
            Some(L::AccessExclusive),
            E::Rewrite,
            vec!["app.users", "orders"],
        ),
        (Some(L::RowExclusive), E::RowWrites, vec!["app.users"]),
        (Some(L::ShareUpdateExclusive), E::Scan, vec!["t"]),
        (None, E::None, vec![]),
    ];
    let want: Vec<(Option<Lock>, Effect, Vec<String>)> = want
        .into_iter()
        .map(|(l, e, t)| (l, e, t.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(got, want);
    assert!(matches!(l.statements[6].targets[0], Target::Index { .. }));
    assert_eq!(
        l.statements[0].creates.as_ref().map(ToString::to_string),
        Some("app.t".into())
    );
    assert_eq!(l.statements[1].line, 2);
    assert_eq!(
        l.statements[1].excerpt,
        "CREATE INDEX i ON App.Users (email);"
    );
}

#[test]
fn pg_version_forms() {
    assert_eq!(
        PgVersion::from_server_version_num(150004),
        PgVersion {
            major: 15,
            minor: 4
        }
    );
    assert_eq!(
        PgVersion::parse("16"),
        Some(PgVersion {
            major: 16,
            minor: 0
        })
    );
    assert_eq!(
        PgVersion::parse("16.2"),
        Some(PgVersion {
            major: 16,
            minor: 2
        })
    );
    assert_eq!(PgVersion::parse("16beta1"), None);
    assert_eq!(PgVersion::parse("0"), None);
    // squawk reads "11" below "11.0": dbinit always passes major.minor.
    let now = "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now();";
    let at = |major| {
        rules_of(&lint(&Input {
            sql: now,
            in_transaction: true,
            pg_version: PgVersion { major, minor: 0 },
        }))
    };
    assert!(at(11).is_empty(), "{:?}", at(11));
    assert_eq!(at(10), vec!["adding-field-with-default"]);
}

#[test]
fn vacuum_full_and_cluster_are_squawks_from_19_on() {
    let sql = "CLUSTER t USING i;";
    let at = |major| {
        rules_of(&lint(&Input {
            sql,
            in_transaction: true,
            pg_version: PgVersion { major, minor: 0 },
        }))
    };
    assert_eq!(at(15), vec!["cluster"]);
    assert_eq!(at(19), vec!["prefer-repack"]);
}

#[test]
fn what_cannot_be_parsed_is_a_finding_not_a_failure() {
    let l = lint_sql("ALTER TABLE users ADD COLUMN;\nSELECT 1;", true);
    let r = rules_of(&l);
    assert!(
        !r.is_empty() && r.iter().all(|r| r == "syntax-error"),
        "{r:?}"
    );
    let many = "SELEC 1;\n".repeat(30);
    let l = lint_sql(&many, true);
    let errors: Vec<&Finding> = l
        .findings
        .iter()
        .filter(|f| f.rule == "syntax-error")
        .collect();
    assert_eq!(errors.len(), 10);
    assert!(
        errors[9].message.contains("more syntax errors"),
        "{}",
        errors[9].message
    );
    let deep = format!("SELECT {}1{};", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(rules_of(&lint_sql(&deep, true)), vec!["not-linted"]);
    let big = "SELECT 1;\n".repeat(MAX_BYTES / 10 + 1);
    assert_eq!(rules_of(&lint_sql(&big, true)), vec!["not-linted"]);
}

#[test]
fn one_linter_per_file() {
    assert!(!rules_of(&lint_sql("DROP TABLE a;", true)).is_empty());
    assert!(rules_of(&lint_sql("SELECT 1;", true)).is_empty());
}

#[test]
fn rule_names_cover_both_sources() {
    let names = rule_names();
    for n in [
        "ban-drop-column",
        "vacuum-full",
        "backfill-with-ddl",
        "held-lock",
    ] {
        assert!(names.iter().any(|x| x == n), "{n}");
    }
    assert!(!names.iter().any(|x| x == "require-lock-timeout"));
    assert!(RULES.iter().all(|r| rules::is_known(r.name)));
}
