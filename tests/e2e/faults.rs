//! Faults on the real node while the migration Job of deploy/ is mid-migration: its pod
//! deleted, the kubelet and containerd killed -9 and restarted. Each time the work finishes
//! and nothing is applied twice. (The Lease's faults: lease.rs.)
//!
//! "Mid-migration" is made, not hoped for: V1 waits at a [`Gate`], an advisory lock the test
//! holds, and the test opens it only after the fault has been injected and seen to land. No
//! assertion depends on how fast the node reacts.

use std::process::Command;
use std::time::{Duration, Instant};

use dbinit_tests::PsqlSession;
use dbinit_tests::node::{JobEnd, deadline_loop, repo_root};
use serde_json::{Value, json};

use crate::common::{World, figure, repo_yaml, secs, world};

/// The advisory-lock key V1 waits on. dbinit's own keys are hashes of the database and
/// history table; only these tests take this one.
pub(crate) const GATE_KEY: i64 = 7_340_021;

/// Migrations where V1 waits at the gate inside its transaction, then records that it
/// committed. With the gate open V1 passes at once.
pub(crate) fn gated_files() -> [(&'static str, String); 2] {
    // `lock_timeout = 0`: a run's short lock_timeout would otherwise end the wait at the gate
    // as a table-lock timeout and retry.
    let v1 = format!(
        "CREATE TABLE slow (n int);\nSET LOCAL lock_timeout = 0;\nSELECT pg_advisory_xact_lock({GATE_KEY});\nINSERT INTO slow VALUES (1);\n"
    );
    [
        ("V1__slow.sql", v1),
        (
            "V2__after_slow.sql",
            "CREATE TABLE after_slow (id int);\n".into(),
        ),
    ]
}

/// [`gated_files`] in the ConfigMap deploy/job.yaml's Job reads ([`job`]).
pub(crate) fn gated_migrations(w: &World) {
    let files = gated_files();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, s)| (*n, s.as_str())).collect();
    w.migrations_configmap("e2e-migrations", &files);
}

/// The gate V1 waits at: held by a psql session of the test until [`Gate::open`].
pub(crate) struct Gate {
    session: PsqlSession,
}

impl Gate {
    /// Closes the gate. Advisory locks belong to a database, so `agentic_deals` is made now,
    /// owned by the Job's role as dbinit would make it (an empty database needs no adoption).
    pub(crate) fn close(w: &World) -> Gate {
        w.db.pg
            .psql("postgres", "CREATE DATABASE agentic_deals OWNER app");
        Self::hold(w)
    }

    /// Closes the gate in `agentic_deals`, which exists.
    pub(crate) fn hold(w: &World) -> Gate {
        let mut session = PsqlSession::open(&w.db.pg, "agentic_deals", "e2e-gate");
        session.send(&format!("SELECT pg_advisory_lock({GATE_KEY});"));
        let held = format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'e2e-gate' AND l.locktype = 'advisory' AND l.granted \
             AND l.objid = {GATE_KEY}"
        );
        deadline_loop(
            "the test holding the gate",
            Duration::from_secs(30),
            || match w.db.pg.psql("agentic_deals", &held).as_str() {
                "1" => Ok(()),
                n => Err(format!("{n} gate locks held")),
            },
        );
        Gate { session }
    }

    /// Lets whoever waits at the gate through, and every later run.
    pub(crate) fn open(mut self) {
        self.session
            .send(&format!("SELECT pg_advisory_unlock({GATE_KEY});"));
        self.session.close();
    }
}

/// The pods whose sessions wait at the gate now (matched by `application_name`).
pub(crate) fn pods_at_gate(w: &World) -> Vec<String> {
    let apps = w.db.pg.psql(
        "postgres",
        &format!(
            "SELECT string_agg(a.application_name, ' ') FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objid = {GATE_KEY}"
        ),
    );
    w.ns.pods("")
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .filter(|n| apps.contains(n))
        .map(str::to_string)
        .collect()
}

/// Waits for a pod other than `old` to be mid-migration (waiting at the gate); its name.
pub(crate) fn pod_at_gate(w: &World, old: Option<&str>, timeout: Duration) -> String {
    deadline_loop("a pod waiting at the gate in V1", timeout, || {
        let pods = pods_at_gate(w);
        pods.iter()
            .find(|p| Some(p.as_str()) != old)
            .cloned()
            .ok_or_else(|| format!("at the gate: {pods:?} (not counting {old:?})"))
    })
}

/// deploy/job.yaml, named `name`, reading the ConfigMap's migrations.
pub(crate) fn job(name: &str) -> Value {
    let mut j = repo_yaml("deploy/job.yaml");
    assert_eq!(j["kind"], "Job", "deploy/job.yaml is a Job");
    let meta = j["metadata"].as_object_mut().expect("metadata");
    meta.remove("generateName");
    meta.insert("name".into(), json!(name));
    let spec = &mut j["spec"]["template"]["spec"];
    spec["containers"][0]["env"]
        .as_array_mut()
        .expect("env")
        .push(json!({"name": "DBINIT_MIGRATIONS_DIR", "value": "/e2e-migrations"}));
    spec["containers"][0]["volumeMounts"]
        .as_array_mut()
        .expect("volumeMounts")
        .push(json!({"name": "e2e-migrations", "mountPath": "/e2e-migrations", "readOnly": true}));
    spec["volumes"]
        .as_array_mut()
        .expect("volumes")
        .push(json!({"name": "e2e-migrations", "configMap": {"name": "e2e-migrations"}}));
    j
}

