//! `dbinit-job -- CMD` (tool mode) on a real kube-apiserver with a real PostgreSQL: the
//! status ConfigMap, the Failed Event and the termination message of a failed command carry
//! its exit status and last stderr lines, scrubbed; a real dbmate run records the tool's
//! versions and, when up to date, `not run`; SIGTERM reaches the command and the Lease is
//! released.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dbinit_tests::fixtures::{ok, spawn_piped};
use dbinit_tests::job_world::JobWorld;
use dbinit_tests::{KubeApi, PG_PASSWORD, finish, run, tools};

/// `dbinit-job` in tool mode, run in `dir` with `dbmate`'s directory on PATH.
fn job(w: &JobWorld<'_>, dir: &Path, args: &[&str]) -> Command {
    let dbmate = tools::dbmate();
    let mut c = w.cmd("admin-token", dir);
    c.env_remove("DBINIT_MIGRATIONS_DIR")
        .env("PATH", tools::path_with(&[dbmate.parent().expect("bin")]))
        .env(
            "DBINIT_TERMINATION_MESSAGE_PATH",
            dir.join("termination-log"),
        )
        .env("POD_NAME", "migrate-tool")
        .current_dir(dir)
        .arg("--")
        .args(args);
    c
}

/// Events are posted by a task the job flushes before it exits; read once settled.
fn settled(w: &JobWorld<'_>, want: usize) -> Vec<(String, String, String, serde_json::Value)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ev = w.events();
        if ev.len() >= want || Instant::now() >= deadline {
            return ev;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_failed_command_is_recorded_with_its_status_and_scrubbed_stderr() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "tool-fail");
    let dir = tempfile::tempdir().expect("tmp");
    let out = run(job(
        &w,
        dir.path(),
        &[
            "sh",
            "-c",
            "echo 'connecting with '\"$PGPASSWORD\" >&2; echo 'ERROR: relation \"nope\" does not exist' >&2; exit 1",
        ],
    ));
    assert_eq!(out.code, Some(5), "{}", out.all_output());
    let s = w.status();
    assert_eq!(s["phase"], "Failed", "{s}");
    assert_eq!(s["exitCode"], "5", "{s}");
    assert_eq!(s["commandStatus"], "exited with status 1", "{s}");
    assert!(
        s["command"]
            .as_str()
            .is_some_and(|c| c.starts_with("sh -c")),
        "{s}"
    );
    let error = s["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("exited with status 1")
            && error.contains("relation \"nope\" does not exist"),
        "{error}"
    );
    assert!(error.contains("connecting with ***"), "{error}");
    let tm = std::fs::read_to_string(dir.path().join("termination-log")).unwrap_or_default();
    assert!(
        tm.starts_with("migration-failed (exit 5)") && tm.contains("relation \"nope\""),
        "{tm}"
    );
    let ev = settled(&w, 2);
    let failed = ev.iter().find(|e| e.0 == "Failed").expect("a Failed event");
    assert_eq!(failed.1, "Warning");
    assert!(
        failed.2.contains("exited with status 1") && failed.2.contains("does not exist"),
        "{}",
        failed.2
    );
    for text in [&s.to_string(), &tm, &failed.2, &out.all_output()] {
        assert!(!text.contains(PG_PASSWORD), "the password leaked: {text}");
    }
    assert!(
        w.lease_holder().unwrap_or_default().is_empty(),
        "the Lease is released"
    );
}

#[test]
fn dbmate_under_the_lease_then_up_to_date_is_not_run() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "tool-dbmate");
    let dir = tempfile::tempdir().expect("tmp");
    let m = dir.path().join("db/migrations");
    std::fs::create_dir_all(&m).expect("mkdir");
    std::fs::write(
        m.join("20260101000001_items.sql"),
        "-- migrate:up\nCREATE TABLE items (id int);\n-- migrate:down\n",
    )
    .expect("write");
    let up = ["dbmate", "--no-dump-schema", "up"];
    ok(&run(job(&w, dir.path(), &up)));
    let s = w.status();
    assert_eq!(
        (s["phase"].as_str(), s["tool"].as_str()),
        (Some("Succeeded"), Some("dbmate")),
        "{s}"
    );
    assert_eq!(s["commandStatus"], "exited with status 0", "{s}");
    assert_eq!(s["targetVersion"], "20260101000001", "{s}");
    assert_eq!(s["appliedVersion"], "20260101000001", "{s}");
    assert_eq!(s["appliedThisRun"], "20260101000001", "{s}");
    ok(&run(job(&w, dir.path(), &up)));
    let s = w.status();
    assert_eq!(s["commandStatus"], "not run", "{s}");
    assert_eq!(s["appliedThisRun"], "", "{s}");
    assert_eq!(w.history().len(), 2);
}

#[test]
fn sigterm_reaches_the_command_and_the_lease_is_released() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "tool-term");
    let dir = tempfile::tempdir().expect("tmp");
    let (child, started) = spawn_piped(job(
        &w,
        dir.path(),
        &[
            "sh",
            "-c",
            "trap 'echo got-term >&2; exit 0' TERM; touch started; while :; do sleep 0.1; done",
        ],
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.path().join("started").exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = finish(child, started);
    assert_eq!(out.code, Some(8), "{}", out.all_output());
    assert!(out.stderr.contains("got-term"), "{}", out.stderr);
    let s = w.status();
    assert_eq!(
        (s["phase"].as_str(), s["exitCode"].as_str()),
        (Some("Failed"), Some("8")),
        "{s}"
    );
    assert!(
        s["error"]
            .as_str()
            .is_some_and(|e| e.contains("forwarded to the migration command")),
        "{s}"
    );
    assert!(
        w.lease_holder().unwrap_or_default().is_empty(),
        "the Lease is released"
    );
}
