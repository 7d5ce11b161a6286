//! `dbinit-job`'s Kubernetes Events and labels on a real kube-apiserver with a real
//! PostgreSQL: one Event per state change (never one per retry), the failing file and its
//! SQLSTATE in the Failed Event and the termination message, a Role that grants `create` on
//! events and nothing more, and DBINIT_LABELS on the objects the job creates.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dbinit_tests::fixtures::ok;
use dbinit_tests::job_world::{JobWorld, create_rbac, deploy_rbac};
use dbinit_tests::{KubeApi, PG_PASSWORD, PsqlSession, run};
use serde_json::{Value, json};

/// Events are posted by a task that the job flushes before it exits; the list is read once
/// it has settled.
fn settled(w: &JobWorld<'_>, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = w.reasons();
        if r.len() >= want || Instant::now() >= deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn one_event_per_state_change_and_the_failure_names_file_and_sqlstate() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "events");
    let dir = tempfile::tempdir().expect("tmp");
    let tm = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("V1__items.sql"),
        "CREATE TABLE items (id int);",
    )
    .expect("write");

    // Success: Started, Applied; about the Pod named by POD_NAME.
    let mut c = w.cmd("admin-token", dir.path());
    c.env("POD_NAME", "migrate-abcde");
    ok(&run(c));
    let ev = w.events();
    let reasons: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(reasons, ["Started", "Applied"], "{ev:?}");
    assert_eq!(ev[0].3["kind"], "Pod");
    assert_eq!(ev[0].3["name"], "migrate-abcde");
    assert!(ev[1].2.contains("version 1"), "{}", ev[1].2);

    // A migration behind a reader: many rolled-back attempts, one WaitingForLock.
    std::fs::write(
        dir.path().join("V2__note.sql"),
        "ALTER TABLE items ADD COLUMN note text;",
    )
    .expect("write");
    let mut reader = PsqlSession::open(&w.pg, &w.db, "slow-report");
    reader.send("BEGIN;");
    reader.send("SELECT count(*) FROM items;");
    PsqlSession::wait_for_table_lock(&w.pg, &w.db, "slow-report", "items");
    let mut c = w.cmd("admin-token", dir.path());
    c.env("DBINIT_MIGRATION_LOCK_TIMEOUT", "200ms");
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    // Let the reader go once three attempts have each waited for its lock and been rolled
    // back: each attempt is a transaction of its own, told apart by its start time.
    let waiting = format!(
        "SELECT coalesce(string_agg(xact_start::text, ','), '') FROM pg_stat_activity \
         WHERE datname = '{}' AND wait_event_type = 'Lock' AND application_name <> 'slow-report'",
        w.db
    );
    let mut attempts = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while attempts.len() < 4 {
        assert!(Instant::now() < deadline, "attempts seen: {attempts:?}");
        attempts.extend(
            w.pg.psql("postgres", &waiting)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.send("COMMIT;");
    reader.close();
    let out = dbinit_tests::finish(child, started);
    ok(&out);
    let retries = out.stderr.matches("retrying").count();
    assert!(retries >= 3, "it retried several times:\n{}", out.stderr);
    let ev = w.events();
    let reasons: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        reasons,
        ["Started", "Applied", "Started", "WaitingForLock", "Applied"],
        "{retries} retries, one WaitingForLock: {ev:?}"
    );
    assert!(
        ev[3].2.contains("V2__note") && ev[3].2.contains("slow-report"),
        "{}",
        ev[3].2
    );
    assert_eq!(ev[2].3["kind"], "Lease", "without POD_NAME: the Lease");

    // Failure: one Failed event (Warning) naming the file and SQLSTATE; the termination
    // message says the same.
    std::fs::write(dir.path().join("V3__bad.sql"), "SELEC 1;").expect("write");
    let mut c = w.cmd("admin-token", dir.path());
    c.env(
        "DBINIT_TERMINATION_MESSAGE_PATH",
        tm.path().join("termination-log"),
    );
    let out = run(c);
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    let reasons = settled(&w, 7);
    assert_eq!(
        reasons,
        [
            "Started",
            "Applied",
            "Started",
            "WaitingForLock",
            "Applied",
            "Started",
            "Failed"
        ]
    );
    let ev = w.events();
    let failed = &ev[6];
    assert_eq!(failed.1, "Warning");
    assert!(
        failed.2.contains("V3__bad") && failed.2.contains("42601") && failed.2.contains("exit 5"),
        "{}",
        failed.2
    );
    assert!(!failed.2.contains(PG_PASSWORD));
    let term = std::fs::read_to_string(tm.path().join("termination-log")).expect("termination");
    assert!(
        term.contains("V3__bad") && term.contains("42601"),
        "termination message: {term}"
    );
}

