//! Prisma's migrations in the image (`packages/migrate/src/utils/listMigrations.ts`): every
//! subdirectory of the migrations directory is one migration, named by the directory. The
//! directory sits beside the schema: `--schema FILE` (its directory), else
//! `prisma/schema.prisma`, or a multi-file `prisma/schema/` folder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The migrations directory of a `prisma migrate deploy` command.
pub fn migrations_dir(args: &[String], cwd: &Path) -> Result<PathBuf, String> {
    let mut it = args.iter();
    let mut schema = None;
    while let Some(a) = it.next() {
        if a == "--schema" {
            schema = it.next().cloned();
        } else if let Some(v) = a.strip_prefix("--schema=") {
            schema = Some(v.to_string());
        }
    }
    let base = match schema {
        Some(s) => {
            let p = cwd.join(s);
            if p.is_dir() {
                p
            } else {
                p.parent().unwrap_or(cwd).to_path_buf()
            }
        }
        None if cwd.join("prisma/schema.prisma").is_file() => cwd.join("prisma"),
        None if cwd.join("prisma/schema").is_dir() => cwd.join("prisma/schema"),
        None if cwd.join("schema.prisma").is_file() => cwd.to_path_buf(),
        None => {
            return Err(format!(
                "no Prisma schema in {} (prisma/schema.prisma); pass --schema",
                cwd.display()
            ));
        }
    };
    Ok(base.join("migrations"))
}

/// The migration names, sorted.
pub fn read(dir: &Path) -> Result<BTreeSet<String>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let names: BTreeSet<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Err(format!("no migration folders in {}", dir.display()));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_beside_the_schema() {
        let d = tempfile::tempdir().expect("tempdir");
        let m = d.path().join("prisma/migrations");
        for n in ["20240101000000_init", "20240102000000_add"] {
            std::fs::create_dir_all(m.join(n)).expect("mkdir");
        }
        std::fs::write(m.join("migration_lock.toml"), "provider = \"postgresql\"").expect("write");
        std::fs::write(d.path().join("prisma/schema.prisma"), "").expect("write");
        let dir = migrations_dir(&[], d.path()).expect("found");
        assert_eq!(dir, m);
        assert_eq!(read(&dir).expect("read").len(), 2);
        let args = vec![
            "migrate".into(),
            "deploy".into(),
            "--schema".into(),
            "prisma/schema.prisma".into(),
        ];
        assert_eq!(migrations_dir(&args, d.path()).expect("found"), m);
    }
}
