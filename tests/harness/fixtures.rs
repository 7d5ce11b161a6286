//! Set-up that several test files share when they run the `dbinit` binary: a directory of
//! migrations, `dbinit run` against a server (or a pooler in front of it), a spawned run,
//! and the check that a run succeeded (tests/live.rs, tests/pooler.rs, and the job tests).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::{Finished, command};

/// Writes migration files, (name, SQL), into `dir`.
pub fn write_migrations(dir: &Path, files: &[(&str, &str)]) {
    for (n, s) in files {
        std::fs::write(dir.join(n), s).expect("write migration");
    }
}

/// A temp directory holding these migration files.
pub fn migrations(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    write_migrations(dir.path(), files);
    dir
}

/// `n` migrations, each logging its version in `applied_log` (created by V1) and then
/// sleeping `pause` seconds: long enough to interrupt, and countable for double applies.
pub fn logged_migrations(n: u32, pause: f64) -> tempfile::TempDir {
    let dir = migrations(&[(
        "V1__log.sql",
        "CREATE TABLE applied_log (v int NOT NULL, at timestamptz DEFAULT clock_timestamp());\nINSERT INTO applied_log (v) VALUES (1);",
    )]);
    for v in 2..=n {
        std::fs::write(
            dir.path().join(format!("V{v}__step.sql")),
            format!("INSERT INTO applied_log (v) VALUES ({v});\nSELECT pg_sleep({pause});"),
        )
        .expect("write migration");
    }
    dir
}

/// `dbinit run` on database `db` with the migrations in `dir`, reaching PostgreSQL as `env`
/// says (a server's [`crate::Pg::env`] or a pooler's).
pub fn dbinit_run(env: Vec<(String, String)>, db: &str, dir: &Path) -> Command {
    let mut c = command("dbinit");
    c.arg("run")
        .envs(env)
        .env("POSTGRES_DB", db)
        .env("DBINIT_MIGRATIONS_DIR", dir)
        .env("DBINIT_TIMEOUT", "60s");
    c
}

/// Starts `c` with its output piped, for [`crate::finish`].
pub fn spawn_piped(mut c: Command) -> (Child, Instant) {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    (child, Instant::now())
}

/// Asserts that a run exited 0, showing its log when it did not.
pub fn ok(o: &Finished) {
    assert_eq!(o.code, Some(0), "stderr:\n{}", o.stderr);
}
