//! golang-migrate's files in the image, by its rules (`source/parse.go`, `source/iofs`):
//! `^([0-9]+)_(.*)\.(down|up)\.(.*)$` in the directory of `-path DIR` or
//! `-source file://DIR`, the version a `u64`; names that do not parse are skipped, and two
//! `up` files of one version are an error. The head is the highest version; the table holds
//! one row, the current version and whether it is dirty.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The migrations directory of a `migrate` command, if it names one (`-path`, `-source
/// file://`); golang-migrate has no default.
pub fn source_dir(args: &[String], cwd: &Path) -> Option<PathBuf> {
    let mut it = args.iter();
    let mut dir = None;
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f.trim_start_matches('-'), Some(v.to_string())),
            _ => (a.trim_start_matches('-'), None),
        };
        if !a.starts_with('-') {
            continue;
        }
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match flag {
            "path" => dir = value(),
            "source" => {
                dir = value().and_then(|v| v.strip_prefix("file://").map(str::to_string));
            }
            _ => {}
        }
    }
    dir.map(|d| cwd.join(d))
}

/// The `x-migrations-table` of a `-database` URL argument, else `schema_migrations`.
pub fn table(args: &[String]) -> String {
    args.iter()
        .filter_map(|a| a.split_once("x-migrations-table=").map(|(_, t)| t))
        .map(|t| t.split('&').next().unwrap_or(t).to_string())
        .next_back()
        .unwrap_or_else(|| "schema_migrations".into())
}

/// The `up` files by version.
pub fn read(dir: &Path) -> Result<BTreeMap<u64, PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut out = BTreeMap::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((digits, rest)) = name.split_once('_') else {
            continue;
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        // `<description>.up.<ext>`: the direction is the second-to-last dot-part.
        let parts: Vec<&str> = rest.rsplitn(3, '.').collect();
        if parts.len() < 3 || parts[1] != "up" {
            continue;
        }
        let Ok(version) = digits.parse::<u64>() else {
            continue;
        };
        if let Some(prev) = out.insert(version, e.path()) {
            return Err(format!(
                "duplicate migration file: {} and {}",
                prev.display(),
                e.path().display()
            ));
        }
    }
    if out.is_empty() {
        return Err(format!("no *.up.* migration files in {}", dir.display()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_files_by_version() {
        let d = tempfile::tempdir().expect("tempdir");
        for n in [
            "1_a.up.sql",
            "1_a.down.sql",
            "20240101_b.up.sql",
            "x_c.up.sql",
            "3_c.sql",
            "99999999999999999999_big.up.sql",
        ] {
            std::fs::write(d.path().join(n), "").expect("write");
        }
        let v: Vec<u64> = read(d.path()).expect("read").into_keys().collect();
        assert_eq!(v, [1, 20240101]);
        std::fs::write(d.path().join("001_again.up.sql"), "").expect("write");
        assert!(read(d.path()).expect_err("dup").contains("duplicate"));
    }

    #[test]
    fn path_source_and_table_flags() {
        let a = |s: &[&str]| s.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let cwd = Path::new("/app");
        assert_eq!(
            source_dir(&a(&["-path", "db", "up"]), cwd),
            Some(PathBuf::from("/app/db"))
        );
        assert_eq!(
            source_dir(&a(&["-source=file:///m", "up"]), cwd),
            Some(PathBuf::from("/m"))
        );
        assert_eq!(source_dir(&a(&["up"]), cwd), None);
        assert_eq!(
            table(&a(&[
                "-database",
                "postgres://h/db?sslmode=disable&x-migrations-table=gm&x=1",
                "up"
            ])),
            "gm"
        );
        assert_eq!(table(&a(&["up"])), "schema_migrations");
    }
}
