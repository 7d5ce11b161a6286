//! Alembic's files in the image: `alembic.ini` (or `pyproject.toml`'s `[tool.alembic]`)
//! names the script location, whose `versions/` (or `version_locations`) holds one Python
//! file per revision. The heads are the revisions no other revision names as its
//! `down_revision`; the database is up to date when `alembic_version` holds exactly them.
//!
//! The files are read, never run: the module-level `revision` and `down_revision`
//! assignments, in the 1.20 typed form (`revision: str = 'ab12'`) or the old one, with
//! tuples for merges. A value that is not a literal makes the heads unknown, and the
//! command then runs every time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::ini::Ini;
use super::pyscan::{self, PyValue};

/// Where Alembic reads its configuration: `-c`/`--config`, `ALEMBIC_CONFIG`, or
/// `alembic.ini` in the working directory; `-n`/`--name` picks the section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlembicConfig {
    /// The ini file.
    pub ini: PathBuf,
    /// Its section (`alembic` unless `-n` says otherwise).
    pub section: String,
    /// `pyproject.toml` beside it (Alembic 1.16+ reads `[tool.alembic]` there).
    pub toml: PathBuf,
}

impl AlembicConfig {
    /// From the command's arguments, `ALEMBIC_CONFIG` and the working directory.
    pub fn locate(args: &[String], env_config: Option<&str>, cwd: &Path) -> Self {
        let mut ini = env_config.map(PathBuf::from);
        let mut section = "alembic".to_string();
        let mut toml = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            let mut value = || inline.clone().or_else(|| it.next().cloned());
            match flag {
                "-c" | "--config" => ini = value().map(PathBuf::from),
                "-n" | "--name" => section = value().unwrap_or(section),
                "--toml-file" => toml = value().map(PathBuf::from),
                _ => {}
            }
        }
        let ini = cwd.join(ini.unwrap_or_else(|| PathBuf::from("alembic.ini")));
        let toml = toml
            .map(|t| cwd.join(t))
            .unwrap_or_else(|| ini.parent().unwrap_or(cwd).join("pyproject.toml"));
        Self { ini, section, toml }
    }
}

/// One revision file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// Its id.
    pub id: String,
    /// The revisions it follows (two or more for a merge).
    pub down: Vec<String>,
    /// The file, for messages.
    pub file: PathBuf,
}

/// The revisions in the image and their heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlembicFiles {
    /// Every revision, by id.
    pub revisions: BTreeMap<String, Revision>,
    /// The heads, sorted.
    pub heads: Vec<String>,
    /// The directories read.
    pub dirs: Vec<PathBuf>,
}

/// The `[tool.alembic]` keys of a pyproject.toml that matter here, read line by line
/// (`script_location = "..."`, `version_locations = ["...", ...]` on one line).
fn toml_values(text: &str) -> BTreeMap<String, PyValue> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == "[tool.alembic]";
            continue;
        }
        if !inside {
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            out.insert(k.trim().to_string(), pyscan::parse_value(v.trim()));
        }
    }
    out
}

