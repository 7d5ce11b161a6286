//! Adopting a tool's history when the folder holds that tool's own files (sqlx's
//! `_sqlx_migrations` beside sqlx-named files, dbmate's `schema_migrations` beside dbmate
//! files, Prisma's `_prisma_migrations` beside its directories): no map, every row is matched
//! to its file one to one, as the tool itself matches them — sqlx by version number, dbmate by
//! the version's digits as written, Prisma by directory name — and where the tool keeps a
//! checksum of the file (sqlx's SHA-384, Prisma's SHA-256) it must still match.
//!
//! What cannot be adopted is refused (exit 9) saying exactly what and how to fix it: a row
//! with no file, a file the tool recorded with another checksum, a file the tool never
//! applied below ones it did (dbinit applies in version order; the tool would have applied it
//! late).

use super::audit::Action;
use super::tools::{Tool, ToolHistory, ToolRow};
use super::{Adoption, Refusal};
use crate::migrate::set::{Layout, Migration, MigrationSet};

/// Whether `tool`'s rows name `layout`'s files one to one, so no map is needed.
pub fn reads_own_files(tool: Tool, layout: Layout) -> bool {
    matches!(
        (tool, layout),
        (Tool::Sqlx, Layout::Sqlx | Layout::GolangMigrate)
            | (Tool::Dbmate, Layout::Dbmate)
            | (Tool::Prisma, Layout::Prisma)
    )
}

/// The file a row names, as the tool matches them.
fn file_for<'a>(set: &'a MigrationSet, tool: Tool, key: &str) -> Option<(usize, &'a Migration)> {
    set.migrations.iter().enumerate().find(|(_, m)| match tool {
        Tool::Sqlx => key.parse::<i64>().is_ok_and(|v| v == m.version()),
        Tool::Dbmate => m.version_text() == key,
        Tool::Prisma => m.file().strip_suffix("/migration.sql") == Some(key),
        _ => false,
    })
}

fn place(set: &MigrationSet) -> String {
    match &set.source {
        crate::migrate::set::Source::Dir(d) => format!(" in {}", d.display()),
        crate::migrate::set::Source::Embedded => " in the set built into this binary".into(),
    }
}

