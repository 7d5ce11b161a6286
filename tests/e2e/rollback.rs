//! The release going backwards (issue 23, experiments 4 and 5), through the real Helm engine:
//! a rollback after an upgrade that applied V9, where the older release runs against the
//! newer schema (tolerated: "ahead"), and `helm upgrade --atomic` with a failing migration,
//! rolled back by Helm while the old pods keep serving. Helm's rollback runs as `--atomic`
//! runs it: helm-sdkpy 0.1.32's standalone rollback fails before doing anything ("wait
//! strategy not set"), so `helm rollback` itself is not driven here.
//!
//! The releases differ in their migration set (`migration.files`): the older one ends at V8,
//! the newer at V9; the example app's pods wait for their own release's set.

use std::time::Duration;

use dbinit_tests::node::{deadline_loop, parse_time_precise};
use serde_json::{Map, Value, json};

use crate::common::{World, builtin_files, builtin_versions, figure, secs, world};
use crate::hook::{RELEASE, chart_world, lease_name, values_file};
use crate::watch::Watch;

/// The example app's pods.
pub const APP: &str = "app.kubernetes.io/instance=deals,app.kubernetes.io/component=app";

/// V8 of every release here: a table the app reads.
pub const V8: (&str, &str) = (
    "V8__e2e_prices.sql",
    "CREATE TABLE e2e_prices (id int PRIMARY KEY, price numeric, legacy_price numeric);\n",
);

/// The built-in set plus `extra` files.
pub fn files(extra: &[(&str, &str)]) -> Map<String, Value> {
    let mut f = builtin_files();
    for (name, sql) in extra {
        f.insert(name.to_string(), Value::String(sql.to_string()));
    }
    f
}

/// The chart's values for a release migrating `files`, with the example app (2 replicas).
pub fn values(files: Map<String, Value>) -> Value {
    json!({
        "postgres": {"host": "postgres", "user": "app"},
        "migration": {"files": files},
        "exampleApp": {"enabled": true, "replicas": 2}
    })
}

/// `helm ACTION deals helm/dbinit` with `values`; returns how it ended.
pub fn helm(w: &World, action: &str, values: &Value, flags: &str) -> dbinit_tests::Finished {
    let (_file, path) = values_file(values);
    w.sh.run(
        &format!(
            "helm {action} {RELEASE} helm/dbinit -f {} --timeout 4m {flags}",
            path.display()
        ),
        Duration::from_secs(300),
    )
}

/// Installs the older release (up to V8) and waits for its app pods.
pub fn install_v8(w: &World) {
    chart_world(w);
    let f = helm(w, "install", &values(files(&[V8])), "");
    assert_eq!(f.code, Some(0), "helm install: {}{}", f.stdout, f.stderr);
    w.ns.wait_ready(APP, 2, Duration::from_secs(240));
}

/// Versions 1..=n.
pub fn upto(n: u32) -> Vec<u32> {
    let mut v = builtin_versions();
    v.extend((v.len() as u32 + 1)..=n);
    v
}

/// The status ConfigMap's data.
pub fn status_record(w: &World) -> Value {
    w.ns.get(&["configmap", &format!("{RELEASE}-dbinit-status")])
        .expect("the status ConfigMap")["data"]
        .clone()
}

/// `dbinit status --exit-code` in a pod of the image, with the release's migrations (its
/// ConfigMap) and the app's credentials: (exit code, output).
pub fn status_in_pod(w: &World, name: &str) -> (i64, String) {
    w.ns.apply(&json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never", "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "containers": [{
                "name": "dbinit", "image": "dbinit:dev", "imagePullPolicy": "IfNotPresent",
                "args": ["status", "--exit-code"],
                "env": [
                    {"name": "POSTGRES_HOST", "value": "postgres"},
                    {"name": "POSTGRES_USER", "value": "app"},
                    {"name": "POSTGRES_PASSWORD_FILE", "value": "/var/run/secrets/dbinit/postgres/password"},
                    {"name": "POSTGRES_DB", "value": "agentic_deals"},
                    {"name": "DBINIT_MIGRATIONS_DIR", "value": "/migrations"},
                    {"name": "DBINIT_TIMEOUT", "value": "60s"}
                ],
                "volumeMounts": [
                    {"name": "pw", "mountPath": "/var/run/secrets/dbinit/postgres", "readOnly": true},
                    {"name": "migrations", "mountPath": "/migrations", "readOnly": true}
                ]
            }],
            "volumes": [
                {"name": "pw", "secret": {"secretName": "agentic-deals-db",
                 "items": [{"key": "password", "path": "password"}]}},
                {"name": "migrations", "configMap": {"name": format!("{RELEASE}-dbinit-migrations-sql")}}
            ]
        }
    }));
    let pod = deadline_loop(
        &format!("pod {name} finished"),
        Duration::from_secs(120),
        || {
            let p = w.ns.get(&["pod", name]).ok_or("not created")?;
            let t = &p["status"]["containerStatuses"][0]["state"]["terminated"];
            if t.is_null() {
                Err(format!("{}", p["status"]["phase"]))
            } else {
                Ok(p)
            }
        },
    );
    let code = pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]
        .as_i64()
        .unwrap_or(-1);
    (code, w.ns.ok(&["logs", name]))
}

