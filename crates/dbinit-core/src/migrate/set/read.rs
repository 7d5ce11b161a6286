//! Listing a migrations folder on disk: its `.sql` files, its subdirectories that hold a
//! `migration.sql` (Prisma), and whether other subfolders hide `.sql` files. Hidden entries
//! (a ConfigMap volume's `..data`) are skipped and symlinks followed.

use std::path::Path;

use super::detect::Listing;
use crate::setting::ConfigError;

/// How many nested `.sql` files a message names, and how deep the look goes.
const NESTED_SHOWN: usize = 3;
const NESTED_DEPTH: usize = 4;

fn entries(dir: &Path, what: &str) -> Result<Vec<(String, std::path::PathBuf)>, ConfigError> {
    let list = std::fs::read_dir(dir).map_err(|e| {
        ConfigError(format!(
            "DBINIT_MIGRATIONS_DIR (--migrations-dir): cannot read {what} directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut out = Vec::new();
    for entry in list {
        let entry =
            entry.map_err(|e| ConfigError(format!("cannot list {}: {e}", dir.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        out.push((name.to_string(), entry.path()));
    }
    out.sort();
    Ok(out)
}

fn text(path: &Path, what: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {what} file {}: {e}", path.display())))
}

/// The `*.sql` files directly in `dir`: (name, text).
pub fn sql_files(dir: &Path, what: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (name, path) in entries(dir, what)? {
        // `is_file` follows symlinks, as ConfigMap volumes need.
        if name.ends_with(".sql") && path.is_file() {
            out.push((name, text(&path, what)?));
        }
    }
    Ok(out)
}

/// Everything a layout may read in `dir`; `seeds` (a subfolder or not) is not looked into.
pub fn list(dir: &Path, seeds: &Path) -> Result<Listing, ConfigError> {
    let mut l = Listing {
        files: sql_files(dir, "migrations")?,
        ..Listing::default()
    };
    for (name, path) in entries(dir, "migrations")? {
        if !path.is_dir() || same(&path, seeds) {
            continue;
        }
        let m = path.join("migration.sql");
        if m.is_file() {
            l.dirs.push((name, text(&m, "migration")?));
        } else if l.nested.len() < NESTED_SHOWN {
            nested(&path, &name, NESTED_DEPTH, &mut l.nested);
        }
    }
    Ok(l)
}

fn same(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Collects up to [`NESTED_SHOWN`] `.sql` files under `dir` (as `rel/…`), `depth` levels down.
fn nested(dir: &Path, rel: &str, depth: usize, out: &mut Vec<String>) {
    let Ok(list) = entries(dir, "migrations") else {
        return;
    };
    for (name, path) in list {
        if out.len() >= NESTED_SHOWN {
            return;
        }
        if path.is_file() && name.ends_with(".sql") {
            out.push(format!("{rel}/{name}"));
        } else if path.is_dir() && depth > 1 {
            nested(&path, &format!("{rel}/{name}"), depth - 1, out);
        }
    }
}
