//! Each tool's own semantics of "applied", for [`judge`]: what is pending,
//! what the table holds that the files do not (ahead), and what it records as failed, with
//! the tool's own fix.

use std::collections::{BTreeMap, BTreeSet};

use super::files::{Expected, django, flyway::FlywayVersion};
use super::kind::Tool;
use super::recorded::Recorded;
use super::state::ToolState;

/// Judges `recorded` against `expected`. `settled` says no run can be in progress (the
/// migration lock is held): a Prisma row that is neither finished nor logged is then a
/// failure, not a migration still running.
pub fn judge(
    tool: Tool,
    table: &str,
    expected: &Expected,
    recorded: &Recorded,
    settled: bool,
) -> ToolState {
    let s = ToolState::new(tool, table);
    match (expected, recorded) {
        (Expected::Alembic(f), r) => alembic(s, f, r),
        (Expected::Django(f), r) => django(s, f, r),
        (Expected::Sqlx { files, checksums }, r) => sqlx(s, files, *checksums, r),
        (Expected::Dbmate(f), r) => dbmate(s, f, r),
        (Expected::GolangMigrate { files, dir }, r) => {
            golang_migrate(s, files, &dir.display().to_string(), r)
        }
        (Expected::Prisma(f), r) => prisma(s, f, r, settled),
        (Expected::Flyway(f), r) => flyway(s, f, r),
    }
}

pub(super) fn mismatch(s: ToolState, r: &Recorded) -> ToolState {
    let t = s.table.clone();
    ToolState {
        problem: Some(format!("{t} was read as another tool's table ({r:?})")),
        ..s
    }
}

pub(super) fn alembic(
    mut s: ToolState,
    f: &super::files::alembic::AlembicFiles,
    r: &Recorded,
) -> ToolState {
    let rows = match r {
        Recorded::Missing => BTreeSet::new(),
        Recorded::Alembic(rows) => rows.clone(),
        other => return mismatch(s, other),
    };
    s.image_head = f.heads.clone();
    s.database_head = rows.iter().cloned().collect();
    s.ahead = rows
        .iter()
        .filter(|r| !f.revisions.contains_key(*r))
        .cloned()
        .collect();
    if !s.ahead.is_empty() {
        // Alembic would stop with "Can't locate revision": nothing in the files can run.
        return s.conclude();
    }
    // Everything at or below a recorded revision is applied.
    let mut applied: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = rows.iter().map(String::as_str).collect();
    while let Some(id) = todo.pop() {
        if applied.insert(id)
            && let Some(rev) = f.revisions.get(id)
        {
            todo.extend(rev.down.iter().map(String::as_str));
        }
    }
    s.pending = f
        .revisions
        .keys()
        .filter(|k| !applied.contains(k.as_str()))
        .cloned()
        .collect();
    if s.pending.is_empty() && rows.iter().collect::<Vec<_>>() != f.heads.iter().collect::<Vec<_>>()
    {
        // Every revision is below a row, yet the rows are not the heads: let Alembic judge.
        s.pending = f.heads.clone();
    }
    s.conclude()
}

