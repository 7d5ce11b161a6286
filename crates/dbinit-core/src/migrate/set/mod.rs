//! The migration set: migrations in one of the layouts dbinit reads ([`layout`]: its own
//! `V1__create_users.sql`, sqlx's, golang-migrate's, dbmate's or Prisma's, detected from the
//! folder or named by `DBINIT_LAYOUT`) and seed files, embedded at build time or read from a
//! directory (a mounted ConfigMap) at run time. Each file becomes dbinit's own [`Migration`]
//! with a 64-bit version and refinery's checksum.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use crate::setting::ConfigError;

mod dbmate;
mod detect;
pub mod layout;
mod migration;
mod read;

pub use detect::Listing;
pub use layout::Prefix;
pub use layout::{Layout, split_version};
pub use migration::{Migration, checksum};

/// The two kinds of script a set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// A versioned schema migration (`V1__create_users.sql`).
    Migration,
    /// An initial-data script from `seeds/`.
    Seed,
}

impl std::fmt::Display for ScriptKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Migration => "migration",
            Self::Seed => "seed",
        })
    }
}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// An initial-data script, applied once per (name, checksum) after the migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// File name, e.g. `001_markets.sql`; seeds run in name order.
    pub name: String,
    /// The SQL.
    pub sql: String,
    /// Content checksum (SipHash-1-3 of the SQL, like refinery's), as a decimal string.
    pub checksum: String,
}

impl Seed {
    /// A seed from its file name and SQL.
    pub fn new(name: &str, sql: &str) -> Self {
        let mut h = siphasher::sip::SipHasher13::new();
        h.write(sql.as_bytes());
        Self {
            name: name.to_string(),
            sql: sql.to_string(),
            checksum: h.finish().to_string(),
        }
    }
}

/// Where a set came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Compiled into the binary.
    Embedded,
    /// Read at run time from this directory.
    Dir(PathBuf),
}

/// Every migration (sorted by version) and seed (sorted by name) that this binary or
/// directory knows.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    /// Migrations by ascending version.
    pub migrations: Vec<Migration>,
    /// Seeds by file name.
    pub seeds: Vec<Seed>,
    /// Where they came from.
    pub source: Source,
    /// The layout the files were read in (dbinit's for an empty set).
    pub layout: Layout,
}

impl MigrationSet {
    /// The set compiled into this binary from the repository's `migrations/`, read in
    /// `layout` (detected when `None`).
    pub fn embedded(layout: Option<Layout>) -> Result<Self, ConfigError> {
        let owned = |l: &[(&str, &str)]| -> Vec<(String, String)> {
            l.iter()
                .map(|(n, s)| (n.to_string(), s.to_string()))
                .collect()
        };
        let listing = Listing {
            files: owned(embedded::MIGRATIONS),
            dirs: owned(embedded::DIRS),
            nested: Vec::new(),
        };
        Self::from_listing(listing, owned(embedded::SEEDS), Source::Embedded, layout)
    }