/// Splits `version_locations` as Alembic does: by `path_separator` (or the deprecated
/// `version_path_separator`), else on spaces and commas.
fn split_locations(raw: &str, separator: Option<&str>) -> Result<Vec<String>, String> {
    let sep = match separator {
        None => {
            return Ok(raw
                .split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect());
        }
        Some("space") => " ",
        Some("newline") => "\n",
        Some("os") | Some(":") => ":",
        Some(";") => ";",
        Some(other) => {
            return Err(format!(
                "path_separator {other:?} is not one Alembic accepts"
            ));
        }
    };
    Ok(raw
        .split(sep)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

/// A location as Alembic resolves it: relative to the working directory; `package:dir`
/// (a Python package resource) cannot be resolved without Python.
fn location(raw: &str, cwd: &Path) -> Result<PathBuf, String> {
    if !raw.starts_with('/') && raw.contains(':') {
        return Err(format!(
            "{raw:?} is a Python package resource; dbinit reads only file system paths"
        ));
    }
    Ok(cwd.join(raw))
}

/// The version directories the configuration names.
pub fn version_dirs(cfg: &AlembicConfig, cwd: &Path) -> Result<(Vec<PathBuf>, bool), String> {
    let here = cfg
        .ini
        .parent()
        .unwrap_or(cwd)
        .to_string_lossy()
        .into_owned();
    let vars = BTreeMap::from([("here", here)]);
    let ini = match std::fs::read_to_string(&cfg.ini) {
        Ok(t) => Some(Ini::parse(&t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", cfg.ini.display())),
    };
    let toml = std::fs::read_to_string(&cfg.toml)
        .map(|t| toml_values(&t))
        .unwrap_or_default();
    if ini.is_none() && toml.is_empty() {
        return Err(format!(
            "no Alembic configuration: {} does not exist (and no [tool.alembic] in {})",
            cfg.ini.display(),
            cfg.toml.display()
        ));
    }
    let get = |key: &str| -> Option<Result<String, String>> {
        ini.as_ref().and_then(|i| i.get(&cfg.section, key, &vars))
    };
    let toml_str = |key: &str| -> Option<Result<String, String>> {
        match toml.get(key)? {
            PyValue::Str(s) => Some(Ok(s.replace("%(here)s", &vars["here"]))),
            other => Some(Err(format!(
                "[tool.alembic] {key} = {other:?} is not a string"
            ))),
        }
    };
    let script = get("script_location")
        .or_else(|| toml_str("script_location"))
        .ok_or_else(|| {
            format!(
                "no script_location in [{}] of {}",
                cfg.section,
                cfg.ini.display()
            )
        })??;
    let recursive = get("recursive_version_locations")
        .and_then(Result::ok)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"));
    let separator = ini.as_ref().and_then(|i| {
        i.raw(&cfg.section, "path_separator")
            .or_else(|| i.raw(&cfg.section, "version_path_separator"))
    });
    let listed = match get("version_locations") {
        Some(raw) => Some(split_locations(&raw?, separator)?),
        None => match toml.get("version_locations") {
            Some(v) => Some(
                v.strings()
                    .map_err(|t| format!("[tool.alembic] version_locations = {t}"))?
                    .into_iter()
                    .map(|s| s.replace("%(here)s", &vars["here"]))
                    .collect(),
            ),
            None => None,
        },
    };
    let dirs = match listed {
        Some(list) => list
            .iter()
            .map(|l| location(l, cwd))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![location(&script, cwd)?.join("versions")],
    };
    Ok((dirs, recursive))
}

/// Whether Alembic takes a file name as a revision file (`_only_source_rev_file`).
fn is_revision_file(name: &str) -> bool {
    name.ends_with(".py") && !name.starts_with(".#") && !name.starts_with("__init__")
}

fn py_files(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        // Alembic skips a version location that does not exist.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if recursive && name != "__pycache__" {
                py_files(&path, recursive, out)?;
            }
        } else if is_revision_file(&name) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one revision file's `revision` and `down_revision`.
fn revision(path: &Path) -> Result<Revision, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let id = match pyscan::module_value(&text, "revision") {
        Some(PyValue::Str(s)) => s,
        Some(other) => {
            return Err(format!(
                "{}: revision = {other:?} is not a string literal",
                path.display()
            ));
        }
        // Alembic's legacy form: the revision is the file name, `<hex>.py`.
        None => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if stem.is_empty() || !stem.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "{}: no `revision = '...'` (Alembic: Could not determine revision id from filename)",
                    path.display()
                ));
            }
            stem.to_ascii_lowercase()
        }
    };
    let down = match pyscan::module_value(&text, "down_revision") {
        Some(v) => v.strings().map_err(|t| {
            format!(
                "{}: down_revision = {t} is not a string, a tuple of strings or None",
                path.display()
            )
        })?,
        None => Vec::new(),
    };
    Ok(Revision {
        id,
        down,
        file: path.to_path_buf(),
    })
}

/// Reads the revision files the configuration names and finds the heads.
pub fn read(cfg: &AlembicConfig, cwd: &Path) -> Result<AlembicFiles, String> {
    let (dirs, recursive) = version_dirs(cfg, cwd)?;
    let mut files = Vec::new();
    for d in &dirs {
        py_files(d, recursive, &mut files)?;
    }
    files.sort();
    let mut revisions = BTreeMap::new();
    for f in files {
        let r = revision(&f)?;
        if let Some(prev) = revisions.insert(r.id.clone(), r.clone()) {
            return Err(format!(
                "revision {} is in two files: {} and {}",
                r.id,
                prev.file.display(),
                r.file.display()
            ));
        }
    }
    if revisions.is_empty() {
        return Err(format!(
            "no revision files in {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let parents: BTreeSet<&str> = revisions
        .values()
        .flat_map(|r| r.down.iter().map(String::as_str))
        .collect();
    let heads = revisions
        .keys()
        .filter(|id| !parents.contains(id.as_str()))
        .cloned()
        .collect();
    Ok(AlembicFiles {
        revisions,
        heads,
        dirs,
    })
}