pub(super) fn django(mut s: ToolState, f: &django::DjangoFiles, r: &Recorded) -> ToolState {
    let rows = match r {
        Recorded::Missing => BTreeSet::new(),
        Recorded::Django(rows) => rows.clone(),
        other => return mismatch(s, other),
    };
    let apps: BTreeSet<&str> = f.migrations.iter().map(|m| m.app.as_str()).collect();
    let known: BTreeSet<(&str, &str)> = f
        .migrations
        .iter()
        .map(|m| (m.app.as_str(), m.name.as_str()))
        .collect();
    s.pending = django::pending(f, &rows);
    // Rows of installed apps without a file: a newer release's (Django ignores them).
    s.ahead = rows
        .iter()
        .filter(|(a, n)| apps.contains(a.as_str()) && !known.contains(&(a.as_str(), n.as_str())))
        .map(|(a, n)| format!("{a}.{n}"))
        .collect();
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for m in &f.migrations {
        last.insert(&m.app, &m.name);
    }
    s.image_head = last.iter().map(|(a, n)| format!("{a}.{n}")).collect();
    let mut at: BTreeMap<&str, &str> = BTreeMap::new();
    for (a, n) in &rows {
        if apps.contains(a.as_str()) {
            let e = at.entry(a).or_insert(n);
            *e = (*e).max(n.as_str());
        }
    }
    s.database_head = at.iter().map(|(a, n)| format!("{a}.{n}")).collect();
    s.conclude()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(super) fn sqlx(
    mut s: ToolState,
    files: &BTreeMap<i64, super::files::sqlx::SqlxFile>,
    checksums: bool,
    r: &Recorded,
) -> ToolState {
    let rows = match r {
        Recorded::Missing => Vec::new(),
        Recorded::Sqlx(rows) => rows.clone(),
        other => return mismatch(s, other),
    };
    s.image_head = files
        .keys()
        .next_back()
        .map(ToString::to_string)
        .into_iter()
        .collect();
    s.database_head = rows
        .iter()
        .map(|r| r.version)
        .max()
        .map(|v| v.to_string())
        .into_iter()
        .collect();
    let recorded: BTreeSet<i64> = rows.iter().map(|r| r.version).collect();
    let table = s.table.clone();
    for row in &rows {
        if !row.success {
            s = s.failed(
                format!("migration {} is partially applied (success = false)", row.version),
                format!(
                    "repair what it left behind, then `DELETE FROM {table} WHERE version = {}` and run again (sqlx: \"fix and remove row\")",
                    row.version
                ),
            );
        }
        match files.get(&row.version) {
            None => s.ahead.push(row.version.to_string()),
            Some(f) if checksums && f.checksum != row.checksum => {
                s = s.failed(
                    format!(
                        "migration {} was previously applied but has been modified: {} has checksum {}, the table {}",
                        row.version,
                        f.file.display(),
                        &hex(&f.checksum)[..16],
                        &hex(&row.checksum).get(..16).unwrap_or("(none)")
                    ),
                    format!(
                        "restore {} as it was applied (an applied migration is never edited; add a new one instead)",
                        f.file.display()
                    ),
                );
            }
            Some(_) => {}
        }
    }
    s.pending = files
        .keys()
        .filter(|v| !recorded.contains(v))
        .map(ToString::to_string)
        .collect();
    s.conclude()
}

pub(super) fn dbmate(
    mut s: ToolState,
    files: &BTreeMap<String, std::path::PathBuf>,
    r: &Recorded,
) -> ToolState {
    let rows = match r {
        Recorded::Missing => BTreeSet::new(),
        Recorded::Dbmate(rows) => rows.clone(),
        other => return mismatch(s, other),
    };
    // dbmate applies in file-name order; its "head" is the last file.
    let by_name: BTreeMap<String, &String> = files
        .iter()
        .map(|(v, p)| {
            (
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                v,
            )
        })
        .collect();
    s.image_head = by_name
        .values()
        .next_back()
        .map(|v| v.to_string())
        .into_iter()
        .collect();
    s.database_head = rows
        .iter()
        .max_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)))
        .cloned()
        .into_iter()
        .collect();
    s.pending = files
        .keys()
        .filter(|v| !rows.contains(*v))
        .cloned()
        .collect();
    s.ahead = rows
        .iter()
        .filter(|v| !files.contains_key(*v))
        .cloned()
        .collect();
    s.conclude()
}

