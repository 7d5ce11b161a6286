//! Unit tests of [`super::plan`]: the one comparison of a set with a database.

use super::*;
use crate::migrate::set::MigrationSet;

fn plan_checked(set: &MigrationSet, db: &DbState) -> Result<Plan, Divergence> {
    plan(set, db).check()
}

fn set(files: &[(&str, &str)], seeds: &[(&str, &str)]) -> MigrationSet {
    let dir = tempfile::tempdir().expect("tmp");
    for (n, s) in files {
        std::fs::write(dir.path().join(n), s).expect("write");
    }
    std::fs::create_dir(dir.path().join("seeds")).expect("mkdir");
    for (n, s) in seeds {
        std::fs::write(dir.path().join("seeds").join(n), s).expect("write");
    }
    MigrationSet::from_dir(dir.path(), None, None).expect("valid set")
}

fn applied(set: &MigrationSet, upto: usize) -> Vec<AppliedMigration> {
    set.migrations[..upto]
        .iter()
        .map(|m| AppliedMigration {
            version: m.version(),
            name: m.name().to_string(),
            applied_on: String::new(),
            checksum: m.checksum(),
        })
        .collect()
}

#[test]
fn fresh_database_needs_everything() {
    let s = set(
        &[("V1__a.sql", "a"), ("V2__b.sql", "b")],
        &[("001.sql", "s")],
    );
    let p = plan_checked(&s, &DbState::default()).expect("plan");
    assert_eq!(p.migrations, vec![0, 1]);
    assert_eq!(p.seeds, vec![0]);
}

#[test]
fn up_to_date_database_needs_nothing() {
    let s = set(
        &[("V1__a.sql", "a"), ("V2__b.sql", "b")],
        &[("001.sql", "s")],
    );
    let db = DbState {
        initialized: true,
        migrations: applied(&s, 2),
        seeds: vec![("001.sql".into(), s.seeds[0].checksum.clone())],
    };
    assert!(plan_checked(&s, &db).expect("plan").is_empty());
}

#[test]
fn changed_seed_runs_again() {
    let s = set(&[("V1__a.sql", "a")], &[("001.sql", "new")]);
    let db = DbState {
        initialized: true,
        migrations: applied(&s, 1),
        seeds: vec![("001.sql".into(), "old-checksum".into())],
    };
    assert_eq!(plan_checked(&s, &db).expect("plan").seeds, vec![0]);
}

#[test]
fn edited_missing_renamed_and_out_of_order_diverge() {
    let s = set(&[("V1__a.sql", "a"), ("V2__b.sql", "b")], &[]);
    let mut db = DbState {
        initialized: true,
        migrations: applied(&s, 2),
        seeds: vec![],
    };
    db.migrations[1].checksum ^= 1;
    assert!(matches!(
        plan_checked(&s, &db),
        Err(Divergence::Edited { version: 2, .. })
    ));

    let mut db2 = db.clone();
    db2.migrations.insert(
        1,
        AppliedMigration {
            version: 1,
            name: "a".into(),
            applied_on: String::new(),
            checksum: 0,
        },
    );
    assert!(plan_checked(&s, &db2).is_err());
    let s3 = set(&[("V1__a.sql", "a"), ("V4__d.sql", "d")], &[]);
    let mut db2 = DbState {
        initialized: true,
        migrations: applied(&s3, 1),
        seeds: vec![],
    };
    db2.migrations.push(AppliedMigration {
        version: 3,
        name: "gone".into(),
        applied_on: String::new(),
        checksum: 1,
    });
    let e = plan_checked(&s3, &db2).expect_err("missing");
    assert!(matches!(e, Divergence::Missing { version: 3, .. }));
    assert!(e.to_string().contains("V3__gone"));

    let mut db3 = db.clone();
    db3.migrations[1].name = "old_name".into();
    assert!(
        plan_checked(&s, &db3)
            .expect_err("renamed")
            .to_string()
            .contains("renamed")
    );

    let db4 = DbState {
        initialized: true,
        migrations: applied(&s, 2)[1..].to_vec(),
        seeds: vec![],
    };
    let e = plan_checked(&s, &db4).expect_err("out of order");
    assert!(
        matches!(
            e,
            Divergence::OutOfOrder {
                version: 1,
                current: 2,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn future_migrations_are_tolerated() {
    let s = set(&[("V1__a.sql", "a")], &[]);
    let mut db = DbState {
        initialized: true,
        migrations: applied(&s, 1),
        seeds: vec![],
    };
    db.migrations.push(AppliedMigration {
        version: 9,
        name: "newer_release".into(),
        applied_on: String::new(),
        checksum: 1,
    });
    let p = plan_checked(&s, &db).expect("future is fine");
    assert!(p.is_empty());
    assert_eq!(p.future, vec!["V9__newer_release".to_string()]);
}

#[test]
fn entries_merge_set_and_database_in_version_order() {
    let s = set(
        &[("V1__a.sql", "a"), ("V3__c.sql", "c")],
        &[("001.sql", "s")],
    );
    let mut db = DbState {
        initialized: true,
        migrations: applied(&s, 1),
        seeds: vec![],
    };
    db.migrations.push(AppliedMigration {
        version: 2,
        name: "gone".into(),
        applied_on: "t".into(),
        checksum: 1,
    });
    let p = plan(&s, &db);
    let got: Vec<(&str, EntryState)> = p
        .migration_entries
        .iter()
        .map(|e| (e.name.as_str(), e.state))
        .collect();
    assert_eq!(
        got,
        vec![
            ("V1__a", EntryState::Applied),
            ("V2__gone", EntryState::Missing),
            ("V3__c", EntryState::Pending),
        ]
    );
    assert_eq!(p.seed_entries[0].state, EntryState::Pending);
    assert!(matches!(
        p.divergence,
        Some(Divergence::Missing { version: 2, .. })
    ));
    assert_eq!(
        p.pending(&s),
        vec!["V3__c".to_string(), "001.sql".to_string()]
    );
}
