//! sqlx-cli's files in the image, read by sqlx's own rules (`sqlx-core` 0.9
//! `migrate/source.rs`): regular files directly in the source directory (`--source`, default
//! `migrations`), the name split at the first `_`, the left part an `i64` (`-5` and `001`
//! included: leading zeros do not count) and the right part ending in `.sql`; `.down.sql`
//! files are never run by `migrate run`. Anything else is ignored, except a name whose
//! prefix is not an integer: sqlx refuses the whole directory then, and so does this reader.
//! The checksum is SHA-384 of the file, compared with the row's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha384};

/// One `up` (or simple) migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlxFile {
    /// The version.
    pub version: i64,
    /// SHA-384 of the file, as `_sqlx_migrations.checksum` holds it.
    pub checksum: Vec<u8>,
    /// The file.
    pub file: PathBuf,
}

/// The source directory of `sqlx migrate run`: `--source DIR` (or `--source=DIR`), else
/// `migrations` in the working directory.
pub fn source_dir(args: &[String], cwd: &Path) -> PathBuf {
    let mut it = args.iter();
    let mut dir = None;
    while let Some(a) = it.next() {
        if a == "--source" {
            dir = it.next().cloned();
        } else if let Some(v) = a.strip_prefix("--source=") {
            dir = Some(v.to_string());
        }
    }
    cwd.join(dir.unwrap_or_else(|| "migrations".into()))
}

/// Whether the rows' checksums can be compared with SHA-384 of the files: not when a
/// `sqlx.toml` in the working directory sets `ignored-chars` (sqlx then hashes the file with
/// those characters removed).
pub fn checksums_comparable(cwd: &Path) -> bool {
    std::fs::read_to_string(cwd.join("sqlx.toml"))
        .map(|t| !t.contains("ignored-chars"))
        .unwrap_or(true)
}

/// Reads the migrations `sqlx migrate run` would apply, by version.
pub fn read(dir: &Path) -> Result<BTreeMap<i64, SqlxFile>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut out: BTreeMap<i64, SqlxFile> = BTreeMap::new();
    for e in entries.flatten() {
        let path = e.path();
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((prefix, rest)) = name.split_once('_') else {
            continue;
        };
        if !rest.ends_with(".sql") {
            continue;
        }
        let version: i64 = prefix.parse().map_err(|_| {
            format!(
                "{}: sqlx refuses the directory: error parsing migration filename {name:?}; expected integer version prefix",
                dir.display()
            )
        })?;
        if rest.ends_with(".down.sql") {
            continue;
        }
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if std::str::from_utf8(&bytes).is_err() {
            return Err(format!("{}: not UTF-8, which sqlx refuses", path.display()));
        }
        let file = SqlxFile {
            version,
            checksum: Sha384::digest(&bytes).to_vec(),
            file: path,
        };
        if let Some(other) = out.insert(version, file) {
            return Err(format!(
                "{} and {} are both version {version} for sqlx",
                other.file.display(),
                out[&version].file.display()
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlx_naming_rules() {
        let d = tempfile::tempdir().expect("tempdir");
        let w = |n: &str, t: &str| std::fs::write(d.path().join(n), t).expect("write");
        w("1_create_users.sql", "CREATE TABLE users (id int);\n");
        w("2_rev.up.sql", "SELECT 2;");
        w("2_rev.down.sql", "SELECT -2;");
        w("-5_neg.sql", "SELECT -5;");
        w("README.md", "x");
        w("2_x.SQL", "ignored: the suffix is case-sensitive");
        w("20240101.sql", "ignored: no underscore");
        std::fs::create_dir(d.path().join("9_dir.sql")).expect("mkdir");
        let files = read(d.path()).expect("read");
        assert_eq!(files.keys().copied().collect::<Vec<_>>(), [-5, 1, 2]);
        // The checksum sqlx 0.9 recorded for this file in the spike (tools.md §1) is SHA-384.
        assert_eq!(files[&1].checksum.len(), 48);
        w("abc_b.sql", "x");
        assert!(
            read(d.path())
                .expect_err("bad prefix")
                .contains("abc_b.sql")
        );
        std::fs::remove_file(d.path().join("abc_b.sql")).expect("rm");
        w("001_again.sql", "x");
        assert!(read(d.path()).expect_err("dup").contains("both version 1"));
    }

    #[test]
    fn source_flag() {
        let cwd = Path::new("/app");
        let a = |s: &[&str]| s.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            source_dir(&a(&["migrate", "run"]), cwd),
            Path::new("/app/migrations")
        );
        assert_eq!(
            source_dir(&a(&["migrate", "run", "--source", "db/m"]), cwd),
            Path::new("/app/db/m")
        );
        assert_eq!(
            source_dir(&a(&["migrate", "run", "--source=/m"]), cwd),
            Path::new("/m")
        );
    }
}