pub(super) fn golang_migrate(
    mut s: ToolState,
    files: &BTreeMap<u64, std::path::PathBuf>,
    dir: &str,
    r: &Recorded,
) -> ToolState {
    let row = match r {
        Recorded::Missing => None,
        Recorded::GolangMigrate(row) => *row,
        other => return mismatch(s, other),
    };
    let head = files.keys().next_back().copied();
    s.image_head = head.map(|h| h.to_string()).into_iter().collect();
    let Some((version, dirty)) = row else {
        s.pending = files.keys().map(ToString::to_string).collect();
        return s.conclude();
    };
    s.database_head = vec![version.to_string()];
    if dirty {
        let before = u64::try_from(version)
            .ok()
            .and_then(|v| files.range(..v).next_back().map(|(p, _)| p.to_string()))
            .unwrap_or_else(|| "-1".into());
        s = s.failed(
            format!("Dirty database version {version}: the migration to {version} failed halfway"),
            format!(
                "repair what it left behind, then `migrate -path {dir} -database \"$DATABASE_URL\" force {before}` (the last version fully applied) and run again"
            ),
        );
        return s.conclude();
    }
    match (u64::try_from(version).ok(), head) {
        (Some(v), Some(h)) if v > h => s.ahead = vec![version.to_string()],
        (Some(v), _) => s.pending = files.range(v + 1..).map(|(k, _)| k.to_string()).collect(),
        (None, _) => s.pending = files.keys().map(ToString::to_string).collect(),
    }
    s.conclude()
}

pub(super) fn prisma(
    mut s: ToolState,
    files: &BTreeSet<String>,
    r: &Recorded,
    settled: bool,
) -> ToolState {
    let rows = match r {
        Recorded::Missing => Vec::new(),
        Recorded::Prisma(rows) => rows.clone(),
        other => return mismatch(s, other),
    };
    let applied: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.finished && !r.rolled_back)
        .map(|r| r.name.as_str())
        .collect();
    s.image_head = files.iter().next_back().cloned().into_iter().collect();
    s.database_head = applied
        .iter()
        .next_back()
        .map(|n| n.to_string())
        .into_iter()
        .collect();
    for row in rows.iter().filter(|r| !r.finished && !r.rolled_back) {
        if row.has_logs || settled {
            s = s.failed(
                format!("the `{}` migration failed (P3009)", row.name),
                format!(
                    "repair what it left behind, then `prisma migrate resolve --rolled-back {}` (or `--applied {}` if you finished it by hand) and run again",
                    row.name, row.name
                ),
            );
        }
    }
    s.pending = files
        .iter()
        .filter(|n| !applied.contains(n.as_str()))
        .cloned()
        .collect();
    s.ahead = applied
        .iter()
        .filter(|n| !files.contains(**n))
        .map(|n| n.to_string())
        .collect();
    s.conclude()
}

pub(super) fn flyway(
    mut s: ToolState,
    files: &[(FlywayVersion, std::path::PathBuf)],
    r: &Recorded,
) -> ToolState {
    let rows = match r {
        Recorded::Missing => Vec::new(),
        Recorded::Flyway(rows) => rows.clone(),
        other => return mismatch(s, other),
    };
    let baseline = rows
        .iter()
        .filter(|r| r.baseline && r.success)
        .filter_map(|r| FlywayVersion::parse(&r.version))
        .max();
    let applied: BTreeSet<FlywayVersion> = rows
        .iter()
        .filter(|r| r.success)
        .filter_map(|r| FlywayVersion::parse(&r.version))
        .collect();
    for row in rows.iter().filter(|r| !r.success) {
        s = s.failed(
            format!("migration to version {} failed (success = false)", row.version),
            "repair what it left behind, then `flyway repair` (it removes the failed row) and run again".into(),
        );
    }
    let known: BTreeSet<&FlywayVersion> = files.iter().map(|(v, _)| v).collect();
    s.image_head = files
        .last()
        .map(|(v, _)| v.to_string())
        .into_iter()
        .collect();
    s.database_head = applied
        .iter()
        .next_back()
        .map(ToString::to_string)
        .into_iter()
        .collect();
    s.pending = files
        .iter()
        .filter(|(v, _)| !applied.contains(v) && baseline.as_ref().is_none_or(|b| v > b))
        .map(|(v, _)| v.to_string())
        .collect();
    s.ahead = applied
        .iter()
        .filter(|v| !known.contains(v) && Some(*v) != baseline.as_ref())
        .map(ToString::to_string)
        .collect();
    s.conclude()
}
