//! dbinit's own migration: a 64-bit version, the name the history records, the SQL that runs,
//! and the refinery checksum that makes histories written by refinery (and by every earlier
//! dbinit) stay valid.
//!
//! refinery hashes the version with its type's width (`SipHasher13` over name, version and
//! SQL, refinery-core 0.10 `Migration::unapplied`): an `i32` by default, an `i64` with its
//! `int8-versions` feature. So the checksum here hashes a version that fits in `i32` as an
//! `i32` (what every existing history holds) and a larger one as an `i64` (what refinery with
//! `int8-versions` writes). Both are proven against refinery itself in the tests.

use std::hash::{Hash, Hasher};

use super::layout::{Layout, Parts, Prefix};

/// One migration of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    version: i64,
    version_text: String,
    name: String,
    file: String,
    label: String,
    prefix: Prefix,
    sql: String,
    text: String,
    checksum: u64,
    no_transaction: bool,
    down: Option<String>,
}

/// The checksum dbinit records: refinery's, with the version hashed at `i32` width when it
/// fits (refinery's default) and at `i64` width above (refinery's `int8-versions`).
pub fn checksum(name: &str, version: i64, sql: &str) -> u64 {
    let mut h = siphasher::sip::SipHasher13::new();
    name.hash(&mut h);
    match i32::try_from(version) {
        Ok(v) => v.hash(&mut h),
        Err(_) => version.hash(&mut h),
    }
    sql.hash(&mut h);
    h.finish()
}

impl Migration {
    /// A migration from what a reader found; `layout` decides what messages call it.
    pub fn new(p: Parts, layout: Layout) -> Self {
        let label = match layout {
            Layout::Dbinit => {
                let letter = match p.prefix {
                    Prefix::Versioned => "V",
                    Prefix::Unversioned => "U",
                };
                format!("{letter}{}__{}", p.version, p.name)
            }
            _ => p.file.clone(),
        };
        let no_transaction = p.no_transaction
            || super::super::header::header(&p.sql).is_ok_and(|h| h.no_transaction);
        Self {
            checksum: checksum(&p.name, p.version, &p.sql),
            version: p.version,
            version_text: p.version_text,
            name: p.name,
            file: p.file,
            label,
            prefix: p.prefix,
            sql: p.sql,
            text: p.text,
            no_transaction,
            down: p.down,
        }
    }

    /// A migration in dbinit's layout from its file name's stem (`V1__init`) and SQL, for
    /// code that holds one file rather than a folder (tests, tool mode).
    pub fn dbinit(stem: &str, sql: &str) -> Result<Self, String> {
        let file = format!("{stem}.sql");
        let p = super::layout::dbinit_parts(&file, sql)?;
        Ok(Self::new(p, Layout::Dbinit))
    }

    /// The version.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The version's digits as the file name writes them (dbmate's `001` and `1` differ).
    pub fn version_text(&self) -> &str {
        &self.version_text
    }

    /// The name the history records.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user's file name, relative to the migrations folder.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// In order, or refinery's late-allowed `U` prefix.
    pub fn prefix(&self) -> Prefix {
        self.prefix
    }

    /// The SQL that runs (dbmate: the up section only).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The whole file as read: what other tools checksum.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The checksum recorded in the history.
    pub fn checksum(&self) -> u64 {
        self.checksum
    }

    /// Runs outside a transaction: `-- dbinit:no-transaction`, sqlx's `-- no-transaction`
    /// first line, or dbmate's `-- migrate:up transaction:false`.
    pub fn no_transaction(&self) -> bool {
        self.no_transaction
    }

    /// The down file or section kept beside it, never run.
    pub fn down(&self) -> Option<&str> {
        self.down.as_deref()
    }

    /// The checksum this migration would have with `sql` instead of its own (whitespace
    /// drift checks).
    pub fn checksum_with(&self, sql: &str) -> u64 {
        checksum(&self.name, self.version, sql)
    }
}

impl std::fmt::Display for Migration {
    /// `V1__create_users` in dbinit's layout, the user's file name in the others.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// refinery-core 0.10.1 built with `int8-versions`: `Migration::unapplied(stem, sql)
    /// .checksum()` printed by a throwaway crate (`refinery-core = { version = "=0.10.1",
    /// features = ["int8-versions"] }`). Cargo unifies features, so that build cannot sit
    /// beside the default one (the i32 oracle below) in this workspace.
    const REFINERY_INT8: [(&str, &str, u64); 4] = [
        (
            "V20230404095503__initial",
            "CREATE TABLE t (id int);",
            13138338744993545296,
        ),
        (
            "V9223372036854775807__last",
            "SELECT 1;",
            402568148835069733,
        ),
        (
            "V2147483648__just_above",
            "SELECT 2;\n",
            5268964999375468185,
        ),
        // Below 2^31 int8-versions hashes 8 bytes where every existing history hashed 4:
        // dbinit keeps the 4-byte checksum there (asserted to differ below).
        ("V1__init", "CREATE TABLE t (id int);", 8915905117284453742),
    ];

    #[test]
    fn checksum_is_refinerys_for_i32_versions() {
        for (stem, sql) in [
            ("V1__init", "CREATE TABLE t (id int);"),
            ("V2147483647__top", "SELECT 1;\n"),
            ("U7__late", ""),
        ] {
            let r = refinery::Migration::unapplied(stem, sql).expect("refinery parses it");
            let m = Migration::dbinit(stem, sql).expect("dbinit parses it");
            assert_eq!(m.checksum(), r.checksum(), "{stem}");
            assert_eq!(m.name(), r.name());
            assert_eq!(i64::from(r.version()), m.version());
            assert_eq!(m.to_string(), r.to_string());
        }
    }

    #[test]
    fn checksum_is_refinery_int8_versions_above_i32() {
        for (stem, sql, want) in &REFINERY_INT8[..3] {
            let m = Migration::dbinit(stem, sql).expect("dbinit parses it");
            assert_eq!(m.checksum(), *want, "{stem}");
        }
        let (stem, sql, int8) = REFINERY_INT8[3];
        let small = Migration::dbinit(stem, sql).expect("ok");
        assert_ne!(small.checksum(), int8);
        let default = refinery::Migration::unapplied(stem, sql).expect("ok");
        assert_eq!(small.checksum(), default.checksum());
    }
}
