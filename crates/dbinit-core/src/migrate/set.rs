//! The migration set: refinery-named SQL migrations (`V1__create_users.sql`) and seed files,
//! embedded at build time or read from a directory (a mounted ConfigMap) at run time.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use refinery::Migration;

use crate::setting::ConfigError;

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
}

impl MigrationSet {
    /// The set compiled into this binary from the repository's `migrations/`.
    pub fn embedded() -> Result<Self, ConfigError> {
        Self::from_files(
            embedded::MIGRATIONS
                .iter()
                .map(|(n, s)| (n.to_string(), s.to_string())),
            embedded::SEEDS
                .iter()
                .map(|(n, s)| (n.to_string(), s.to_string())),
            Source::Embedded,
        )
    }

    /// Reads `dir/*.sql` as migrations and `dir/seeds/*.sql` (or `seeds_dir`) as seeds.
    /// Hidden entries (ConfigMap volumes' `..data` links) are skipped; symlinks are followed.
    pub fn from_dir(dir: &Path, seeds_dir: Option<&Path>) -> Result<Self, ConfigError> {
        let migrations = read_sql_files(dir, true)?;
        let seeds_dir = seeds_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("seeds"));
        let seeds = if seeds_dir.exists() {
            read_sql_files(&seeds_dir, false)?
        } else {
            Vec::new()
        };
        Self::from_files(migrations, seeds, Source::Dir(dir.to_path_buf()))
    }

    fn from_files(
        migrations: impl IntoIterator<Item = (String, String)>,
        seeds: impl IntoIterator<Item = (String, String)>,
        source: Source,
    ) -> Result<Self, ConfigError> {
        let mut ms = Vec::new();
        let place = match &source {
            Source::Dir(d) => format!(" in {}", d.display()),
            _ => String::new(),
        };
        for (file, sql) in migrations {
            let stem = file.strip_suffix(".sql").unwrap_or(&file);
            let m = Migration::unapplied(stem, &sql).map_err(|e| {
                ConfigError(format!(
                    "migration file {file:?}{place} is not named V{{version}}__{{name}}.sql ({e})"
                ))
            })?;
            ms.push(m);
        }
        ms.sort();
        if let Some(w) = ms.windows(2).find(|w| w[0].version() == w[1].version()) {
            return Err(ConfigError(format!(
                "migrations {} and {} have the same version {}",
                w[0],
                w[1],
                w[0].version()
            )));
        }
        let mut seeds: Vec<Seed> = seeds.into_iter().map(|(n, s)| Seed::new(&n, &s)).collect();
        seeds.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            migrations: ms,
            seeds,
            source,
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
    pub fn target_version(&self) -> Option<i32> {
        self.migrations.last().map(|m| m.version())
    }
}

fn read_sql_files(dir: &Path, migrations: bool) -> Result<Vec<(String, String)>, ConfigError> {
    let what = if migrations { "migrations" } else { "seeds" };
    let entries = std::fs::read_dir(dir).map_err(|e| {
        ConfigError(format!(
            "DBINIT_MIGRATIONS_DIR (--migrations-dir): cannot read {what} directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| ConfigError(format!("cannot list {}: {e}", dir.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !name.ends_with(".sql") {
            continue;
        }
        let path = entry.path();
        // `is_file` follows symlinks, as ConfigMap volumes need.
        if !path.is_file() {
            continue;
        }
        let sql = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError(format!("cannot read {what} file {}: {e}", path.display())))?;
        out.push((name.to_string(), sql));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[(&str, &str)]) -> Result<MigrationSet, ConfigError> {
        MigrationSet::from_files(
            files.iter().map(|(a, b)| (a.to_string(), b.to_string())),
            [],
            Source::Embedded,
        )
    }

    #[test]
    fn sorts_by_version_not_name() {
        let s = set(&[("V10__c.sql", "x"), ("V2__b.sql", "y"), ("V1__a.sql", "z")]).expect("ok");
        let v: Vec<i32> = s.migrations.iter().map(|m| m.version()).collect();
        assert_eq!(v, vec![1, 2, 10]);
        assert_eq!(s.target_version(), Some(10));
    }

    #[test]
    fn rejects_bad_names_and_duplicates() {
        let e = set(&[("V1_missing_underscore.sql", "x")]).expect_err("bad name");
        assert!(e.0.contains("V1_missing_underscore.sql"), "{}", e.0);
        let e = set(&[("V1__a.sql", "x"), ("V1__b.sql", "y")]).expect_err("dup");
        assert!(e.0.contains("same version"), "{}", e.0);
    }

    #[test]
    fn checksum_matches_refinery() {
        // The checksum must be refinery's so histories written by refinery stay valid.
        let m = Migration::unapplied("V1__init", "CREATE TABLE t (id int);").expect("ok");
        let s = set(&[("V1__init.sql", "CREATE TABLE t (id int);")]).expect("ok");
        assert_eq!(s.migrations[0].checksum(), m.checksum());
    }

    #[test]
    fn set_checksum_changes_with_content() {
        let a = set(&[("V1__a.sql", "x")]).expect("ok").checksum();
        let b = set(&[("V1__a.sql", "y")]).expect("ok").checksum();
        assert_ne!(a, b);
    }

    #[test]
    fn embedded_set_is_valid() {
        let s = MigrationSet::embedded().expect("the repository's migrations are valid");
        assert!(!s.migrations.is_empty());
        assert!(!s.seeds.is_empty());
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
        let s = MigrationSet::from_dir(d.path(), None).expect("ok");
        assert_eq!(s.migrations.len(), 1);
        assert!(s.seeds.is_empty());
    }
}
