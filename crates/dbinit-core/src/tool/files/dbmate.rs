//! dbmate's files in the image, by dbmate's rules (`pkg/dbmate/migration.go`): names matching
//! `^(\d+).*\.sql$` in each migrations directory (`-d`/`--migrations-dir`, repeatable;
//! `DBMATE_MIGRATIONS_DIR`; default `./db/migrations`). The version is the digit *string*:
//! `001_a.sql` and `1_b.sql` are two migrations, and versions of any length exist. Pending
//! means a file version with no row, whatever the order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where dbmate reads migrations and which table it records them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbmateProject {
    /// The migrations directories.
    pub dirs: Vec<PathBuf>,
    /// `--migrations-table` / `DBMATE_MIGRATIONS_TABLE`, default `schema_migrations`.
    pub table: String,
}

/// From the command's global flags, the `DBMATE_*` variables and the working directory.
pub fn project(
    args: &[String],
    env_dir: Option<&str>,
    env_table: Option<&str>,
    cwd: &Path,
) -> DbmateProject {
    let mut dirs = Vec::new();
    let mut table = env_table.map(str::to_string);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match flag {
            "-d" | "--migrations-dir" => dirs.extend(value()),
            "--migrations-table" => table = value().or(table),
            _ => {}
        }
    }
    if dirs.is_empty() {
        dirs = match env_dir {
            // DBMATE_MIGRATIONS_DIR is a comma-separated list in dbmate 2.
            Some(d) => d
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(String::from)
                .collect(),
            None => vec!["./db/migrations".into()],
        };
    }
    DbmateProject {
        dirs: dirs.iter().map(|d| cwd.join(d)).collect(),
        table: table.unwrap_or_else(|| "schema_migrations".into()),
    }
}

/// The file versions dbmate would apply: version string -> file.
pub fn read(p: &DbmateProject) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut out = BTreeMap::new();
    for dir in &p.dirs {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() || !name.ends_with(".sql") || e.path().is_dir() {
                continue;
            }
            out.insert(digits, e.path());
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no migration files in {}",
            p.dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_digit_strings() {
        let d = tempfile::tempdir().expect("tempdir");
        let m = d.path().join("db/migrations");
        std::fs::create_dir_all(&m).expect("mkdir");
        for n in [
            "001_b.sql",
            "1_a.sql",
            "20240101.sql",
            "9223372036854775808_big.sql",
            "abc.sql",
            "x.txt",
        ] {
            std::fs::write(m.join(n), "-- migrate:up\n-- migrate:down\n").expect("write");
        }
        let p = project(&[], None, None, d.path());
        let v: Vec<String> = read(&p).expect("read").into_keys().collect();
        assert_eq!(v, ["001", "1", "20240101", "9223372036854775808"]);
        assert_eq!(p.table, "schema_migrations");
    }

    #[test]
    fn flags_win_over_the_environment() {
        let a = |s: &[&str]| s.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let cwd = Path::new("/app");
        let p = project(
            &a(&[
                "-d",
                "m1",
                "--migrations-dir=m2",
                "--migrations-table",
                "t",
                "up",
            ]),
            Some("env"),
            Some("et"),
            cwd,
        );
        assert_eq!(p.dirs, [Path::new("/app/m1"), Path::new("/app/m2")]);
        assert_eq!(p.table, "t");
        let p = project(&a(&["up"]), Some("/a,/b"), Some("et"), cwd);
        assert_eq!(p.dirs, [Path::new("/a"), Path::new("/b")]);
        assert_eq!(p.table, "et");
    }
}