    /// Reads the migrations in `dir` (its `*.sql` files, or Prisma's `*/migration.sql`) and
    /// `dir/seeds/*.sql` (or `seeds_dir`) as seeds, in `layout` (detected when `None`).
    /// Hidden entries (ConfigMap volumes' `..data` links) are skipped; symlinks are followed.
    pub fn from_dir(
        dir: &Path,
        seeds_dir: Option<&Path>,
        layout: Option<Layout>,
    ) -> Result<Self, ConfigError> {
        let seeds_dir = seeds_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("seeds"));
        let listing = read::list(dir, &seeds_dir)?;
        let seeds = if seeds_dir.exists() {
            read::sql_files(&seeds_dir, "seeds")?
        } else {
            Vec::new()
        };
        Self::from_listing(listing, seeds, Source::Dir(dir.to_path_buf()), layout)
    }

    /// No migrations, and the seeds of `seeds_dir` (none without it): tool mode, where the
    /// tool applies the migrations and dbinit only the seeds.
    pub fn seeds_only(seeds_dir: Option<&Path>) -> Result<Self, ConfigError> {
        let seeds = match seeds_dir {
            Some(d) => read::sql_files(d, "seeds")?,
            None => Vec::new(),
        };
        let mut seeds: Vec<Seed> = seeds.iter().map(|(n, s)| Seed::new(n, s)).collect();
        seeds.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            migrations: Vec::new(),
            seeds,
            source: Source::Dir(seeds_dir.map(Path::to_path_buf).unwrap_or_default()),
            layout: Layout::Dbinit,
        })
    }

    /// A set from what a folder holds.
    pub fn from_listing(
        listing: Listing,
        seeds: Vec<(String, String)>,
        source: Source,
        layout: Option<Layout>,
    ) -> Result<Self, ConfigError> {
        let place = match &source {
            Source::Dir(d) => format!(" in {}", d.display()),
            Source::Embedded => String::new(),
        };
        let layout = match layout {
            Some(l) => Some(l),
            None => detect::detect(&listing, &place).map_err(ConfigError)?,
        };
        let migrations = match layout {
            Some(l) => detect::read(&listing, l, &place).map_err(ConfigError)?,
            None => Vec::new(),
        };
        if migrations.is_empty() && !listing.nested.is_empty() {
            return Err(ConfigError(format!(
                "the migrations folder{place} holds no migration file, but its subfolders hold .sql files ({}): point DBINIT_MIGRATIONS_DIR (--migrations-dir) at the folder that holds the migrations, or set DBINIT_LAYOUT (--layout) if they are in a layout dbinit reads (prisma: NAME/migration.sql)",
                listing.nested.join(", ")
            )));
        }
        let mut seeds: Vec<Seed> = seeds.iter().map(|(n, s)| Seed::new(n, s)).collect();
        seeds.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            migrations,
            seeds,
            source,
            layout: layout.unwrap_or(Layout::Dbinit),
        })
    }

    /// One checksum over the whole set, so two runs can tell whether they used the same files.
    pub fn checksum(&self) -> String {
        let mut h = siphasher::sip::SipHasher13::new();
        for m in &self.migrations {
            h.write_u64(m.checksum());
        }
        for s in &self.seeds {
            h.write(s.name.as_bytes());
            h.write(s.checksum.as_bytes());
        }
        format!("{:016x}", h.finish())
    }

    /// The highest migration version, the schema version a complete run reaches.
    pub fn target_version(&self) -> Option<i64> {
        self.migrations.last().map(|m| m.version())
    }

    /// The migration with version `v`.
    pub fn find(&self, v: i64) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.version() == v)
    }

    /// What messages call an applied version that has no file here: `V7__name` in dbinit's
    /// layout, else `version 7 (name)`.
    pub fn row_label(&self, version: i64, name: &str) -> String {
        match self.layout {
            Layout::Dbinit => format!("V{version}__{name}"),
            _ if name.is_empty() => format!("version {version}"),
            _ => format!("version {version} ({name})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[(&str, &str)]) -> Result<MigrationSet, ConfigError> {
        let listing = Listing {
            files: files
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Listing::default()
        };
        MigrationSet::from_listing(listing, Vec::new(), Source::Embedded, None)
    }

    #[test]
    fn sorts_by_version_not_name() {
        let s = set(&[("V10__c.sql", "x"), ("V2__b.sql", "y"), ("V1__a.sql", "z")]).expect("ok");
        let v: Vec<i64> = s.migrations.iter().map(|m| m.version()).collect();
        assert_eq!(v, vec![1, 2, 10]);
        assert_eq!(s.target_version(), Some(10));
        assert_eq!(s.layout, Layout::Dbinit);
    }

    #[test]
    fn rejects_bad_names_and_duplicates() {
        let e = set(&[("V1_missing_underscore.sql", "x")]).expect_err("bad name");
        assert!(e.0.contains("V1_missing_underscore.sql"), "{}", e.0);
        let e = set(&[("V1__a.sql", "x"), ("V1__b.sql", "y")]).expect_err("dup");
        assert!(e.0.contains("same version"), "{}", e.0);
    }

    #[test]
    fn set_checksum_changes_with_content() {
        let a = set(&[("V1__a.sql", "x")]).expect("ok").checksum();
        let b = set(&[("V1__a.sql", "y")]).expect("ok").checksum();
        assert_ne!(a, b);
    }

    #[test]
    fn embedded_set_is_valid() {
        let s = MigrationSet::embedded(None).expect("the repository's migrations are valid");
        assert!(!s.migrations.is_empty());
        assert!(!s.seeds.is_empty());
        assert_eq!(s.layout, Layout::Dbinit);
    }

    #[test]
    fn dir_skips_hidden_and_follows_links() {
        let d = tempfile::tempdir().expect("tmp");
        let data = d.path().join("..2024_01_01");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::write(data.join("V1__a.sql"), "select 1").expect("write");
        std::os::unix::fs::symlink(data.join("V1__a.sql"), d.path().join("V1__a.sql"))
            .expect("link");
        std::fs::write(d.path().join("README.md"), "not sql").expect("write");
        let s = MigrationSet::from_dir(d.path(), None, None).expect("ok");
        assert_eq!(s.migrations.len(), 1);
        assert!(s.seeds.is_empty());
    }

    #[test]
    fn prisma_folders_are_read_and_other_nested_sql_is_refused() {
        let d = tempfile::tempdir().expect("tmp");
        for (dir, sql) in [
            ("20240102000000_b", "CREATE TABLE b ();"),
            ("20240101000000_a", "CREATE TABLE a ();"),
        ] {
            std::fs::create_dir(d.path().join(dir)).expect("mkdir");
            std::fs::write(d.path().join(dir).join("migration.sql"), sql).expect("write");
        }
        std::fs::write(
            d.path().join("migration_lock.toml"),
            "provider = \"postgresql\"",
        )
        .expect("write");
        let s = MigrationSet::from_dir(d.path(), None, None).expect("prisma");
        assert_eq!(s.layout, Layout::Prisma);
        assert_eq!(
            s.migrations[0].to_string(),
            "20240101000000_a/migration.sql"
        );

        let d = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(d.path().join("postgres/v1")).expect("mkdir");
        std::fs::write(d.path().join("postgres/v1/V1__a.sql"), "x").expect("write");
        std::fs::create_dir(d.path().join("seeds")).expect("mkdir");
        std::fs::write(d.path().join("seeds/001.sql"), "x").expect("write");
        let e = MigrationSet::from_dir(d.path(), None, None).expect_err("nested");
        assert!(
            e.0.contains("postgres/v1/V1__a.sql") && !e.0.contains("001.sql"),
            "{}",
            e.0
        );
        // Empty, or seeds only: nothing to refuse.
        std::fs::remove_dir_all(d.path().join("postgres")).expect("rm");
        assert!(
            MigrationSet::from_dir(d.path(), None, None)
                .expect("ok")
                .migrations
                .is_empty()
        );
    }
}
