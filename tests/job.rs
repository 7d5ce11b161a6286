//! `dbinit-job` against a real kube-apiserver + etcd and a real PostgreSQL.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use dbinit_tests::fixtures::{migrations, ok, spawn_piped};
use dbinit_tests::job_world::{JobWorld, LEASE, create_rbac, deploy_rbac};
use dbinit_tests::{Finished, KubeApi, Pg, PgOpts, finish, run};

/// Seconds since the epoch from the RFC 3339 UTC timestamps dbinit-job writes.
fn secs(ts: &str) -> f64 {
    let (date, time) = ts.trim_end_matches('Z').split_once('T').expect("RFC 3339");
    let d: Vec<i64> = date.split('-').map(|x| x.parse().expect("date")).collect();
    let (y, m, day) = (d[0] - i64::from(d[1] <= 2), d[1], d[2]);
    // Days from civil (Howard Hinnant's algorithm).
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t: Vec<f64> = time.split(':').map(|x| x.parse().expect("time")).collect();
    days as f64 * 86400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

#[test]
fn five_jobs_at_once_take_turns_with_increasing_epochs() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "five");
    let dir = migrations(&[
        (
            "V1__log.sql",
            "CREATE TABLE applied_log (m text);\nINSERT INTO applied_log VALUES ('V1');",
        ),
        (
            "V2__slow.sql",
            "SELECT pg_sleep(0.5);\nINSERT INTO applied_log VALUES ('V2');",
        ),
    ]);
    let children: Vec<_> = (0..5).map(|_| w.spawn(dir.path())).collect();
    let outs: Vec<Finished> = children.into_iter().map(|(c, s)| finish(c, s)).collect();
    outs.iter().for_each(ok);

    assert_eq!(
        w.sql("SELECT string_agg(m, ',' ORDER BY m) FROM applied_log"),
        "V1,V2"
    );
    assert_eq!(w.sql("SELECT count(*) FROM refinery_schema_history"), "2");
    let mut h = w.history();
    assert_eq!(h.len(), 5, "one history line per run: {h:?}");
    h.sort_by(|a, b| {
        secs(a["startedAt"].as_str().unwrap_or(""))
            .total_cmp(&secs(b["startedAt"].as_str().unwrap_or("")))
    });
    for pair in h.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            b["epoch"].as_i64() > a["epoch"].as_i64(),
            "epochs strictly increase in start order: {a} then {b}"
        );
        assert!(
            secs(b["startedAt"].as_str().unwrap_or(""))
                >= secs(a["finishedAt"].as_str().unwrap_or("")),
            "holders never overlap: {a} then {b}"
        );
        assert_ne!(a["holder"], b["holder"]);
    }
    assert!(
        h.iter()
            .all(|r| r["phase"] == "Succeeded" && r["exitCode"] == 0)
    );
    let applied: Vec<&str> = h
        .iter()
        .map(|r| r["appliedThisRun"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        applied.iter().filter(|a| !a.is_empty()).count(),
        1,
        "one run did the work: {applied:?}"
    );
}

#[test]
fn holder_killed_mid_migration_is_taken_over_after_lease_expiry() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "killed");
    let slow = migrations(&[(
        "V1__work.sql",
        "CREATE TABLE from_killed (id int);\nSELECT pg_sleep(60);",
    )]);
    let fast = migrations(&[("V1__work.sql", "CREATE TABLE from_successor (id int);")]);
    let (holder, _) = w.spawn(slow.path());
    w.pg.wait_for_query("pg_sleep(60)");
    let (successor, s_started) = w.spawn(fast.path());
    let killed_at = wall_now();
    let mut holder = holder;
    holder.kill().expect("SIGKILL the holder");
    let _ = holder.wait();
    let out = finish(successor, s_started);
    ok(&out);
    let h = w.history();
    assert_eq!(h.len(), 1, "the killed holder recorded nothing: {h:?}");
    let took_over = secs(h[0]["startedAt"].as_str().unwrap_or("")) - killed_at;
    // Expiry is judged on the successor's own clock from its first look at the Lease; three
    // lease durations leave room for a loaded machine, not for a Lease that never expires.
    assert!(
        took_over < 3.0 * 4.0,
        "took over {took_over:.1}s after the kill (lease {LEASE} + 2s)"
    );
    assert!(
        out.stderr.contains("took over an expired lease"),
        "{}",
        out.stderr
    );
    assert_eq!(w.sql("SELECT to_regclass('from_killed') IS NULL AND to_regclass('from_successor') IS NOT NULL"), "t");
    assert_eq!(w.sql("SELECT count(*) FROM refinery_schema_history"), "1");
}

