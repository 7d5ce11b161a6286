//! Programs the tests need that come from elsewhere, installed by a script the Makefile runs
//! before the integration tier and found the same way here (the script is a no-op when they
//! are cached, so a single test binary run by hand installs them too):
//! - the other teams' migration tools from their registries, sqlx-cli (crates.io), dbmate
//!   (npm), Alembic and Django (PyPI), by scripts/migration-tools.sh into
//!   `~/.cache/dbinit/tools`;
//! - the previous release's `dbinit`, built from git by scripts/previous-release.sh into
//!   `~/.cache/dbinit/previous-release`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use crate::{Finished, PG_PASSWORD, Pg, finish};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Runs `scripts/NAME` and returns the path it prints.
fn script(name: &str) -> PathBuf {
    let out = Command::new(repo().join("scripts").join(name))
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{name}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The installed migration tools.
#[derive(Debug)]
pub struct MigrationTools {
    /// sqlx-cli 0.9.0.
    pub sqlx: PathBuf,
    /// dbmate 2.36.0 (npm's wrapper around its static binary).
    pub dbmate: PathBuf,
    /// dbmate's static binary itself, as npm ships it (what an image copies).
    pub dbmate_binary: PathBuf,
    /// A Python virtualenv with Alembic 1.20.1, SQLAlchemy, psycopg2 and Django 5.
    pub venv: PathBuf,
}

/// The migration tools, installed once per test binary when missing.
pub fn migration_tools() -> &'static MigrationTools {
    static TOOLS: OnceLock<MigrationTools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let cache = script("migration-tools.sh");
        let t = MigrationTools {
            sqlx: cache.join("cargo/bin/sqlx"),
            dbmate: cache.join("npm/node_modules/.bin/dbmate"),
            dbmate_binary: cache.join("npm/node_modules/@dbmate/linux-x64/bin/dbmate"),
            venv: cache.join("venv"),
        };
        for p in [
            &t.sqlx,
            &t.dbmate,
            &t.dbmate_binary,
            &t.venv.join("bin/alembic"),
        ] {
            assert!(
                p.exists(),
                "{} is missing after scripts/migration-tools.sh",
                p.display()
            );
        }
        t
    })
}

/// The previous release's `dbinit` binary, built from git once when missing.
pub fn previous_release() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| script("previous-release.sh"))
}

impl Pg {
    /// A `DATABASE_URL` for `db` as the superuser over TCP, TLS off (lib/pq, which dbmate
    /// uses, would otherwise require it).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PG_PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }
}

/// A program of the tools' Python virtualenv (`alembic`, `python`, `django-admin`).
pub fn venv_bin(name: &str) -> PathBuf {
    migration_tools().venv.join("bin").join(name)
}

/// The virtualenv's `bin`, for PATH.
pub fn venv_bin_dir() -> PathBuf {
    migration_tools().venv.join("bin")
}

/// sqlx-cli.
pub fn sqlx() -> PathBuf {
    migration_tools().sqlx.clone()
}

/// dbmate's static binary (no Node.js needed to run it).
pub fn dbmate() -> PathBuf {
    migration_tools().dbmate_binary.clone()
}

/// A PATH with `first` before the usual directories.
pub fn path_with(first: &[&Path]) -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = first.iter().map(|p| p.to_path_buf()).collect();
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH")
}

/// Starts `n` copies of `make()` at once and waits for all of them (each bounded by its own
/// timeouts).
pub fn concurrently(n: usize, make: impl Fn(usize) -> Command) -> Vec<Finished> {
    let started = Instant::now();
    let children: Vec<Child> = (0..n)
        .map(|i| {
            let mut c = make(i);
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().expect("spawn")
        })
        .collect();
    children.into_iter().map(|c| finish(c, started)).collect()
}

/// Exit codes of finished processes, sorted, for messages: "Some(0)×9 Some(1)×1".
pub fn code_counts(runs: &[Finished]) -> String {
    let mut codes: Vec<Option<i32>> = runs.iter().map(|r| r.code).collect();
    codes.sort();
    let mut out = Vec::new();
    let mut i = 0;
    while i < codes.len() {
        let n = codes[i..].iter().take_while(|c| **c == codes[i]).count();
        out.push(format!("{:?}×{n}", codes[i]));
        i += n;
    }
    out.join(" ")
}

/// Asserts that every one of `runs` exited 0, naming all their codes when one did not.
pub fn assert_all_succeeded(runs: &[Finished]) {
    for r in runs {
        assert_eq!(r.code, Some(0), "{}: {}", code_counts(runs), r.all_output());
    }
}

/// Runs `c`, a `dbinit run` set up for `tool`, with a command that would fail if it ran in
/// place of the tool's, and asserts that dbinit did not start it: the proof that an up-to-date
/// check costs no child. Returns the run for the caller's own checks.
pub fn assert_starts_no_child(mut c: Command, tool: &str) -> Finished {
    c.args(["--tool", tool, "--", "sh", "-c", "echo CHILD-RAN; exit 97"]);
    let out = crate::run(c);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(!printed(&out, "CHILD-RAN"), "{}", out.all_output());
    out
}

/// `dbinit SUB` against `db` on `pg`, run in the project directory `dir` with `bins` first
/// on PATH, its termination message written to `dir/termination-log`.
pub fn dbinit(pg: &Pg, db: &str, dir: &Path, sub: &str, bins: &[&Path]) -> Command {
    let mut c = crate::command("dbinit");
    c.arg(sub)
        .envs(pg.env())
        .env("PATH", path_with(bins))
        .env("POSTGRES_DB", db)
        .env("DBINIT_TIMEOUT", "120s")
        .env(
            "DBINIT_TERMINATION_MESSAGE_PATH",
            dir.join("termination-log"),
        )
        .current_dir(dir);
    c
}

/// What the last dbinit run in `dir` wrote as its termination message.
pub fn termination(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("termination-log")).unwrap_or_default()
}

/// Whether a line of `out` is exactly `line`: a child's own output, not a log line that
/// quotes the command.
pub fn printed(out: &Finished, line: &str) -> bool {
    out.stdout
        .lines()
        .chain(out.stderr.lines())
        .any(|l| l == line)
}

/// The contents of a table as `key=count` pairs, for "each applied once" checks.
pub fn counts(pg: &Pg, db: &str, table: &str, key: &str) -> String {
    pg.psql(
        db,
        &format!("SELECT string_agg(k || '=' || n, ',' ORDER BY k) FROM (SELECT {key}::text k, count(*) n FROM {table} GROUP BY 1) x"),
    )
}
