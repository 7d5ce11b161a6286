//! What the user says about a database built without dbinit: `DBINIT_BASELINE_VERSION`,
//! `DBINIT_ADOPT_FROM` and the `DBINIT_ADOPT_MAP` file from another tool's versions to
//! dbinit's, checked once against the migration set (bad input: exit 2).

use std::path::{Path, PathBuf};

use super::tools::Tool;
use crate::migrate::set::MigrationSet;
use crate::setting::ConfigError;

/// The user's answer for a database built without dbinit, from the settings.
#[derive(Debug, Clone, Default)]
pub struct AdoptSettings {
    /// `DBINIT_BASELINE_VERSION`: record versions up to N without running them.
    pub baseline: Option<i64>,
    /// `DBINIT_ADOPT_FROM`: take the other tool's history over.
    pub from: Option<Tool>,
    /// `DBINIT_ADOPT_MAP`: the other tool's versions → dbinit versions.
    pub map: Option<AdoptMap>,
}

impl AdoptSettings {
    /// Checks the raw settings against the migration set.
    pub fn resolve(
        baseline: Option<String>,
        from: Option<String>,
        map: Option<PathBuf>,
        set: &MigrationSet,
    ) -> Result<Self, ConfigError> {
        let baseline = baseline
            .filter(|b| !b.trim().is_empty())
            .map(|b| parse_version("DBINIT_BASELINE_VERSION (--baseline-version)", &b, set))
            .transpose()?;
        let from = from
            .filter(|f| !f.trim().is_empty())
            .map(|f| parse_tool("DBINIT_ADOPT_FROM (--adopt-from)", &f))
            .transpose()?;
        let map = map.map(|p| AdoptMap::load(&p, set)).transpose()?;
        if baseline.is_some() && from.is_some() {
            return Err(ConfigError(
                "DBINIT_BASELINE_VERSION (--baseline-version) and DBINIT_ADOPT_FROM (--adopt-from) are both set: use one".into(),
            ));
        }
        Ok(Self {
            baseline,
            from,
            map,
        })
    }
}

pub(crate) fn known_versions(set: &MigrationSet) -> String {
    set.migrations
        .iter()
        .map(|m| m.version().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a version that must be one of the set's.
pub fn parse_version(label: &str, raw: &str, set: &MigrationSet) -> Result<i64, ConfigError> {
    let raw = raw.trim();
    match raw.parse::<i64>() {
        Ok(v) if set.migrations.iter().any(|m| m.version() == v) => Ok(v),
        _ => Err(ConfigError(format!(
            "invalid {label}: {raw:?} is not a version of the migration set (one of {})",
            known_versions(set)
        ))),
    }
}

/// Parses a tool name.
pub fn parse_tool(label: &str, raw: &str) -> Result<Tool, ConfigError> {
    Tool::parse(raw).ok_or_else(|| {
        ConfigError(format!(
            "invalid {label}: {raw:?} is not a tool dbinit adopts from (one of {})",
            Tool::ALL.map(Tool::id).join(", ")
        ))
    })
}

/// The user's mapping of another tool's versions (Alembic revision ids, timestamps) to
/// dbinit versions: a file of `theirs = N` lines, `#` comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptMap {
    /// Where it was read from, for messages.
    pub path: PathBuf,
    /// (theirs, dbinit version), in file order.
    pub pairs: Vec<(String, i64)>,
}

impl AdoptMap {
    /// Reads and checks a map file: every right-hand side is a version of the set.
    pub fn load(path: &Path, set: &MigrationSet) -> Result<Self, ConfigError> {
        let label = "DBINIT_ADOPT_MAP (--adopt-map)";
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "invalid {label}: cannot read {}: {e}",
                path.display()
            ))
        })?;
        Self::parse(&text, path, set)
    }

    pub(crate) fn parse(text: &str, path: &Path, set: &MigrationSet) -> Result<Self, ConfigError> {
        let mut pairs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let bad = |why: String| {
                ConfigError(format!(
                    "invalid DBINIT_ADOPT_MAP (--adopt-map): {} line {}: {why} (expected `theirs = N`, N a version of the migration set)",
                    path.display(),
                    i + 1
                ))
            };
            let (theirs, ours) = line
                .split_once('=')
                .ok_or_else(|| bad(format!("{line:?} has no `=`")))?;
            let ours = parse_version("mapped version", ours, set).map_err(|e| bad(e.0))?;
            pairs.push((theirs.trim().to_string(), ours));
        }
        Ok(Self {
            path: path.to_path_buf(),
            pairs,
        })
    }

    pub(crate) fn get(&self, theirs: &str) -> Option<i64> {
        self.pairs
            .iter()
            .find(|(t, _)| t == theirs)
            .map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_files_are_checked() {
        let d = tempfile::tempdir().expect("tmp");
        for (n, s) in [("V1__a.sql", "a"), ("V2__b.sql", "b"), ("V3__c.sql", "c")] {
            std::fs::write(d.path().join(n), s).expect("write");
        }
        let s = MigrationSet::from_dir(d.path(), None, None).expect("set");
        let m = AdoptMap::parse("# c\nabc = 1 # x\n\ndef=2\n", Path::new("m"), &s).expect("ok");
        assert_eq!(m.get("def"), Some(2));
        let e = AdoptMap::parse("abc = 9\n", Path::new("m"), &s).expect_err("9 unknown");
        assert!(e.0.contains("line 1") && e.0.contains("1, 2, 3"), "{}", e.0);
        assert!(AdoptMap::parse("abc 1\n", Path::new("m"), &s).is_err());
        assert!(parse_version("X", "4", &s).is_err());
        assert!(parse_tool("X", "liquibase").is_err());
    }
}