#[test]
fn a_waiter_acquires_within_a_second_of_a_clean_release() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "handoff");
    // Long enough (> lease duration) that only a release, not expiry, explains a quick handoff.
    let dir = migrations(&[("V1__slow.sql", "SELECT pg_sleep(5);")]);
    let (first, f_started) = w.spawn(dir.path());
    w.pg.wait_for_query("pg_sleep(5)");
    let (second, s_started) = w.spawn(dir.path());
    ok(&finish(first, f_started));
    ok(&finish(second, s_started));
    let mut h = w.history();
    assert_eq!(h.len(), 2);
    h.sort_by(|a, b| {
        secs(a["startedAt"].as_str().unwrap_or(""))
            .total_cmp(&secs(b["startedAt"].as_str().unwrap_or("")))
    });
    let gap = secs(h[1]["startedAt"].as_str().unwrap_or(""))
        - secs(h[0]["finishedAt"].as_str().unwrap_or(""));
    // A takeover by expiry comes at least 2/3 of the lease (4 s) after the last renewal.
    assert!(
        (0.0..2.5).contains(&gap),
        "second holder started {gap:.3}s after the first finished"
    );
    assert_eq!(
        h[1]["appliedThisRun"], "",
        "nothing left for the second run"
    );
}

#[test]
fn apiserver_gone_fences_the_holder_and_rolls_back() {
    let api = KubeApi::start();
    let w = JobWorld::new(&api, "fenced");
    let slow = migrations(&[(
        "V1__work.sql",
        "CREATE TABLE from_fenced (id int);\nSELECT pg_sleep(60);",
    )]);
    let (holder, started) = w.spawn(slow.path());
    w.pg.wait_for_query("pg_sleep(60)");
    api.stop();
    let out = finish(holder, started);
    let exited = wall_now();
    assert_eq!(out.code, Some(7), "{}", out.stderr);
    assert!(out.stderr.contains("lost the lease"), "{}", out.stderr);
    // It stopped itself before anyone else could have taken the lease: renew deadline (3s)
    // after its last renewal, inside the lease duration (4s) from that renewal (the renewal
    // etcd kept, read once the apiserver is back).
    api.restart();
    let lease = w.lease().expect("the Lease");
    let renewed = secs(lease["spec"]["renewTime"].as_str().unwrap_or(""));
    let fenced_after = exited - renewed;
    assert!(
        (0.0..4.0).contains(&fenced_after),
        "exited {fenced_after:.2}s after its last renewal: {lease}"
    );
    // Its migration was rolled back.
    w.pg.assert_no_advisory_lock_soon();
    assert_eq!(w.sql("SELECT to_regclass('from_fenced') IS NULL"), "t");

    let fast = migrations(&[("V1__work.sql", "CREATE TABLE from_fenced (id int);")]);
    let out = run(w.cmd("admin-token", fast.path()));
    ok(&out);
    assert_eq!(w.sql("SELECT count(*) FROM refinery_schema_history"), "1");
}

fn bind_user(api: &KubeApi, ns: &str, role: &str, user: &str) {
    let json = format!(
        r#"{{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{{"name":"{role}-{user}"}},"roleRef":{{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"{role}"}},"subjects":[{{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"{user}"}}]}}"#
    );
    let (code, body) = api.admin(
        "POST",
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
        Some(&json),
    );
    assert_eq!(code, 201, "bind {user}: {body}");
}

