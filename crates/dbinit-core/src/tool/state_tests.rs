//! The decision, tool by tool, on hand-made files and rows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::files::Expected;
use super::files::alembic::{AlembicFiles, Revision};
use super::files::flyway::FlywayVersion;
use super::files::sqlx::SqlxFile;
use super::judge::judge;
use super::kind::Tool;
use super::recorded::{FlywayRow, PrismaRow, Recorded, SqlxRow};
use super::state::Verdict;

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn alembic_chain(ids: &[&str]) -> Expected {
    let mut revisions = BTreeMap::new();
    let mut prev: Option<&str> = None;
    for id in ids {
        revisions.insert(
            id.to_string(),
            Revision {
                id: id.to_string(),
                down: prev.map(|p| vec![p.to_string()]).unwrap_or_default(),
                file: PathBuf::from(format!("{id}.py")),
            },
        );
        prev = Some(id);
    }
    Expected::Alembic(AlembicFiles {
        revisions,
        heads: vec![ids[ids.len() - 1].to_string()],
        dirs: Vec::new(),
    })
}

#[test]
fn alembic_head_pending_and_ahead() {
    let f = alembic_chain(&["a1", "b2", "c3"]);
    let j = |r: Recorded| judge(Tool::Alembic, "alembic_version", &f, &r, false);
    assert_eq!(j(Recorded::Missing).pending, ["a1", "b2", "c3"]);
    let s = j(Recorded::Alembic(set(&["b2"])));
    assert_eq!(
        (s.verdict, s.pending.clone()),
        (Verdict::Pending, vec!["c3".to_string()])
    );
    assert_eq!(
        j(Recorded::Alembic(set(&["c3"]))).verdict,
        Verdict::UpToDate
    );
    // After a rollback to an image whose versions end earlier.
    let s = j(Recorded::Alembic(set(&["d4"])));
    assert_eq!(
        (s.verdict, s.ahead.clone()),
        (Verdict::Ahead, vec!["d4".to_string()])
    );
    assert!(s.describe().contains("d4"), "{}", s.describe());
}

#[test]
fn sqlx_checksums_failures_and_missing_files() {
    let file = |v: i64, sum: u8| {
        (
            v,
            SqlxFile {
                version: v,
                checksum: vec![sum; 48],
                file: PathBuf::from(format!("{v}_x.sql")),
            },
        )
    };
    let files: BTreeMap<i64, SqlxFile> = [file(1, 1), file(2, 2)].into_iter().collect();
    let f = Expected::Sqlx {
        files,
        checksums: true,
    };
    let row = |v: i64, ok: bool, sum: u8| SqlxRow {
        version: v,
        success: ok,
        checksum: vec![sum; 48],
    };
    let j = |rows: Vec<SqlxRow>| {
        judge(
            Tool::Sqlx,
            "_sqlx_migrations",
            &f,
            &Recorded::Sqlx(rows),
            true,
        )
    };
    assert_eq!(j(vec![row(1, true, 1)]).pending, ["2"]);
    assert_eq!(
        j(vec![row(1, true, 1), row(2, true, 2)]).verdict,
        Verdict::UpToDate
    );
    let s = j(vec![row(1, true, 9), row(2, true, 2)]);
    assert_eq!(s.verdict, Verdict::Failed);
    assert!(
        s.problem.as_deref().is_some_and(|p| p.contains("modified")),
        "{s:?}"
    );
    let s = j(vec![row(1, true, 1), row(2, false, 2)]);
    assert_eq!(s.verdict, Verdict::Failed);
    assert!(
        s.fix
            .as_deref()
            .is_some_and(|f| f.contains("DELETE FROM _sqlx_migrations WHERE version = 2"))
    );
    assert_eq!(
        j(vec![row(1, true, 1), row(2, true, 2), row(3, true, 3)]).verdict,
        Verdict::Ahead
    );
}

