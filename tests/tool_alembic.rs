//! Tool mode with real Alembic (PyPI alembic 1.20, SQLAlchemy, psycopg2): a project made by
//! `alembic init` and `alembic revision`, upgraded through `dbinit run -- alembic upgrade
//! head`. Bare Alembic races with itself; under dbinit ten runners apply each revision once.
//! An up-to-date database starts no child; a failing revision is exit 5 with Alembic's own
//! words; SIGTERM reaches Alembic and its transaction rolls back; `dbinit wait --tool
//! alembic` returns once the head is applied; after a rollback to an older image, `wait`
//! and `run` go on with a warning.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dbinit_tests::tools::{
    self, assert_all_succeeded, assert_starts_no_child, code_counts, concurrently,
};
use dbinit_tests::{Pg, command, finish, run};

/// An Alembic project made by the real CLI: `alembic init`, an env.py that reads
/// DATABASE_URL (docs/keeping-your-tool.md's lines), and revisions by `alembic revision`.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let p = Self { dir };
        p.alembic(&["-q", "init", "alembic"]);
        let env_py = p.path().join("alembic/env.py");
        let text = std::fs::read_to_string(&env_py).expect("env.py");
        let text = text.replacen(
            "config = context.config\n",
            "config = context.config\n\nimport os, re\nif os.environ.get(\"DATABASE_URL\"):\n    config.set_main_option(\"sqlalchemy.url\", re.sub(r\"^postgres(ql)?://\", \"postgresql+psycopg2://\", os.environ[\"DATABASE_URL\"]).replace(\"%\", \"%%\"))\n",
            1,
        );
        std::fs::write(&env_py, text).expect("write env.py");
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn alembic(&self, args: &[&str]) {
        let out = Command::new(tools::venv_bin("alembic"))
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("alembic");
        assert!(
            out.status.success(),
            "alembic {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `alembic revision --rev-id ID -m MSG`, then its upgrade() runs `statements`.
    fn revision(&self, id: &str, msg: &str, statements: &[&str]) -> PathBuf {
        self.alembic(&["revision", "--rev-id", id, "-m", msg]);
        let file = std::fs::read_dir(self.path().join("alembic/versions"))
            .expect("versions")
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(id))
            })
            .expect("revision file");
        let body: String = statements
            .iter()
            .map(|s| format!("    op.execute({s:?})\n"))
            .collect();
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(
            text.contains("revision: str = "),
            "1.20's typed form: {text}"
        );
        let text = text.replacen(
            "    \"\"\"Upgrade schema.\"\"\"\n    pass\n",
            &format!("    \"\"\"Upgrade schema.\"\"\"\n{body}"),
            1,
        );
        std::fs::write(&file, text).expect("write");
        file
    }
}

/// Three revisions; each records that it ran in `ran` (inside its own transaction).
fn three_revisions(p: &Project, sleep_s: u32) {
    p.revision(
        "a1000001",
        "create users",
        &[
            "CREATE TABLE ran (rev text)",
            "CREATE TABLE users (id int)",
            &format!("SELECT pg_sleep({sleep_s})"),
            "INSERT INTO ran VALUES ('a1000001')",
        ],
    );
    p.revision(
        "b2000002",
        "add email",
        &[
            "ALTER TABLE users ADD COLUMN email text",
            "INSERT INTO ran VALUES ('b2000002')",
        ],
    );
    p.revision(
        "c3000003",
        "add name",
        &[
            "ALTER TABLE users ADD COLUMN name text",
            "INSERT INTO ran VALUES ('c3000003')",
        ],
    );
}

fn dbinit(pg: &Pg, db: &str, dir: &Path, sub: &str) -> Command {
    let bin = tools::venv_bin_dir();
    let mut c = command("dbinit");
    c.arg(sub)
        .envs(pg.env())
        .env("PATH", tools::path_with(&[&bin]))
        .env("POSTGRES_DB", db)
        .env("DBINIT_TIMEOUT", "120s")
        .env(
            "DBINIT_TERMINATION_MESSAGE_PATH",
            dir.join("termination-log"),
        )
        .current_dir(dir);
    c
}

