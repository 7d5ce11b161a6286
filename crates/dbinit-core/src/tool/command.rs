//! The migration command: a program and its arguments, run as a child process without a
//! shell, from `dbinit run -- CMD ARGS...` or `DBINIT_MIGRATE_COMMAND` (a JSON array).
//!
//! No shell means no quoting rules, no word splitting and no `$VAR` expansion: what the pod
//! spec says is exactly what runs. The one substitution is `$(DATABASE_URL)`, Kubernetes'
//! own syntax, for the tools that take the URL only as an argument (golang-migrate's
//! `-database`), replaced by the URL dbinit builds for the child.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::setting::ConfigError;

/// Where programs are looked for when there is no PATH (an image built `FROM scratch`, as
/// dbinit's own, sets none): the directories container runtimes and shells default to.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What `$(DATABASE_URL)` in an argument is replaced with.
pub const URL_PLACEHOLDER: &str = "$(DATABASE_URL)";

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateCommand {
    argv: Vec<String>,
}

impl MigrateCommand {
    /// A command from its words; `label` names where they came from, for the error.
    pub fn new(argv: Vec<String>, label: &str) -> Result<Self, ConfigError> {
        match argv.first() {
            None => Err(ConfigError(format!(
                "{label}: the migration command is empty; give the program and its arguments, e.g. [\"alembic\", \"upgrade\", \"head\"]"
            ))),
            Some(p) if p.trim().is_empty() => Err(ConfigError(format!(
                "{label}: the migration command's program (its first word) is empty"
            ))),
            Some(_) => Ok(Self { argv }),
        }
    }

    /// Parses `DBINIT_MIGRATE_COMMAND`: a JSON array of strings, as a pod spec's `command`.
    pub fn from_json(raw: &str, label: &str) -> Result<Self, ConfigError> {
        let argv: Vec<String> = serde_json::from_str(raw).map_err(|e| {
            ConfigError(format!(
                "invalid {label}: not a JSON array of strings ({e}); the accepted form is [\"alembic\", \"upgrade\", \"head\"], run without a shell"
            ))
        })?;
        Self::new(argv, &format!("invalid {label}"))
    }

    /// The program, as given (a name looked up on PATH, or a path).
    pub fn program(&self) -> &str {
        &self.argv[0]
    }

    /// The arguments after the program.
    pub fn args(&self) -> &[String] {
        &self.argv[1..]
    }

    /// Every word, the program first.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The arguments with `$(DATABASE_URL)` replaced by `url`.
    pub fn expanded_args(&self, url: &str) -> Vec<String> {
        self.args()
            .iter()
            .map(|a| a.replace(URL_PLACEHOLDER, url))
            .collect()
    }

    /// The command as a person would type it, for logs and messages: words with spaces or
    /// quotes in single quotes.
    pub fn display(&self) -> String {
        self.argv
            .iter()
            .map(|w| {
                if !w.is_empty()
                    && w.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+$()".contains(c))
                {
                    w.clone()
                } else {
                    format!("'{}'", w.replace('\'', r"'\''"))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Finds the program as `execvp` would: a name with a `/` as a path (relative to `cwd`),
/// any other name in the directories of `path`. Not found, or found but not an executable
/// file, is a configuration error (exit 2) naming it: better said before the lock is taken
/// than by a child that never started.
pub fn resolve_program(
    program: &str,
    path: Option<&OsStr>,
    cwd: &Path,
) -> Result<PathBuf, ConfigError> {
    let check = |p: PathBuf| -> Result<PathBuf, String> {
        let meta = std::fs::metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if !meta.is_file() {
            return Err(format!("{} is not a file", p.display()));
        }
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("{} is not executable", p.display()));
        }
        Ok(p)
    };
    if program.contains('/') {
        return check(cwd.join(program)).map_err(|why| {
            ConfigError(format!(
                "the migration command's program {program:?} cannot be run: {why}"
            ))
        });
    }
    let dirs: Vec<PathBuf> =
        std::env::split_paths(path.unwrap_or(OsStr::new(DEFAULT_PATH))).collect();
    let mut seen = Vec::new();
    for d in &dirs {
        let candidate = if d.as_os_str().is_empty() {
            cwd.join(program)
        } else {
            cwd.join(d).join(program)
        };
        if candidate.exists() {
            match check(candidate) {
                Ok(p) => return Ok(p),
                Err(why) => seen.push(why),
            }
        }
    }
    let why = if seen.is_empty() {
        format!(
            "not found in PATH ({})",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        )
    } else {
        seen.join("; ")
    };
    Err(ConfigError(format!(
        "the migration command's program {program:?} cannot be run: {why}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_array_or_a_clear_error() {
        let c = MigrateCommand::from_json(r#"["alembic","upgrade","head"]"#, "X").expect("ok");
        assert_eq!(c.program(), "alembic");
        assert_eq!(c.args(), ["upgrade", "head"]);
        for bad in ["alembic upgrade head", "[]", "[\"\"]", "[1,2]", "{}"] {
            let e = MigrateCommand::from_json(bad, "DBINIT_MIGRATE_COMMAND").expect_err(bad);
            assert!(e.0.contains("DBINIT_MIGRATE_COMMAND"), "{e}");
        }
    }

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let c = MigrateCommand::new(
            vec![
                "migrate".into(),
                "-database".into(),
                "$(DATABASE_URL)".into(),
                "it's up".into(),
            ],
            "x",
        )
        .expect("ok");
        assert_eq!(
            c.display(),
            r"migrate -database $(DATABASE_URL) 'it'\''s up'"
        );
        assert_eq!(
            c.expanded_args("postgresql://u@h/db"),
            ["-database", "postgresql://u@h/db", "it's up"]
        );
    }

    #[test]
    fn programs_are_found_as_execvp_finds_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").expect("write");
        let path = std::env::join_paths([dir.path()]).expect("path");
        assert_eq!(
            resolve_program("tool", Some(&path), Path::new("/")).expect("found"),
            exe
        );
        let e = resolve_program("nope", Some(&path), Path::new("/")).expect_err("missing");
        assert!(
            e.0.contains("\"nope\"") && e.0.contains("not found in PATH"),
            "{e}"
        );
        let e = resolve_program("plain", Some(&path), Path::new("/")).expect_err("not exec");
        assert!(e.0.contains("not executable"), "{e}");
        let e = resolve_program("./plain", None, dir.path()).expect_err("not exec");
        assert!(e.0.contains("not executable"), "{e}");
        assert!(resolve_program("./tool", None, dir.path()).is_ok());
    }
}