#[test]
fn golang_migrate_dirty_names_force() {
    let files: BTreeMap<u64, PathBuf> = [
        (1, PathBuf::from("1_a.up.sql")),
        (3, PathBuf::from("3_c.up.sql")),
    ]
    .into_iter()
    .collect();
    let f = Expected::GolangMigrate {
        files,
        dir: PathBuf::from("/migrations"),
    };
    let j = |r: Option<(i64, bool)>| {
        judge(
            Tool::GolangMigrate,
            "schema_migrations",
            &f,
            &Recorded::GolangMigrate(r),
            true,
        )
    };
    assert_eq!(j(None).pending, ["1", "3"]);
    assert_eq!(j(Some((1, false))).pending, ["3"]);
    assert_eq!(j(Some((3, false))).verdict, Verdict::UpToDate);
    assert_eq!(j(Some((4, false))).verdict, Verdict::Ahead);
    let s = j(Some((3, true)));
    assert_eq!(s.verdict, Verdict::Failed);
    assert!(
        s.fix
            .as_deref()
            .is_some_and(|f| f.contains("migrate -path /migrations") && f.contains("force 1")),
        "{s:?}"
    );
}

#[test]
fn dbmate_strings_prisma_rows_flyway_baseline() {
    let f = Expected::Dbmate(
        [
            ("001".to_string(), PathBuf::from("001_a.sql")),
            ("1".to_string(), PathBuf::from("1_b.sql")),
        ]
        .into_iter()
        .collect(),
    );
    let s = judge(
        Tool::Dbmate,
        "schema_migrations",
        &f,
        &Recorded::Dbmate(set(&["1", "20991231"])),
        false,
    );
    assert_eq!(
        (s.verdict, s.pending.clone()),
        (Verdict::Pending, vec!["001".to_string()])
    );
    assert_eq!(s.ahead, ["20991231"]);

    let f = Expected::Prisma(set(&["20240101_init", "20240102_add"]));
    let row = |n: &str, finished, rolled_back, has_logs| PrismaRow {
        name: n.into(),
        finished,
        rolled_back,
        has_logs,
    };
    let j = |rows: Vec<PrismaRow>, settled| {
        judge(
            Tool::Prisma,
            "_prisma_migrations",
            &f,
            &Recorded::Prisma(rows),
            settled,
        )
    };
    assert_eq!(
        j(
            vec![
                row("20240101_init", true, false, false),
                row("20240102_add", true, false, false)
            ],
            false
        )
        .verdict,
        Verdict::UpToDate
    );
    // A row without finished_at and without logs may be a deploy in progress...
    let running = vec![
        row("20240101_init", true, false, false),
        row("20240102_add", false, false, false),
    ];
    assert_eq!(j(running.clone(), false).verdict, Verdict::Pending);
    // ...but not under the lock.
    assert_eq!(j(running, true).verdict, Verdict::Failed);
    let s = j(
        vec![
            row("20240101_init", true, false, false),
            row("20240102_add", false, false, true),
        ],
        false,
    );
    assert!(
        s.fix
            .as_deref()
            .is_some_and(|f| f.contains("prisma migrate resolve --rolled-back 20240102_add"))
    );
    // A rolled-back row is ignored: pending again.
    assert_eq!(
        j(
            vec![
                row("20240101_init", true, false, false),
                row("20240102_add", false, true, true)
            ],
            true
        )
        .pending,
        ["20240102_add"]
    );

    let v = |s: &str| {
        (
            FlywayVersion::parse(s).expect("v"),
            PathBuf::from(format!("V{s}__x.sql")),
        )
    };
    let f = Expected::Flyway(vec![v("1"), v("2"), v("3")]);
    let r = |v: &str, success, baseline| FlywayRow {
        version: v.into(),
        success,
        baseline,
    };
    let s = judge(
        Tool::Flyway,
        "flyway_schema_history",
        &f,
        &Recorded::Flyway(vec![r("2", true, true), r("3", true, false)]),
        true,
    );
    assert_eq!(s.verdict, Verdict::UpToDate);
    let s = judge(
        Tool::Flyway,
        "flyway_schema_history",
        &f,
        &Recorded::Flyway(vec![r("1", true, false), r("2", false, false)]),
        true,
    );
    assert_eq!(s.verdict, Verdict::Failed);
    assert!(
        s.fix
            .as_deref()
            .is_some_and(|f| f.contains("flyway repair"))
    );
}