fn upgrade_head(pg: &Pg, db: &str, dir: &Path) -> Command {
    let mut c = dbinit(pg, db, dir, "run");
    c.args(["--", "alembic", "upgrade", "head"]);
    c
}

fn termination(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("termination-log")).unwrap_or_default()
}

fn wait_for_text(path: &Path, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(path)
        .unwrap_or_default()
        .contains(text)
    {
        assert!(
            Instant::now() < deadline,
            "{} never said {text:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bare_alembic_races_and_ten_dbinit_runners_apply_each_revision_once() {
    let pg = Pg::start_new();
    let p = Project::new();
    three_revisions(&p, 5);
    // Without dbinit: ten `alembic upgrade head` at once on a fresh database.
    pg.psql("postgres", "CREATE DATABASE bare");
    let bare = concurrently(10, |_| {
        let mut c = Command::new(tools::venv_bin("alembic"));
        c.args(["upgrade", "head"])
            .current_dir(p.path())
            .env("DATABASE_URL", pg.url("bare"));
        c
    });
    let failed: Vec<_> = bare.iter().filter(|r| r.code != Some(0)).collect();
    assert!(
        !failed.is_empty(),
        "bare Alembic did not race this time: {}",
        code_counts(&bare)
    );
    assert!(
        failed
            .iter()
            .any(|r| r.stderr.contains("already exists") || r.stderr.contains("duplicate key")),
        "{}",
        failed[0].stderr
    );

    // With dbinit: the database does not exist yet either.
    let runs = concurrently(10, |_| upgrade_head(&pg, "shop", p.path()));
    assert_all_succeeded(&runs);
    assert_eq!(
        pg.psql("shop", "SELECT string_agg(rev || '=' || n, ',' ORDER BY rev) FROM (SELECT rev, count(*) n FROM ran GROUP BY rev) x"),
        "a1000001=1,b2000002=1,c3000003=1"
    );
    assert_eq!(
        pg.psql(
            "shop",
            "SELECT string_agg(version_num, ',') FROM alembic_version"
        ),
        "c3000003"
    );
    let ran = runs
        .iter()
        .filter(|r| {
            r.stderr
                .contains("running the migration command under the lock")
        })
        .count();
    assert_eq!(ran, 1, "exactly one runner started Alembic");
}

#[test]
fn up_to_date_starts_no_child_failures_are_exit_5_and_sigterm_rolls_back() {
    let pg = Pg::start_new();
    let p = Project::new();
    three_revisions(&p, 0);
    let out = run(upgrade_head(&pg, "app", p.path()));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stderr.contains("Running upgrade"),
        "Alembic's output is passed through: {}",
        out.stderr
    );

    // Up to date: the command is not started. Proven with one that would fail if it were.
    let c = dbinit(&pg, "app", p.path(), "run");
    let out = assert_starts_no_child(c, "alembic");
    assert!(
        out.stderr.contains("Alembic is up to date"),
        "{}",
        out.stderr
    );
    assert!(
        termination(p.path()).contains("not run (nothing to apply)"),
        "{}",
        termination(p.path())
    );
    // No lock was taken, nothing was written.
    assert!(!out.stderr.contains("migration lock"), "{}", out.stderr);

    // A failing revision: exit 5 with Alembic's error in the termination message.
    let bad = p.revision(
        "d4000004",
        "broken",
        &[
            "CREATE TABLE t_ok (id int)",
            "ALTER TABLE nope ADD COLUMN x int",
        ],
    );
    let out = run(upgrade_head(&pg, "app", p.path()));
    assert_eq!(out.code, Some(5), "{}", out.all_output());
    let tm = termination(p.path());
    assert!(tm.starts_with("migration-failed (exit 5): the migration command `alembic upgrade head` failed: it exited with status 1"), "{tm}");
    assert!(tm.contains("relation \"nope\" does not exist"), "{tm}");
    assert!(!tm.contains(dbinit_tests::PG_PASSWORD), "{tm}");
    assert_eq!(pg.psql("app", "SELECT to_regclass('t_ok') IS NULL"), "t");
    std::fs::remove_file(bad).expect("rm");

    // SIGTERM mid-revision reaches Alembic; its transaction rolls back.
    p.revision(
        "e5000005",
        "slow",
        &["CREATE TABLE t_slow (id int)", "SELECT pg_sleep(120)"],
    );
    let child = upgrade_head(&pg, "app", p.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    pg.wait_for_query("pg_sleep(120)");
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let out = finish(child, started);
    assert_eq!(out.code, Some(8), "{}", out.all_output());
    let tm = termination(p.path());
    assert!(tm.contains("forwarded to the migration command `alembic upgrade head`, which was killed by signal SIGTERM (15)"), "{tm}");
    // dbinit held the lock until Alembic's session was gone: nothing is left running.
    assert_eq!(pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()"), "0");
    assert_eq!(pg.psql("app", "SELECT to_regclass('t_slow') IS NULL"), "t");
    assert_eq!(
        pg.psql(
            "app",
            "SELECT string_agg(version_num, ',') FROM alembic_version"
        ),
        "c3000003"
    );
    pg.assert_no_advisory_lock_soon();
}

#[test]
fn wait_returns_at_the_head_and_a_rollback_is_tolerated_with_a_warning() {
    let pg = Pg::start_new();
    let p = Project::new();
    three_revisions(&p, 0);
    // App pods wait for a database that does not exist yet.
    let log = p.path().join("wait.log");
    let mut w = dbinit(&pg, "deals", p.path(), "wait");
    w.args(["--tool", "alembic"]);
    let waiter = w
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn wait");
    wait_for_text(&log, "waiting for the migration to reach this image's head");
    let out = run(upgrade_head(&pg, "deals", p.path()));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    let status = waiter.wait_with_output().expect("wait").status;
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(said.contains("Alembic is up to date"), "{said}");

    // The newer release adds a revision and migrates...
    p.revision(
        "f6000006",
        "newer",
        &["ALTER TABLE users ADD COLUMN phone text"],
    );
    let out = run(upgrade_head(&pg, "deals", p.path()));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    // ...then `helm rollback` brings back the image whose versions end at c3000003.
    let old = Project::new();
    for f in std::fs::read_dir(p.path().join("alembic/versions"))
        .expect("versions")
        .flatten()
    {
        let name = f.file_name().to_string_lossy().into_owned();
        if name.ends_with(".py") && !name.starts_with("f6000006") {
            std::fs::copy(f.path(), old.path().join("alembic/versions").join(&name)).expect("copy");
        }
    }
    let mut w = dbinit(&pg, "deals", old.path(), "wait");
    w.args(["--tool", "alembic"]);
    let out = run(w);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stderr
            .contains("holds f6000006 that this image does not know"),
        "{}",
        out.stderr
    );
    // Alembic itself would stop with "Can't locate revision": dbinit does not start it.
    let out = run(upgrade_head(&pg, "deals", old.path()));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stderr.contains("does not know") && out.stderr.contains("WARN"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("Can't locate revision"),
        "{}",
        out.stderr
    );
    assert!(
        termination(old.path()).contains("not run (the database is ahead of this image)"),
        "{}",
        termination(old.path())
    );
    // status reports the tool's state, in JSON too.
    let mut s = dbinit(&pg, "deals", old.path(), "status");
    s.args([
        "--output",
        "json",
        "--exit-code",
        "--",
        "alembic",
        "upgrade",
        "head",
    ]);
    let out = run(s);
    assert_eq!(out.code, Some(11), "{}", out.all_output());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["tool"]["tool"], "alembic");
    assert_eq!(v["tool"]["verdict"], "ahead");
    assert_eq!(v["tool"]["ahead"][0], "f6000006");
    assert_eq!(v["tool"]["image_head"][0], "c3000003");
}
