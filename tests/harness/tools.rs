//! Programs the tests need that come from elsewhere, installed by a script the Makefile runs
//! before the integration tier and found the same way here (the script is a no-op when they
//! are cached, so a single test binary run by hand installs them too):
//! - the other teams' migration tools from their registries, sqlx-cli (crates.io) and dbmate
//!   (npm), by scripts/migration-tools.sh into `~/.cache/dbinit/tools`;
//! - the previous release's `dbinit`, built from git by scripts/previous-release.sh into
//!   `~/.cache/dbinit/previous-release`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{PG_PASSWORD, Pg};

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
}

/// The migration tools, installed once per test binary when missing.
pub fn migration_tools() -> &'static MigrationTools {
    static TOOLS: OnceLock<MigrationTools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let cache = script("migration-tools.sh");
        let t = MigrationTools {
            sqlx: cache.join("cargo/bin/sqlx"),
            dbmate: cache.join("npm/node_modules/.bin/dbmate"),
        };
        for p in [&t.sqlx, &t.dbmate] {
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