#[test]
fn the_shipped_role_suffices_and_missing_update_is_exit_4() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "rbac");
    let rbac = deploy_rbac();
    create_rbac(api, &w.ns, &rbac);
    // The Role's name as the manifest gives it.
    let role_doc = rbac
        .split("\n---\n")
        .find(|d| d.lines().any(|l| l == "kind: Role"))
        .expect("deploy/rbac.yaml has a Role");
    let role = role_doc
        .split_once("metadata:\n  name: ")
        .and_then(|(_, rest)| rest.lines().next())
        .expect("the Role has metadata.name")
        .trim()
        .to_string();
    bind_user(api, &w.ns, &role, "app-user");
    let dir = migrations(&[("V1__a.sql", "CREATE TABLE a (id int);")]);
    let out = run(w.cmd("app-token", dir.path()));
    ok(&out);
    // Two at once: one waits, so `watch` by name is exercised too, on existing objects.
    let spawn = || spawn_piped(w.cmd("app-token", dir.path()));
    let (a, b) = (spawn(), spawn());
    ok(&finish(a.0, a.1));
    ok(&finish(b.0, b.1));
    assert_eq!(w.history().len(), 3);

    // The same Role without `update` on leases.
    let limited = rbac.replace(
        "verbs: [\"get\", \"watch\", \"update\"]",
        "verbs: [\"get\", \"watch\"]",
    );
    let limited: String = limited
        .split("\n---\n")
        .filter(|d| d.lines().any(|l| l == "kind: Role"))
        .collect::<Vec<_>>()
        .join("")
        .replace(
            &format!("metadata:\n  name: {role}\n"),
            &format!("metadata:\n  name: {role}-limited\n"),
        );
    create_rbac(api, &w.ns, &limited);
    bind_user(api, &w.ns, &format!("{role}-limited"), "limited-user");
    let out = run(w.cmd("limited-token", dir.path()));
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot update resource \"leases\""),
        "names the missing permission: {}",
        out.stderr
    );
}

#[test]
fn status_configmap_after_success_and_after_a_failing_migration() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "status");
    let dir = migrations(&[("V1__a.sql", "CREATE TABLE a (id int);")]);
    ok(&run(w.cmd("admin-token", dir.path())));
    let s = w.status();
    assert_eq!(s["phase"], "Succeeded");
    assert_eq!(s["appliedVersion"], "1");
    assert_eq!(s["targetVersion"], "1");
    assert_eq!(s["appliedThisRun"], "V1__a");
    assert_eq!(s["exitCode"], "0");
    assert_eq!(s["database"], w.db.as_str());
    assert!(s["epoch"].as_str().unwrap_or("").parse::<i32>().is_ok());
    assert!(!s["migrationSetChecksum"].as_str().unwrap_or("").is_empty());
    let first_epoch: i32 = s["epoch"].as_str().unwrap_or("0").parse().expect("epoch");

    std::fs::write(
        dir.path().join("V2__bad.sql"),
        "SELECT * FROM missing_table;",
    )
    .expect("write");
    let out = run(w.cmd("admin-token", dir.path()));
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    let s = w.status();
    assert_eq!(s["phase"], "Failed");
    assert_eq!(s["exitCode"], "5");
    assert_eq!(s["appliedVersion"], "1");
    assert_eq!(s["targetVersion"], "2");
    assert_eq!(s["pending"], "V2__bad");
    let err = s["error"].as_str().unwrap_or("");
    assert!(err.contains("V2__bad") && err.contains("42P01"), "{err}");
    assert!(!err.contains(dbinit_tests::PG_PASSWORD));
    let epoch: i32 = s["epoch"].as_str().unwrap_or("0").parse().expect("epoch");
    assert!(epoch > first_epoch);
    assert_eq!(w.history().len(), 2);
}

#[test]
fn no_rbac_at_all_is_exit_4_at_once() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "norbac");
    let dir = migrations(&[("V1__a.sql", "SELECT 1;")]);
    let out = run(w.cmd("nobody-token", dir.path()));
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.stderr.contains("forbidden"), "{}", out.stderr);
    // At once: not after retrying until DBINIT_TIMEOUT (60 s).
    assert!(out.elapsed < Duration::from_secs(30), "{:?}", out.elapsed);
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -TERM {}", child.id());
}

