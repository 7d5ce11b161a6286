//! Flyway's versioned SQL migrations in the image: `V<version>__<description>.sql` in each
//! `filesystem:` location (`-locations=`, `FLYWAY_LOCATIONS`, default `filesystem:sql`),
//! subdirectories included. Versions compare part by part (`1.1` < `1.10`; `_` separates parts
//! like `.`). Repeatable (`R__`) migrations have no version and re-run on a changed
//! checksum that only Flyway computes, so a location holding them makes the state unknown.

use std::path::{Path, PathBuf};

/// A version, compared part by part as numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlywayVersion(pub Vec<u64>);

impl FlywayVersion {
    /// Parses `1`, `1.1`, `2_1`, `010`; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        let parts: Option<Vec<u64>> = raw.split(['.', '_']).map(|p| p.parse().ok()).collect();
        let mut parts = parts?;
        // Trailing zero parts do not count: 1.0 is 1.
        while parts.len() > 1 && parts.last() == Some(&0) {
            parts.pop();
        }
        Some(Self(parts))
    }
}

impl std::fmt::Display for FlywayVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s: Vec<String> = self.0.iter().map(u64::to_string).collect();
        f.write_str(&s.join("."))
    }
}

/// Where Flyway reads migrations and which table it records them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlywayProject {
    /// The file system locations.
    pub dirs: Vec<PathBuf>,
    /// `-table=` / `FLYWAY_TABLE`, default `flyway_schema_history`.
    pub table: String,
}

/// From `-locations=`, `-table=`, `FLYWAY_LOCATIONS`, `FLYWAY_TABLE` and the working
/// directory; a `classpath:` location (inside a jar) cannot be read.
pub fn project(
    args: &[String],
    env_locations: Option<&str>,
    env_table: Option<&str>,
    cwd: &Path,
) -> Result<FlywayProject, String> {
    let mut locations = env_locations.map(str::to_string);
    let mut table = env_table.map(str::to_string);
    for a in args {
        if let Some(v) = a.strip_prefix("-locations=") {
            locations = Some(v.to_string());
        } else if let Some(v) = a.strip_prefix("-table=") {
            table = Some(v.to_string());
        }
    }
    let mut dirs = Vec::new();
    for l in locations.as_deref().unwrap_or("filesystem:sql").split(',') {
        let l = l.trim();
        match l.split_once(':') {
            Some(("filesystem", p)) => dirs.push(cwd.join(p)),
            Some((scheme, _)) => {
                return Err(format!(
                    "Flyway location {l:?} ({scheme}:) is not on the file system"
                ));
            }
            None => dirs.push(cwd.join(l)),
        }
    }
    Ok(FlywayProject {
        dirs,
        table: table.unwrap_or_else(|| "flyway_schema_history".into()),
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// The versioned migrations: (version, file), sorted.
pub fn read(p: &FlywayProject) -> Result<Vec<(FlywayVersion, PathBuf)>, String> {
    let mut files = Vec::new();
    for d in &p.dirs {
        walk(d, &mut files)?;
    }
    let mut out = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.ends_with(".sql") {
            continue;
        }
        if name.starts_with("R__") {
            return Err(format!(
                "{} is a repeatable migration, which Flyway re-runs on a checksum only it computes",
                f.display()
            ));
        }
        let Some(rest) = name.strip_prefix('V') else {
            continue;
        };
        let Some((version, _)) = rest.split_once("__") else {
            continue;
        };
        let v = FlywayVersion::parse(version)
            .ok_or_else(|| format!("{}: {version:?} is not a Flyway version", f.display()))?;
        out.push((v, f));
    }
    out.sort();
    if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!(
            "Found more than one migration with version {}: {} and {}",
            w[0].0,
            w[0].1.display(),
            w[1].1.display()
        ));
    }
    if out.is_empty() {
        return Err("no versioned migrations (V<version>__<name>.sql)".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_part_by_part() {
        let mut v: Vec<FlywayVersion> = ["10", "2", "1.1", "1", "1.10", "1_2"]
            .iter()
            .map(|s| FlywayVersion::parse(s).expect("version"))
            .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(s, ["1", "1.1", "1.2", "1.10", "2", "10"]);
        assert_eq!(FlywayVersion::parse("1.0"), FlywayVersion::parse("1"));
        assert_eq!(FlywayVersion::parse("x"), None);
    }

    #[test]
    fn reads_locations() {
        let d = tempfile::tempdir().expect("tempdir");
        let sql = d.path().join("sql");
        std::fs::create_dir_all(sql.join("sub")).expect("mkdir");
        std::fs::write(sql.join("V1__a.sql"), "").expect("write");
        std::fs::write(sql.join("sub/V1.1__b.sql"), "").expect("write");
        std::fs::write(sql.join("README"), "").expect("write");
        let p = project(&[], None, None, d.path()).expect("project");
        let v: Vec<String> = read(&p)
            .expect("read")
            .iter()
            .map(|(v, _)| v.to_string())
            .collect();
        assert_eq!(v, ["1", "1.1"]);
        std::fs::write(sql.join("R__view.sql"), "").expect("write");
        assert!(read(&p).expect_err("repeatable").contains("repeatable"));
        assert!(project(&["-locations=classpath:db".into()], None, None, d.path()).is_err());
    }
}
