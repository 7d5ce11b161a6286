//! Embeds the application's migration set (top-level `migrations/`: its `*.sql` files, or
//! Prisma's `*/migration.sql`, or the directory named by
//! `DBINIT_EMBED_MIGRATIONS` at build time) into the library, and rebuilds when a file is
//! added, removed or edited.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn sql_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

/// Prisma's layout: subdirectories holding a `migration.sql` (not `seeds/`).
fn migration_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n != "seeds"))
        .map(|p| p.join("migration.sql"))
        .filter(|p| p.is_file())
        .collect();
    dirs.sort();
    for d in &dirs {
        if let Some(parent) = d.parent() {
            println!("cargo:rerun-if-changed={}", parent.display());
        }
    }
    dirs
}

fn list(out: &mut String, name: &str, files: &[PathBuf]) {
    writeln!(out, "pub(crate) static {name}: &[(&str, &str)] = &[").expect("write to String");
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        // A Prisma migration is named by its directory.
        let named = if name == "DIRS" {
            f.parent()
        } else {
            Some(f.as_path())
        };
        let file = named
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .expect("UTF-8 file name");
        writeln!(
            out,
            "    ({file:?}, include_str!({:?})),",
            f.display().to_string()
        )
        .expect("write to String");
    }
    writeln!(out, "];").expect("write to String");
}

fn main() {
    println!("cargo:rerun-if-env-changed=DBINIT_EMBED_MIGRATIONS");
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("DBINIT_EMBED_MIGRATIONS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../migrations"));
    let dir = dir.canonicalize().unwrap_or(dir);
    // A directory's mtime changes when an entry is added or removed.
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo:rerun-if-changed={}", dir.join("seeds").display());
    let mut out = String::new();
    list(&mut out, "MIGRATIONS", &sql_files(&dir));
    list(&mut out, "DIRS", &migration_dirs(&dir));
    list(&mut out, "SEEDS", &sql_files(&dir.join("seeds")));
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("embedded.rs");
    std::fs::write(dest, out).expect("write to String");
}
