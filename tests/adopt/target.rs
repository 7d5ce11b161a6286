//! What the adoption tests share: the small migration set and the Agentic Deals one, a
//! target database built by "another tool" from fixtures with that tool's real DDL
//! (tests/fixtures/adopt/), and the checks on a finished run.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use dbinit_tests::{Finished, Pg, command, run};

/// The documented exit code of a database dbinit refuses to run on blind.
pub const UNADOPTED: i32 = 9;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/adopt")
        .join(name)
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The small set the tool tests share: the other tool applied 1-3, 4 is new.
pub const SMALL: [(&str, &str); 4] = [
    (
        "V1__accounts.sql",
        "CREATE TABLE accounts (id int PRIMARY KEY);",
    ),
    (
        "V2__orders.sql",
        "CREATE TABLE orders (id int PRIMARY KEY, account_id int REFERENCES accounts);",
    ),
    (
        "V3__orders_total.sql",
        "ALTER TABLE orders ADD COLUMN total numeric(12,2);",
    ),
    (
        "V4__invoices.sql",
        "CREATE TABLE invoices (id int PRIMARY KEY, order_id int REFERENCES orders);",
    ),
];

pub fn small_set() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    for (n, s) in SMALL {
        std::fs::write(dir.path().join(n), s).expect("write migration");
    }
    dir
}

pub struct Target<'a> {
    pub pg: &'a Pg,
    pub db: String,
    pub dir: PathBuf,
    pub extra: Vec<(String, String)>,
}

impl<'a> Target<'a> {
    pub fn new(pg: &'a Pg, db: &str, dir: &Path) -> Self {
        Self {
            pg,
            db: db.into(),
            dir: dir.to_path_buf(),
            extra: vec![],
        }
    }

    pub fn with(mut self, k: &str, v: impl ToString) -> Self {
        self.extra.push((k.into(), v.to_string()));
        self
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = command("dbinit");
        c.args(args)
            .envs(self.pg.env())
            .env("POSTGRES_DB", &self.db)
            .env("DBINIT_MIGRATIONS_DIR", &self.dir)
            .env("DBINIT_TIMEOUT", "60s")
            .envs(self.extra.iter().cloned());
        c
    }

    pub fn run(&self, args: &[&str]) -> Finished {
        run(self.cmd(args))
    }

    pub fn sql(&self, q: &str) -> String {
        self.pg.psql(&self.db, q)
    }

    /// Creates the database and applies the first `n` files of the set by hand, as the
    /// other tool did, then that tool's history fixture, if any.
    pub fn built_by_other_tool(&self, n: usize, tool_fixture: Option<&str>) {
        self.pg
            .psql("postgres", &format!("CREATE DATABASE \"{}\"", self.db));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .expect("set dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort_by_key(|p| version_of(p));
        for f in files.iter().take(n) {
            self.sql(&read(f));
        }
        if let Some(f) = tool_fixture {
            self.sql(&read(&fixture(f)));
        }
    }

    /// Content and layout of a table, to prove it was left untouched.
    pub fn fingerprint(&self, table: &str) -> String {
        self.sql(&format!(
            "SELECT (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t) || ' ' || (SELECT string_agg(column_name || ':' || data_type || ':' || is_nullable, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = '{table}')"
        ))
    }

    /// Applied versions in dbinit's history ("1,2,3"), or "absent".
    pub fn history(&self) -> String {
        if self.sql("SELECT to_regclass('refinery_schema_history') IS NULL") == "t" {
            return "absent".into();
        }
        self.pg.history(&self.db)
    }

    /// Audit rows as "action:version:source", one per line, in version order.
    pub fn audit(&self) -> String {
        self.sql("SELECT string_agg(action || ':' || version || ':' || source, E'\\n' ORDER BY id) FROM dbinit_audit")
    }
}

pub fn version_of(p: &Path) -> i32 {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.trim_start_matches('V')
        .split("__")
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(i32::MAX)
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

/// The repository's migrations (the Agentic Deals schema) and seeds, plus a migration written
/// after the switch to dbinit.
pub fn agentic_deals_plus_v8() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let src = repo().join("migrations");
    for e in std::fs::read_dir(&src).expect("migrations/").flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "sql") {
            std::fs::copy(&p, dir.path().join(e.file_name())).expect("copy migration");
        }
    }
    std::fs::create_dir(dir.path().join("seeds")).expect("mkdir seeds");
    for e in std::fs::read_dir(src.join("seeds"))
        .expect("seeds/")
        .flatten()
    {
        std::fs::copy(e.path(), dir.path().join("seeds").join(e.file_name())).expect("copy seed");
    }
    std::fs::write(
        dir.path().join("V8__deal_alert_threshold.sql"),
        "-- Alert when a tracked deal drops by at least this percentage.\nALTER TABLE tracked_deals ADD COLUMN alert_drop_pct numeric(5,2) CHECK (alert_drop_pct BETWEEN 0 AND 100);\n",
    )
    .expect("write V8");
    dir
}