/// The literal value of env variable `name` of a Job's first container.
pub(crate) fn job_env(job: &Value, name: &str) -> Option<String> {
    job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
        .map(str::to_string)
}

pub(crate) fn setup(prefix: &str) -> World {
    let w = world(prefix);
    w.db.expose(w.node, &w.ns.name, "postgres", "redis");
    w.apply_files(&["deploy/rbac.yaml", "deploy/secret.example.yaml"]);
    gated_migrations(&w);
    w
}

pub(crate) fn assert_once(w: &World) {
    w.assert_applied_once("agentic_deals", &[1, 2]);
    assert_eq!(
        w.db.pg.psql("agentic_deals", "SELECT count(*) FROM slow"),
        "1",
        "the slow migration committed once"
    );
    w.assert_no_lock();
}

#[test]
fn job_pod_deleted_mid_migration_the_next_pod_finishes() {
    let w = setup("fault-del");
    let gate = Gate::close(&w);
    w.ns.apply(&job("mig"));
    let pod = pod_at_gate(&w, None, Duration::from_secs(120));
    let t = Instant::now();
    w.ns.ok(&["delete", "pod", &pod, "--wait=false"]);
    // The next pod reaches V1 only once the deleted one has rolled back and let go of the
    // Lease and the advisory lock, however long the node takes to stop it.
    let next = pod_at_gate(&w, Some(&pod), Duration::from_secs(180));
    figure("Job pod deleted -> next pod migrating", secs(t.elapsed()));
    gate.open();
    let (end, _) = w.ns.wait_job("mig", Duration::from_secs(120));
    assert_eq!(end, JobEnd::Complete, "next pod {next}");
    assert_once(&w);
}

/// The recorded PID of node component `name`, checked to be the node's (its command line
/// names the node's state directory), so a recycled PID is never taken for it.
fn component_pid(node_dir: &std::path::Path, name: &str) -> String {
    let pid = std::fs::read_to_string(node_dir.join(format!("pids/{name}.pid")))
        .unwrap_or_else(|e| panic!("{name}'s pid file: {e}"))
        .trim()
        .to_string();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains(&*node_dir.to_string_lossy()),
        "pid {pid} is not the node's {name}"
    );
    pid
}

/// Kills -9 the kubelet and containerd of the node `pod` runs on and brings them back;
/// returns when the node is Ready again. This machine's node (either of two): by their pid
/// files, restarted by scripts/cluster-up.sh (which starts only what is missing). Another
/// cluster's node (`DBINIT_NODE_EXEC`, kind): killed there, restarted by its systemd (not run
/// here: no Docker).
fn kill_kubelet_and_containerd(w: &World, pod: &str) {
    if let Some(node_dir) = w.node.node_dir.clone() {
        let on = w.ns.get(&["pod", pod]).expect("the pod")["spec"]["nodeName"].clone();
        let dir = match &w.node.second {
            Some(n2) if on == n2.name.as_str() => n2.dir.clone(),
            _ => node_dir.clone(),
        };
        let pids = [
            component_pid(&dir, "kubelet"),
            component_pid(&dir, "containerd"),
        ];
        let st = Command::new("kill")
            .arg("-9")
            .args(&pids)
            .status()
            .expect("kill");
        assert!(st.success(), "kill -9 {pids:?}");
        // With the cluster's own settings, as cluster-up wrote them.
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#". "$1/env" && exec "$2""#)
            .arg("restart-node")
            .arg(&node_dir)
            .arg(repo_root().join("scripts/cluster-up.sh"))
            .output()
            .expect("scripts/cluster-up.sh");
        assert!(
            out.status.success(),
            "restarting the node: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else if let Some(mut cmd) = w.node.on_node() {
        let out = cmd
            .args(["sh", "-c", "kill -9 $(pidof kubelet) $(pidof containerd)"])
            .output()
            .expect("DBINIT_NODE_EXEC");
        assert!(
            out.status.success(),
            "kill on the node: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_secs(5));
    } else {
        panic!(
            "killing the kubelet needs the node: this machine's (`make cluster-up`, \
             DBINIT_NODE_DIR) or DBINIT_NODE_EXEC for another cluster's"
        );
    }
    w.node.ready_node().expect("the node is Ready again");
}

#[test]
fn kubelet_and_containerd_killed_mid_run_and_restarted_the_job_completes_once() {
    let w = setup("fault-node");
    let gate = Gate::close(&w);
    w.ns.apply(&job("mig"));
    let pod = pod_at_gate(&w, None, Duration::from_secs(120));
    let t = Instant::now();
    kill_kubelet_and_containerd(&w, &pod);
    figure(
        "kubelet + containerd killed and restarted",
        secs(t.elapsed()),
    );
    // The container outlived its kubelet: it is still at the gate, mid-migration.
    assert_eq!(
        pods_at_gate(&w),
        std::slice::from_ref(&pod),
        "the same pod still migrating"
    );
    gate.open();
    let (end, _) = w.ns.wait_job("mig", Duration::from_secs(180));
    figure(
        "kill -9 kubelet+containerd -> Job Complete",
        secs(t.elapsed()),
    );
    assert_eq!(end, JobEnd::Complete, "pod {pod}");
    assert_once(&w);
    let job = w.ns.get(&["job", "mig"]).expect("job");
    assert_eq!(
        job["status"]["succeeded"], 1,
        "the pod that was running finished; no second pod was needed: {}",
        job["status"]
    );
}
