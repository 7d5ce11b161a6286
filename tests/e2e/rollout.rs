//! A rollout of 40 replicas across both nodes, each with README's `dbinit wait` init
//! container, created while the chart's hook Job migrates (issue 23, experiment 3; in the
//! multi-node tier), against a PostgreSQL with `max_connections = 100`: every pod becomes Ready
//! and no connection is refused. Figures: create -> Ready latency p50/p99 against the same
//! Deployment with a do-nothing init container, and PostgreSQL's peak connection count during
//! the rollout (`pg_stat_activity`, sampled).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dbinit_tests::node::{Node, deadline_loop};
use serde_json::{Value, json};

use crate::common::{World, figure, world_with};
use crate::faults::{Gate, assert_once, pod_at_gate};
use crate::hook::{RELEASE, chart_world, gated_values, values_file};
use crate::pods::{deployment, snippet};

const REPLICAS: usize = 40;

/// README's init container snippet, waiting for the chart's migrations (the ConfigMap the
/// hook made, mounted where the Job reads them).
fn waiting_pod(w: &World) -> Value {
    let mut pod = snippet(w);
    let init = &mut pod["initContainers"][0];
    assert_eq!(
        init["command"],
        json!(["/dbinit", "wait"]),
        "README's snippet waits"
    );
    init["env"]
        .as_array_mut()
        .expect("env")
        .push(json!({"name": "DBINIT_MIGRATIONS_DIR", "value": "/migrations"}));
    init["volumeMounts"]
        .as_array_mut()
        .expect("volumeMounts")
        .push(json!({"name": "migrations", "mountPath": "/migrations", "readOnly": true}));
    pod["volumes"].as_array_mut().expect("volumes").push(json!({
        "name": "migrations",
        "configMap": {"name": format!("{RELEASE}-dbinit-migrations-sql")}
    }));
    pod
}

/// p50 and p99 (nearest rank) of whole seconds.
fn percentiles(mut v: Vec<i64>) -> (i64, i64) {
    v.sort();
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (rank(0.50), rank(0.99))
}

/// How many pods of `selector` run on each node.
fn per_node(w: &World, selector: &str) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for p in w.ns.pods(selector) {
        *m.entry(p["spec"]["nodeName"].as_str().unwrap_or("-").to_string())
            .or_default() += 1;
    }
    m
}

#[test]
fn forty_replicas_with_dbinit_wait_roll_out_on_two_nodes_while_the_hook_job_migrates() {
    let node = Node::get();
    if node.two_nodes("forty_replicas_with_dbinit_wait").is_none() {
        return;
    }
    let w = world_with("rollout", &[("max_connections", "100")]);
    assert_eq!(w.db.pg.psql("postgres", "SHOW max_connections"), "100");
    chart_world(&w);
    let gate = Gate::close(&w);
    let (_file, values) = values_file(&gated_values(30, json!({})));
    let stop = AtomicBool::new(false);
    let peak = std::thread::scope(|s| {
        let helm = s.spawn(|| {
            w.sh.run(
                &format!(
                    "helm install {RELEASE} helm/dbinit -f {} --timeout 8m",
                    values.display()
                ),
                Duration::from_secs(500),
            )
        });
        pod_at_gate(&w, None, Duration::from_secs(180));
        // Connections from anything but the sampler, every ~100 ms until the rollout is done.
        let sampler = s.spawn(|| {
            let mut peak = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let n = w.db.pg.psql(
                    "postgres",
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                );
                peak = peak.max(n.parse().unwrap_or(0));
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        // The Deployment arrives while the Job is mid-migration (at the gate); the gate opens
        // once every pod's `dbinit wait` is connected and waiting: all 40 at once.
        w.ns.apply(&deployment("waiters", REPLICAS, waiting_pod(&w)));
        deadline_loop(
            "every pod's dbinit wait connected",
            Duration::from_secs(600),
            || {
                let n: usize = w
                .db
                .pg
                .psql(
                    "postgres",
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '%waiters-%'",
                )
                .parse()
                .unwrap_or(0);
                if n >= REPLICAS {
                    Ok(())
                } else {
                    Err(format!("{n} waiting"))
                }
            },
        );
        let opened = crate::hook::wall();
        gate.open();
        let f = helm.join().expect("helm thread");
        assert_eq!(f.code, Some(0), "helm install: {}{}", f.stdout, f.stderr);
        let took =
            w.ns.wait_ready("app=waiters", REPLICAS, Duration::from_secs(600));
        figure(
            "40 replicas (dbinit wait): gate open -> all Ready",
            crate::common::secs(took),
        );
        stop.store(true, Ordering::Relaxed);
        (sampler.join().expect("sampler"), opened)
    });
    let (peak, opened) = peak;
    assert_once(&w);
    let spread = per_node(&w, "app=waiters");
    figure(
        "40 replicas (dbinit wait): pods per node",
        format!("{spread:?}"),
    );
    assert_eq!(spread.len(), 2, "the pods run on both nodes: {spread:?}");
    figure(
        "40 replicas: PostgreSQL peak connections (max_connections 100)",
        peak,
    );
    let log = w.db.pg.log();
    assert!(
        !log.contains("too many clients") && !log.contains("remaining connection slots"),
        "a connection was refused by max_connections:\n{log}"
    );
    for p in w.ns.pods("app=waiters") {
        let init = &p["status"]["initContainerStatuses"][0];
        assert_eq!(init["restartCount"], 0, "init container retried: {init}");
        let msg = init["state"]["terminated"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(msg.starts_with("ok"), "init container: {msg}");
    }
    let (p50, p99) = percentiles(w.ns.ready_seconds("app=waiters"));
    figure(
        "40 replicas (dbinit wait): create -> Ready p50 / p99, s (includes the migration)",
        format!("{p50} / {p99}"),
    );
    let after_gate: Vec<i64> =
        w.ns.pods("app=waiters")
            .iter()
            .filter_map(|p| {
                let c = p["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "Ready")?;
                let at = dbinit_tests::node::parse_time(c["lastTransitionTime"].as_str()?)?;
                Some((at as f64 - opened).ceil() as i64)
            })
            .collect();
    let (p50, p99) = percentiles(after_gate);
    figure(
        "40 replicas (dbinit wait): migration done (gate open) -> Ready p50 / p99, s",
        format!("{p50} / {p99}"),
    );

    // The same Deployment with a do-nothing init container, on the migrated database, once
    // the first one's pods are gone.
    w.ns.ok(&[
        "delete",
        "deployment",
        "waiters",
        "--wait=true",
        "--timeout=180s",
    ]);
    deadline_loop(
        "the first Deployment's pods gone",
        Duration::from_secs(300),
        || match w.ns.pods("app=waiters").len() {
            0 => Ok(()),
            n => Err(format!("{n} left")),
        },
    );
    let mut pod = waiting_pod(&w);
    pod["initContainers"][0]["command"] = json!(["/dbinit", "--version"]);
    w.ns.apply(&deployment("plain", REPLICAS, pod));
    let took =
        w.ns.wait_ready("app=plain", REPLICAS, Duration::from_secs(600));
    figure(
        "40 replicas (do-nothing init): all Ready",
        crate::common::secs(took),
    );
    let (p50, p99) = percentiles(w.ns.ready_seconds("app=plain"));
    figure(
        "40 replicas (do-nothing init): create -> Ready p50 / p99, s",
        format!("{p50} / {p99}"),
    );
}