#[test]
fn readiness_is_waited_for_before_the_lease_is_taken() {
    let api = KubeApi::shared();
    let w = JobWorld::with_pg(api, "ready-first", Pg::init(PgOpts::default()));
    let dir = migrations(&[("V1__a.sql", "CREATE TABLE a (id int);")]);
    let log = tempfile::NamedTempFile::new().expect("log file");
    let started = Instant::now();
    let job = w
        .cmd("admin-token", dir.path())
        .stdout(Stdio::null())
        .stderr(log.reopen().expect("log file"))
        .spawn()
        .expect("spawn dbinit-job");
    // PostgreSQL is down: the job waits for it (seen retrying twice), and holds no Lease
    // meanwhile.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(log.path())
        .unwrap_or_default()
        .matches("postgres not ready")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "never retried PostgreSQL");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        w.lease_holder(),
        None,
        "no Lease is taken while the database is unreachable"
    );
    w.pg.start();
    let mut out = finish(job, started);
    out.stderr = std::fs::read_to_string(log.path()).expect("the job's log");
    ok(&out);
    assert_eq!(w.lease_holder().as_deref(), Some(""), "released at the end");
    let waited = out.stderr.find("postgres not ready").expect("it waited");
    let leased = out
        .stderr
        .find("acquired the lease")
        .expect("it took the Lease");
    assert!(
        waited < leased,
        "readiness before the Lease: {}",
        out.stderr
    );
    assert_eq!(w.sql("SELECT count(*) FROM refinery_schema_history"), "1");
}

#[test]
fn sigterm_releases_the_lease_at_once_and_records_what_was_applied() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "sigterm");
    let dir = migrations(&[
        ("V1__a.sql", "CREATE TABLE a (id int);"),
        (
            "V2__slow.sql",
            "CREATE TABLE b (id int);\nSELECT pg_sleep(30);",
        ),
    ]);
    let mut cmd = w.cmd("admin-token", dir.path());
    cmd.env("DBINIT_TIMEOUT", "3s")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (job, started) = (cmd.spawn().expect("spawn dbinit-job"), Instant::now());
    w.pg.wait_for_query("pg_sleep(30)");
    let signalled = Instant::now();
    sigterm(&job);
    let out = finish(job, started);
    let exited_after = signalled.elapsed();
    assert_eq!(out.code, Some(8), "{}", out.stderr);
    // At once: not at the end of V2's 30 s, nor after another wait for the database.
    assert!(
        exited_after < Duration::from_secs(15),
        "exited {exited_after:?} after SIGTERM"
    );
    assert_eq!(
        w.lease_holder().as_deref(),
        Some(""),
        "the Lease is released"
    );
    let s = w.status();
    assert_eq!(s["phase"], "Failed");
    assert_eq!(s["exitCode"], "8");
    assert_eq!(s["appliedThisRun"], "V1__a");
    assert_eq!(s["appliedVersion"], "1");
    assert_eq!(s["pending"], "V2__slow");
    assert_eq!(
        w.sql("SELECT to_regclass('b') IS NULL"),
        "t",
        "V2 rolled back"
    );
}

/// The record of a failed run comes from what the run knew: with PostgreSQL gone for longer
/// than the run waits for it to come back (DBINIT_TIMEOUT from the loss), it still says what
/// was applied before it, and the Lease is released at once.
#[test]
fn a_failed_run_is_recorded_and_released_without_asking_the_database() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "failed");
    let dir = migrations(&[
        ("V1__a.sql", "CREATE TABLE a (id int);"),
        ("V2__b.sql", "CREATE TABLE b (id int);"),
        ("V3__slow.sql", "SELECT pg_sleep(30);"),
    ]);
    let mut cmd = w.cmd("admin-token", dir.path());
    cmd.env("DBINIT_TIMEOUT", "3s")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (job, started) = (cmd.spawn().expect("spawn dbinit-job"), Instant::now());
    w.pg.wait_for_query("pg_sleep(30)");
    // Fast shutdown: V3's session is terminated (the migration fails), and PostgreSQL stays
    // down, so anything that asked the database afterwards would find nobody.
    w.pg.stop();
    let stopped = Instant::now();
    let out = finish(job, started);
    let exited_after = stopped.elapsed();
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    // Not after another wait for the database: the record below, complete while
    // PostgreSQL stays down, is the proof; the time is for the log.
    eprintln!("exited {exited_after:?} after the loss (3 s to come back, then at once)");
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert_eq!(
        w.lease_holder().as_deref(),
        Some(""),
        "the Lease is released"
    );
    let s = w.status();
    assert_eq!(s["phase"], "Failed");
    assert_eq!(s["exitCode"], out.code.unwrap_or(-1).to_string().as_str());
    assert_eq!(s["appliedThisRun"], "V1__a,V2__b");
    assert_eq!(s["appliedVersion"], "2");
    assert_eq!(s["pending"], "V3__slow");
    assert!(
        s["error"].as_str().unwrap_or("").contains("V3__slow"),
        "{s}"
    );
}
