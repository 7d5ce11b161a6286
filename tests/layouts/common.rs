//! What the layout tests share: running dbinit and the other tools on a folder, making a
//! tool's next migration file, and looking at tables.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dbinit_tests::{Finished, Pg, command, run};

/// dbinit against `db` with the migrations in `dir`, plus `extra` settings.
pub fn dbinit(pg: &Pg, db: &str, dir: &Path, extra: &[(&str, &str)], args: &[&str]) -> Finished {
    let mut c = command("dbinit");
    c.args(args)
        .envs(pg.env())
        .env("POSTGRES_DB", db)
        .env("DBINIT_MIGRATIONS_DIR", dir)
        .env("DBINIT_TIMEOUT", "60s")
        .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    run(c)
}

pub fn code(o: &Finished, want: i32) {
    assert_eq!(
        o.code,
        Some(want),
        "stdout:\n{}\nstderr:\n{}",
        o.stdout,
        o.stderr
    );
}

pub fn mentions(o: &Finished, words: &[&str]) {
    let all = o.all_output();
    for w in words {
        assert!(all.contains(w), "output should mention {w:?}:\n{all}");
    }
}

/// Another tool's command, with a clean environment (nothing from the developer's shell).
pub fn tool_cmd(program: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default());
    c
}

/// A tool run that must succeed.
pub fn tool(c: Command) -> Finished {
    let o = run(c);
    code(&o, 0);
    o
}

/// The `.sql` files of `dir`, by name.
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn version(file: &str) -> &str {
    file.split('_').next().unwrap_or_default()
}

/// Runs a tool's "new migration" command (`make`) and returns the file it made (the up file
/// when it makes two). sqlx and dbmate take the version from the UTC second, so a file made
/// in the same second as the previous one shares its version: such a file is removed and
/// made again once the clock has moved on (bounded).
pub fn add(dir: &Path, mut make: impl FnMut() -> Finished) -> PathBuf {
    for _ in 0..100 {
        let before = files(dir);
        make();
        let new: Vec<String> = files(dir)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        assert!(
            !new.is_empty(),
            "the tool made no file in {}",
            dir.display()
        );
        if before.iter().any(|b| version(b) == version(&new[0])) {
            for f in &new {
                std::fs::remove_file(dir.join(f)).expect("remove the same-second file");
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let up = new
            .iter()
            .find(|f| !f.ends_with(".down.sql"))
            .expect("an up file");
        return dir.join(up);
    }
    panic!("the clock did not move on within 5 s");
}

/// Content and layout of a table, to prove it was left untouched.
pub fn fingerprint(pg: &Pg, db: &str, table: &str) -> String {
    pg.psql(
        db,
        &format!(
            "SELECT (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t) || ' ' || (SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = '{table}')"
        ),
    )
}

pub fn version_column(pg: &Pg, db: &str, table: &str) -> String {
    pg.psql(
        db,
        &format!("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attname = 'version'"),
    )
}