/// V9 of the newer release: an expand step the older release's code does not mind.
pub const V9: (&str, &str) = (
    "V9__e2e_currency.sql",
    "ALTER TABLE e2e_prices ADD COLUMN currency text;\n",
);

/// The newer release: V9, and an app image that never starts, so `helm upgrade --atomic
/// --wait` fails after its hook Job applied V9 and Helm rolls the release back (its own
/// rollback, pre-rollback hooks and all: helm-sdkpy's standalone `helm rollback` fails with
/// "wait strategy not set" in 0.1.32, see helm/helm#31337).
pub fn newer_release_that_fails_to_roll_out(v9: (&str, &str)) -> Value {
    let mut v = values(files(&[V8, v9]));
    v["exampleApp"]["image"] = json!("localhost/dbinit-e2e-no-such-app:1");
    v
}

#[test]
fn helm_rollback_after_an_upgrade_that_applied_v9_runs_the_older_release_against_it() {
    let w = world("rollback");
    install_v8(&w);
    let f = helm(
        &w,
        "upgrade",
        &newer_release_that_fails_to_roll_out(V9),
        "--atomic --wait --timeout 45s",
    );
    figure(
        "helm upgrade (V9) --atomic -> rolled back, wall time",
        secs(f.elapsed),
    );
    assert_ne!(
        f.code,
        Some(0),
        "the new pods never become Ready: {}{}",
        f.stdout,
        f.stderr
    );
    w.sh.run_ok("helm status deals", Duration::from_secs(60));
    let rel =
        w.sh.helm_log()
            .into_iter()
            .rfind(|e| e["action"] == "status")
            .expect("status");
    assert_eq!(
        rel["result"]["info"]["status"], "deployed",
        "{}",
        rel["result"]["info"]
    );
    assert_eq!(rel["result"]["version"], 3, "install, upgrade, rollback");
    // V9 stays: the database is ahead of the release now deployed.
    w.assert_applied_once("agentic_deals", &upto(9));
    // The older release's Job ran at the rollback (a pre-rollback hook) and recorded "ahead".
    let s = status_record(&w);
    assert_eq!(s["phase"], "Succeeded", "{s}");
    assert_eq!(s["targetVersion"], "8", "{s}");
    assert_eq!(s["appliedVersion"], "9", "{s}");
    assert_eq!(s["ahead"], "V9__e2e_currency", "{s}");

    // The older release's pods start against the newer schema: `dbinit wait` tolerates it.
    deadline_loop(
        "the failed release's pods gone",
        Duration::from_secs(120),
        || {
            let bad: Vec<Value> =
                w.ns.pods(APP)
                    .into_iter()
                    .filter(|p| p["spec"]["containers"][0]["image"] != "registry.k8s.io/pause:3.9")
                    .collect();
            if bad.is_empty() {
                Ok(())
            } else {
                Err(format!("{} left", bad.len()))
            }
        },
    );
    let before = w.ns.pods(APP);
    w.ns.ok(&["delete", "pods", "-l", APP, "--wait=false"]);
    let t = w.ns.wait_ready(APP, 2, Duration::from_secs(240));
    figure(
        "older release's pods restarted against V9 -> Ready",
        secs(t),
    );
    let live = w.ns.pods(APP);
    for p in live
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
    {
        assert!(
            !before
                .iter()
                .any(|b| b["metadata"]["uid"] == p["metadata"]["uid"]),
            "new pods"
        );
        assert_eq!(
            p["spec"]["containers"][0]["image"],
            "registry.k8s.io/pause:3.9"
        );
        let msg = p["status"]["initContainerStatuses"][0]["state"]["terminated"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            msg.starts_with("ok"),
            "`dbinit wait` of the older release: {msg}"
        );
    }
    // helm test passes; `dbinit status` says "ahead".
    let f = w.sh.run("helm test deals", Duration::from_secs(180));
    assert_eq!(f.code, Some(0), "helm test: {}{}", f.stdout, f.stderr);
    let (code, out) = status_in_pod(&w, "status-after-rollback");
    assert_eq!(code, 11, "status --exit-code: ahead is 11\n{out}");
    assert!(
        out.contains("ahead") && out.contains("V9__e2e_currency"),
        "{out}"
    );
    w.assert_applied_once("agentic_deals", &upto(9));
    w.assert_no_lock();
}