/// The refusal for a file whose recorded checksum differs, or `None` when it matches (or the
/// tool keeps none).
fn checksum_refusal(
    h: &ToolHistory,
    row: &ToolRow,
    file: &Migration,
    what: &str,
) -> Option<Refusal> {
    let recorded = row.checksum.as_ref()?;
    if recorded.matches(file.text()) != Some(false) {
        return None;
    }
    let (tool, hash, now) = match h.tool {
        Tool::Sqlx => (
            "sqlx",
            "SHA-384",
            super::tools::Checksum::sqlx_of(file.text()).display(),
        ),
        _ => ("Prisma", "SHA-256", sha256_hex(file.text())),
    };
    Some(Refusal(format!(
        "cannot adopt {what}: {} {} was applied with {hash} {} but the file {} now has {hash} {now}: the file was edited after {tool} applied it ({tool} would refuse too). Restore it as it was applied (`git log -p -- {}`), then adopt; put a deliberate change in a new migration",
        h.table,
        row.key,
        recorded.display(),
        file.file(),
        file.file()
    )))
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Matches every applied row of `h` to its file in `set`; see the module docs.
pub fn adopt(set: &MigrationSet, h: &ToolHistory) -> Result<Adoption, Refusal> {
    let what = h.describe();
    let mut rows: Vec<(usize, String)> = Vec::new();
    for key in &h.applied {
        let Some((i, file)) = file_for(set, h.tool, key) else {
            return Err(Refusal(format!(
                "cannot adopt {what}: {} {key} is applied in {} but no file{} has it: restore that migration's file (from git, or from the release that applied it), then adopt; dbinit does not record versions it has no file for",
                h.tool.unit(),
                h.table,
                place(set)
            )));
        };
        // A Prisma migration rolled back and applied again has one applied row.
        if rows.iter().any(|(j, _)| *j == i) {
            continue;
        }
        let row = h
            .rows_for(key)
            .rfind(|r| r.state == super::tools::RowState::Applied);
        if let Some(r) = row.and_then(|r| checksum_refusal(h, r, file, &what)) {
            return Err(r);
        }
        rows.push((i, format!("{} {} {key}", h.table, h.tool.unit())));
    }
    rows.sort();
    let Some(&(top, _)) = rows.last() else {
        return Err(Refusal(format!(
            "cannot adopt {what}: it records nothing applied"
        )));
    };
    if let Some((_, late)) = set
        .migrations
        .iter()
        .enumerate()
        .take(top)
        .find(|(i, _)| !rows.iter().any(|(j, _)| j == i))
    {
        return Err(Refusal(format!(
            "cannot adopt {what}: {} is not applied there but later files are ({} is): dbinit applies files in version order and would refuse it afterwards. Apply it with {} first, or give it a version above {}",
            late.file(),
            set.migrations[top].file(),
            h.tool.name(),
            set.migrations[top].version_text()
        )));
    }
    let (first, last) = (&set.migrations[rows[0].0], &set.migrations[top]);
    let span = if rows.len() == 1 {
        last.to_string()
    } else {
        format!("{} files, {first} .. {last}", rows.len())
    };
    Ok(Adoption {
        action: Action::Adopt,
        version: last.version(),
        rows,
        summary: format!(
            "record {span} as applied without running them, from {what} (its own files, one to one)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::adopt::tools::{Checksum, RowState};
    use crate::migrate::set::{Listing, Source};

    fn set(files: &[(&str, &str)]) -> MigrationSet {
        let listing = Listing {
            files: files
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Listing::default()
        };
        MigrationSet::from_listing(listing, Vec::new(), Source::Embedded, None).expect("set")
    }

    fn sqlx(rows: &[(&str, &str)]) -> ToolHistory {
        let rows: Vec<ToolRow> = rows
            .iter()
            .map(|(k, text)| {
                let mut r = ToolRow::new(k, RowState::Applied);
                r.checksum = Some(Checksum::sqlx_of(text));
                r
            })
            .collect();
        ToolHistory {
            tool: Tool::Sqlx,
            table: "_sqlx_migrations".into(),
            applied: rows.iter().map(|r| r.key.clone()).collect(),
            current: rows.last().map(|r| r.key.clone()),
            problem: None,
            rows,
        }
    }

    const FILES: [(&str, &str); 3] = [
        ("20230404095503_a.sql", "CREATE TABLE a ();"),
        ("20230404095504_b.sql", "CREATE TABLE b ();"),
        ("20230404095505_c.sql", "CREATE TABLE c ();"),
    ];

    #[test]
    fn sqlx_rows_match_files_by_version_with_their_checksums() {
        let s = set(&FILES);
        assert!(reads_own_files(Tool::Sqlx, s.layout));
        let a = adopt(
            &s,
            &sqlx(&[
                ("20230404095503", FILES[0].1),
                ("20230404095504", FILES[1].1),
            ]),
        )
        .expect("adopted");
        assert_eq!(a.version, 20_230_404_095_504);
        assert_eq!(
            a.rows,
            vec![
                (0, "_sqlx_migrations version 20230404095503".to_string()),
                (1, "_sqlx_migrations version 20230404095504".to_string())
            ]
        );

        let e = adopt(&s, &sqlx(&[("20230404095503", "CREATE TABLE a (id int);")]))
            .expect_err("edited");
        assert!(
            e.0.contains("20230404095503_a.sql")
                && e.0.contains("SHA-384")
                && e.0.contains("git log -p"),
            "{}",
            e.0
        );
        let e = adopt(
            &s,
            &sqlx(&[("20230404095503", FILES[0].1), ("20990101000000", "x")]),
        )
        .expect_err("no file");
        assert!(
            e.0.contains("version 20990101000000 is applied in _sqlx_migrations but no file"),
            "{}",
            e.0
        );
        let e = adopt(
            &s,
            &sqlx(&[
                ("20230404095503", FILES[0].1),
                ("20230404095505", FILES[2].1),
            ]),
        )
        .expect_err("gap");
        assert!(
            e.0.contains("20230404095504_b.sql is not applied there"),
            "{}",
            e.0
        );
    }

    #[test]
    fn dbmate_matches_the_digits_as_written() {
        let up = "-- migrate:up\nSELECT 1;\n-- migrate:down\n";
        let s = set(&[("001_a.sql", up), ("2_b.sql", up)]);
        let h = |keys: &[&str]| ToolHistory {
            tool: Tool::Dbmate,
            table: "schema_migrations".into(),
            applied: keys.iter().map(|k| k.to_string()).collect(),
            current: None,
            problem: None,
            rows: keys
                .iter()
                .map(|k| ToolRow::new(k, RowState::Applied))
                .collect(),
        };
        assert_eq!(adopt(&s, &h(&["001"])).expect("ok").rows.len(), 1);
        // dbmate's "1" is not the file 001_a.sql.
        assert!(adopt(&s, &h(&["1"])).is_err());
    }
}