/// Asks the apiserver (SelfSubjectAccessReview) whether `token` may do `verb` on events.
fn may(api: &KubeApi, token: &str, ns: &str, group: &str, verb: &str) -> bool {
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": ns, "verb": verb, "group": group, "resource": "events"}}});
    let (code, body) = api.call(
        token,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some(&review.to_string()),
    );
    assert_eq!(code, 201, "review: {body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    v["status"]["allowed"] == true
}

#[test]
fn the_role_grants_create_on_events_and_nothing_more() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "evrbac");
    create_rbac(api, &w.ns, &deploy_rbac());
    let token = api.service_account_token(&w.ns, "dbinit");
    let other = api.namespace("evrbac-other");

    assert!(may(api, &token, &w.ns, "", "create"));
    for verb in [
        "get",
        "list",
        "watch",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ] {
        assert!(!may(api, &token, &w.ns, "", verb), "{verb} events");
    }
    assert!(!may(api, &token, &w.ns, "events.k8s.io", "create"));
    assert!(!may(api, &token, &other, "", "create"), "other namespace");

    // `kubectl auth can-i --list` (SelfSubjectRulesReview): the only rule on events.
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(api.kubeconfig(&token, &w.ns))
        .args(["auth", "can-i", "--list"])
        .output()
        .expect("kubectl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let event_rules: Vec<&str> = text.lines().filter(|l| l.contains("events")).collect();
    assert_eq!(event_rules.len(), 1, "{text}");
    assert!(
        event_rules[0].contains("[create]") && !event_rules[0].contains("get"),
        "{text}"
    );

    // And it is enough: the job, as that ServiceAccount, posts its Events.
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("V1__a.sql"), "CREATE TABLE a (id int);").expect("write");
    let out = run(w.cmd(&token, dir.path()));
    ok(&out);
    assert!(
        !out.stderr.contains("not allowed to create Events"),
        "{}",
        out.stderr
    );
    assert_eq!(settled(&w, 2), ["Started", "Applied"]);
}

#[test]
fn dbinit_labels_go_on_the_lease_and_status_configmap_it_creates() {
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "labels");
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("V1__a.sql"), "CREATE TABLE a (id int);").expect("write");
    let mut c = w.cmd("admin-token", dir.path());
    c.env(
        "DBINIT_LABELS",
        "app.kubernetes.io/instance=shop,app.kubernetes.io/name=dbinit",
    );
    ok(&run(c));
    for path in [
        format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases/dbinit-migrations",
            w.ns
        ),
        format!("/api/v1/namespaces/{}/configmaps/dbinit-status", w.ns),
    ] {
        let (code, body) = api.admin("GET", &path, None);
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        let labels = &v["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/instance"], "shop", "{path}");
        assert_eq!(labels["app.kubernetes.io/name"], "dbinit", "{path}");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "dbinit", "{path}");
    }

    let mut c = w.cmd("admin-token", dir.path());
    c.env(
        "DBINIT_LABELS",
        "app.kubernetes.io/instance=shop,bad label=x",
    );
    let out = run(c);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("DBINIT_LABELS") && out.stderr.contains("bad label=x"),
        "{}",
        out.stderr
    );
}

/// docs/operations.md's kubectl blocks, run as written in the namespace after a run that
/// succeeded and one that failed: the status ConfigMap says what the last run did, its history
/// holds both, the Lease is there, and the Failed Event names the file.
#[test]
fn the_operations_page_reads_a_failed_run_as_written() {
    use dbinit_tests::docs::{DocShell, Docs};
    let api = KubeApi::shared();
    let w = JobWorld::new(api, "ops-docs");
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("V1__items.sql"),
        "CREATE TABLE items (id int);",
    )
    .expect("write");
    ok(&run(w.cmd("admin-token", dir.path())));
    std::fs::write(dir.path().join("V2__broken.sql"), "SELEC 1;").expect("write");
    let failed = run(w.cmd("admin-token", dir.path()));
    assert_eq!(failed.code, Some(5), "{}", failed.stderr);
    settled(&w, 4);

    let docs = Docs::load();
    let mut sh = DocShell::new();
    sh.set(
        "KUBECONFIG",
        api.kubeconfig("admin-token", &w.ns).display().to_string(),
    );
    let status = sh.run_block(&docs, "ops-status");
    for want in [
        "phase: Failed",
        "exitCode: \"5\"",
        "V2__broken",
        "kind: Lease",
    ] {
        assert!(
            status.stdout.contains(want),
            "{want:?} in:\n{}",
            status.stdout
        );
    }
    let history = status
        .stdout
        .lines()
        .filter(|l| l.starts_with("{\"") && l.contains("\"phase\""))
        .count();
    assert!(
        history >= 2,
        "the history shows both runs:\n{}",
        status.stdout
    );
    let events = sh.run_block(&docs, "ops-events");
    assert!(
        events.stdout.contains("Failed") && events.stdout.contains("V2__broken"),
        "{}",
        events.stdout
    );
}