/// The Lease's holder and renewTime, per change seen.
fn lease_changes(events: &[Value]) -> Vec<(String, f64, f64)> {
    events
        .iter()
        .filter(|l| l["metadata"]["name"] == lease_name().as_str())
        .map(|l| {
            let s = &l["spec"];
            (
                s["holderIdentity"].as_str().unwrap_or_default().to_string(),
                s["renewTime"]
                    .as_str()
                    .and_then(parse_time_precise)
                    .unwrap_or(0.0),
                s["leaseDurationSeconds"].as_f64().unwrap_or(15.0),
            )
        })
        .collect()
}

#[test]
fn helm_upgrade_atomic_with_a_failing_migration_rolls_back_and_the_old_pods_keep_serving() {
    let w = world("atomic");
    install_v8(&w);
    let serving: Vec<Value> = w.ns.pods(APP);
    let pods = Watch::start(&w, "pods");
    let leases = Watch::start(&w, "leases");
    let broken = ("V9__e2e_broken.sql", "SELEC 1;\n");
    let f = helm(&w, "upgrade", &values(files(&[V8, broken])), "--atomic");
    figure(
        "helm upgrade --atomic (failing migration) until it returned",
        secs(f.elapsed),
    );
    assert_ne!(
        f.code,
        Some(0),
        "the upgrade must fail: {}{}",
        f.stdout,
        f.stderr
    );
    let pod_events = pods.stop();
    let lease_events = leases.stop();

    // Rolled back: the release is deployed again at a new revision, the older one's.
    w.sh.run_ok("helm status deals", Duration::from_secs(60));
    let rel =
        w.sh.helm_log()
            .into_iter()
            .rfind(|e| e["action"] == "status")
            .expect("status");
    assert_eq!(
        rel["result"]["info"]["status"], "deployed",
        "{}",
        rel["result"]["info"]
    );
    assert_eq!(
        rel["result"]["version"], 3,
        "install, failed upgrade, rollback"
    );
    // The old pods kept serving: the same pods, all Ready, never replaced.
    w.ns.wait_ready(APP, 2, Duration::from_secs(60));
    let now = w.ns.pods(APP);
    let uids = |v: &[Value]| {
        let mut u: Vec<String> = v.iter().map(|p| p["metadata"]["uid"].to_string()).collect();
        u.sort();
        u
    };
    assert_eq!(uids(&now), uids(&serving), "the old pods kept serving");

    // The failed Job's pod named the file in its termination message (seen by the watch:
    // the rollback's hook deleted that Job).
    let messages: Vec<String> = pod_events
        .iter()
        .filter_map(|p| {
            p["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
                .as_str()
                .map(str::to_string)
        })
        .filter(|m| m.contains("exit 5"))
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("V9__e2e_broken")),
        "the failed Job's termination message names the file: {messages:?}"
    );
    // The Lease was released by the failed run itself: right after its holder, a write with
    // no holder, before that holder's Lease could have expired.
    let changes = lease_changes(&lease_events);
    let released = changes.windows(2).any(|p| {
        let ((h, renewed, duration), (next, at, _)) = (&p[0], &p[1]);
        !h.is_empty() && next.is_empty() && *at < renewed + duration
    });
    assert!(
        released,
        "the failed run released the Lease at once: {changes:?}"
    );
    // The status record's history has the failed run, naming the file.
    let history = status_record(&w)["history"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        history
            .lines()
            .any(|l| l.contains("\"Failed\"") && l.contains("V9__e2e_broken")),
        "the status history records the failed file: {history}"
    );
    w.assert_applied_once("agentic_deals", &upto(8));
    w.assert_no_lock();
}
