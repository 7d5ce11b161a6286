//! The chart's hook Job under a fault, for the multi-node tier: `helm install` in the
//! background (Helm waits for its pre-install hook Job) with V1 of the migrations waiting at
//! the test's [`Gate`], and what the tests read back: where a pod runs, the Lease, PostgreSQL's
//! record of when a session ended.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dbinit_tests::node::{deadline_loop, parse_time_precise};
use serde_json::{Value, json};

use crate::common::World;
use crate::faults::{GATE_KEY, gated_files};

/// The release every test of the tier installs.
pub const RELEASE: &str = "deals";

/// The chart's Lease for [`RELEASE`].
pub fn lease_name() -> String {
    format!("{RELEASE}-dbinit-migrations")
}

/// A world ready for the chart: Services `postgres` and `redis`, deploy/'s Secret.
pub fn chart_world(w: &World) {
    w.db.expose(w.node, &w.ns.name, "postgres", "redis");
    w.apply_files(&["deploy/secret.example.yaml"]);
}

/// Chart values migrating [`gated_files`] (V1 waits at the gate), the Job's pod evicted
/// `toleration` seconds after its node is lost, with `extra` merged over them.
pub fn gated_values(toleration: u32, extra: Value) -> Value {
    let files: serde_json::Map<String, Value> = gated_files()
        .into_iter()
        .map(|(n, s)| (n.to_string(), Value::String(s)))
        .collect();
    let mut v = json!({
        "postgres": {"host": "postgres", "user": "app"},
        "migration": {"files": files, "nodeLossTolerationSeconds": toleration},
        "tests": {"enabled": false}
    });
    merge(&mut v, extra);
    v
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// Writes `values` to a file for `helm -f`; the file lives as long as the returned guard.
pub fn values_file(values: &Value) -> (tempfile::NamedTempFile, PathBuf) {
    let f = tempfile::NamedTempFile::new().expect("values file");
    std::fs::write(f.path(), values.to_string()).expect("write values");
    let p = f.path().to_path_buf();
    (f, p)
}

/// The node a pod runs on.
pub fn node_of(w: &World, pod: &str) -> String {
    w.ns.get(&["pod", pod]).expect("the pod")["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The backend pid of `pod`'s session waiting at the gate.
pub fn gate_backend(w: &World, pod: &str) -> String {
    let pid = w.db.pg.psql(
        "postgres",
        &format!(
            "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objid = {GATE_KEY} \
             AND a.application_name LIKE '%{pod}%'"
        ),
    );
    assert!(!pid.is_empty(), "{pod} has no session at the gate");
    pid
}

/// Waits until PostgreSQL backend `pid` has ended; returns when it did, from the server's
/// log (`log_disconnections`), in seconds since the epoch.
pub fn session_end(w: &World, pid: &str, timeout: Duration) -> f64 {
    deadline_loop(&format!("PostgreSQL session {pid} ended"), timeout, || {
        let log = w.db.pg.log();
        log.lines()
            .find(|l| l.contains(&format!("[{pid}] LOG:  disconnection")))
            .and_then(log_time)
            .ok_or_else(|| "still connected".to_string())
    })
}

/// The time of a server log line (`log_line_prefix = '%m [%p] '`, UTC), in seconds since the
/// epoch.
fn log_time(line: &str) -> Option<f64> {
    // "2026-05-09 12:34:56.789 UTC [1234] LOG: ..."
    let t = line.get(0..23)?;
    parse_time_precise(&format!("{}T{}Z", &t[0..10], &t[11..]))
}

/// Now, in seconds since the epoch (the apiserver and PostgreSQL run on this machine's clock).
pub fn wall() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// The Lease's holder, renewTime, acquireTime (seconds since the epoch), duration and
/// transitions.
pub struct LeaseView {
    /// holderIdentity ("" when released).
    pub holder: String,
    /// spec.renewTime.
    pub renewed: f64,
    /// spec.acquireTime.
    pub acquired: f64,
    /// spec.leaseDurationSeconds.
    pub duration: f64,
    /// spec.leaseTransitions.
    pub transitions: i64,
}

/// The chart's Lease now.
pub fn lease(w: &World) -> LeaseView {
    let l = w.ns.get(&["lease", &lease_name()]).expect("the Lease");
    let s = &l["spec"];
    let t = |k: &str| s[k].as_str().and_then(parse_time_precise).unwrap_or(0.0);
    LeaseView {
        holder: s["holderIdentity"].as_str().unwrap_or_default().to_string(),
        renewed: t("renewTime"),
        acquired: t("acquireTime"),
        duration: s["leaseDurationSeconds"].as_f64().unwrap_or(15.0),
        transitions: s["leaseTransitions"].as_i64().unwrap_or(0),
    }
}

/// The termination message a container of pod `uid` left on the second node's disk (the
/// kubelet's copy of its /dev/termination-log), once it is written: readable while the node
/// cannot report to the apiserver.
pub fn termination_message_on_disk(
    node_dir: &std::path::Path,
    uid: &str,
    container: &str,
    timeout: Duration,
) -> String {
    let dir = node_dir.join(format!("kubelet/root/pods/{uid}/containers/{container}"));
    deadline_loop(
        &format!("termination message in {}", dir.display()),
        timeout,
        || {
            std::fs::read_dir(&dir)
                .map_err(|e| e.to_string())?
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .find(|m| !m.trim().is_empty())
                .ok_or_else(|| "not written yet".to_string())
        },
    )
}

/// When node `name` stopped being Ready (its Ready condition's last transition), while it is
/// not Ready; seconds since the epoch.
pub fn not_ready_since(w: &World, name: &str) -> Option<f64> {
    let n = w.node.get_json(None, &["node", name])?;
    let c = n["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?
        .clone();
    if c["status"] == "True" {
        return None;
    }
    c["lastTransitionTime"]
        .as_str()
        .and_then(parse_time_precise)
}

/// When pod `pod` was deleted (evicted): its deletionTimestamp less its grace period.
pub fn deleted_at(w: &World, pod: &str) -> Option<f64> {
    let p = w.ns.get(&["pod", pod])?;
    let at = p["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(parse_time_precise)?;
    Some(
        at - p["metadata"]["deletionGracePeriodSeconds"]
            .as_f64()
            .unwrap_or(0.0),
    )
}

/// Figures for how a lost node's pod was replaced: node NotReady and the pod evicted, in
/// seconds after `t0`.
pub fn replacement_figures(w: &World, what: &str, node: &str, pod: &str, t0: f64) {
    if let Some(t) = not_ready_since(w, node) {
        crate::common::figure(
            &format!("{what} -> node NotReady, s"),
            format!("{:.0}", t - t0),
        );
    }
    if let Some(t) = deleted_at(w, pod) {
        crate::common::figure(
            &format!("{what} -> its pod evicted, s"),
            format!("{:.0}", t - t0),
        );
    }
}
