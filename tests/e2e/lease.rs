//! The Lease on the real node: a holder deleted (SIGTERM) or killed outright while another
//! Job's pod waits for it, a Job still waiting for its database, a failed migration. The Lease
//! is held only while migrating and released at once when the run ends.

use std::time::{Duration, Instant};

use dbinit_tests::node::{JobEnd, parse_time, parse_time_precise};
use serde_json::{Value, json};

use crate::common::{World, figure, secs};
use crate::faults::{Gate, assert_once, job, job_env, pod_at_gate, setup};

/// Two Jobs at once: one pod holds the Lease and waits at the gate in V1, the other's pod
/// waits for the Lease.
fn holder_and_waiter(w: &World) -> (String, String) {
    w.ns.apply(&job("mig-a"));
    w.ns.apply(&job("mig-b"));
    let holder = pod_at_gate(w, None, Duration::from_secs(120));
    let waiter = w.ns.wait_pod(
        "the other Job's pod running",
        "job-name",
        Duration::from_secs(60),
        |p| p["status"]["phase"] == "Running" && p["metadata"]["name"] != holder.as_str(),
    );
    let waiter = waiter["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    (holder, waiter)
}

#[test]
fn lease_holder_pod_deleted_the_waiting_pod_takes_over_promptly() {
    let w = setup("fault-lease");
    let gate = Gate::close(&w);
    let (holder, waiter) = holder_and_waiter(&w);
    let lease_before = w.ns.get(&["lease", &lease_name()]).expect("Lease");
    let t = Instant::now();
    w.ns.ok(&["delete", "pod", &holder, "--wait=false"]);
    let next = pod_at_gate(&w, Some(&holder), Duration::from_secs(120));
    let took = t.elapsed();
    figure(
        "Lease holder's pod deleted (SIGTERM) -> next pod migrating",
        secs(took),
    );
    // The pod that waited, or the old holder's replacement: whichever wins the release.
    assert!(
        next != holder && w.ns.pods("job-name").len() >= 2,
        "{next} took over from {holder} (waiting: {waiter})"
    );
    // The SIGTERM'd pod itself ends too: it rolls back, releases and exits 8. Its own record
    // in the status ConfigMap is the witness (written before it exits); the kubelet's view
    // of a deleted pod's container can be lost on a busy node (ContainerStatusUnknown).
    let status = job_env(&job("x"), "DBINIT_STATUS_CONFIGMAP").unwrap_or("dbinit-status".into());
    let ended = dbinit_tests::node::deadline_loop(
        "the deleted holder's run recorded as ended",
        Duration::from_secs(120),
        || {
            let cm =
                w.ns.get(&["configmap", &status])
                    .ok_or("no status ConfigMap yet")?;
            let history = cm["data"]["history"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            history
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|r| {
                    r["holder"].as_str().is_some_and(|h| h.contains(&holder))
                        && r["phase"] != "Running"
                })
                .ok_or(history)
        },
    );
    // Exit 8 is dbinit's own answer to SIGTERM (rollback, release, exit); a container that
    // ignored it would have been killed at the end of its grace period, recording nothing.
    assert_eq!(ended["exitCode"], 8, "SIGTERM is exit 8: {ended}");
    let exited = parse_time_precise(ended["finishedAt"].as_str().unwrap_or_default());
    // Released, not expired: the next holder took the Lease sooner after the old holder's
    // end than an expiry allows (no renewal for 2/3 of the duration at least), however
    // slowly the node delivered the SIGTERM.
    let lease = w.ns.get(&["lease", &lease_name()]).expect("Lease");
    let duration = lease_before["spec"]["leaseDurationSeconds"]
        .as_f64()
        .unwrap_or(15.0);
    let acquired = parse_time_precise(lease["spec"]["acquireTime"].as_str().unwrap_or_default());
    let gap = acquired.zip(exited).map(|(a, e)| a - e);
    figure(
        "Lease holder's run ended (SIGTERM) -> Lease taken by the next pod, s",
        format!("{gap:?}"),
    );
    assert!(
        gap.is_some_and(|g| g < duration * 2.0 / 3.0 - 1.0),
        "a SIGTERM'd holder releases the Lease at once; taken {gap:?} s after its end \
         (an expired one: not before {:.0} s): {lease}",
        duration * 2.0 / 3.0 - 1.0
    );
    gate.open();
    for j in ["mig-a", "mig-b"] {
        assert_eq!(
            w.ns.wait_job(j, Duration::from_secs(120)).0,
            JobEnd::Complete,
            "{j}"
        );
    }
    assert_once(&w);
}

#[test]
fn lease_holder_killed_the_waiting_pod_takes_over_after_expiry() {
    let w = setup("fault-kill");
    let gate = Gate::close(&w);
    let (holder, waiter) = holder_and_waiter(&w);
    let lease_name = lease_name();
    let lease_before = w.ns.get(&["lease", &lease_name]).expect("Lease");
    let container = job("x")["spec"]["template"]["spec"]["containers"][0]["name"]
        .as_str()
        .expect("container name")
        .to_string();
    let holder_job =
        w.ns.get(&["pod", &holder]).expect("holder pod")["metadata"]["labels"]["job-name"]
            .as_str()
            .expect("job-name label")
            .to_string();
    let t = Instant::now();
    w.node.kill_container(&w.ns.name, &holder, &container);
    let next = pod_at_gate(&w, Some(&holder), Duration::from_secs(120));
    let took = t.elapsed();
    figure(
        "Lease holder killed (SIGKILL) -> next pod migrating",
        secs(took),
    );
    // The pod that waited, or the old holder's replacement: whichever wins the release.
    assert!(
        next != holder && w.ns.pods("job-name").len() >= 2,
        "{next} took over from {holder} (waiting: {waiter})"
    );
    let duration = lease_before["spec"]["leaseDurationSeconds"]
        .as_u64()
        .unwrap_or(15);
    assert!(
        took >= Duration::from_secs(duration * 2 / 3 - 1)
            && took < Duration::from_secs(duration * 3),
        "a dead holder's Lease is taken after it expires ({duration} s without renewal): {took:?}"
    );
    let lease = w.ns.get(&["lease", &lease_name]).expect("Lease");
    assert!(
        lease["spec"]["leaseTransitions"].as_u64()
            > lease_before["spec"]["leaseTransitions"].as_u64(),
        "a new epoch: {lease}"
    );
    gate.open();
    // The other Job completes; the killed pod's own Job retries or fails as deploy/job.yaml's
    // backoffLimit says (exit 137 is not a dbinit exit code).
    for j in ["mig-a", "mig-b"] {
        let (end, _) = w.ns.wait_job(j, Duration::from_secs(120));
        if j != holder_job {
            assert_eq!(end, JobEnd::Complete, "{j}");
        }
    }
    assert_once(&w);
}

/// The Lease of deploy/job.yaml's Job.
fn lease_name() -> String {
    job_env(&job("x"), "DBINIT_LEASE_NAME").unwrap_or("dbinit-migrations".into())
}

#[test]
fn a_job_still_waiting_for_its_database_does_not_hold_the_lease() {
    let w = setup("lease-ready");
    // A Job whose database does not answer (a Service whose endpoint port is closed)...
    let closed = dbinit_tests::node::free_port_on_node(w.node);
    dbinit_tests::node::service(w.node, &w.ns.name, "nodb", 5432, closed);
    let mut blocked = job("blocked");
    for e in blocked["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .expect("env")
    {
        match e["name"].as_str() {
            Some("POSTGRES_HOST") => e["value"] = json!("nodb"),
            // Still waiting, long after the other Job is done, however slow the node is.
            Some("DBINIT_TIMEOUT") => e["value"] = json!("240s"),
            _ => {}
        }
    }
    w.ns.apply(&blocked);
    let blocked_pod = w.ns.wait_pod(
        "the blocked Job's pod running",
        "job-name=blocked",
        Duration::from_secs(60),
        |p| p["status"]["phase"] == "Running",
    );
    let blocked_pod = blocked_pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // Seen waiting: its second attempt to reach PostgreSQL has failed.
    dbinit_tests::node::deadline_loop(
        "the blocked Job's pod retrying PostgreSQL",
        Duration::from_secs(60),
        || {
            let logs = w.ns.ok(&["logs", &blocked_pod]);
            match logs.matches("not ready, retrying").count() {
                n if n >= 2 => Ok(()),
                n => Err(format!("{n} retries logged")),
            }
        },
    );
    if let Some(lease) = w.ns.get(&["lease", &lease_name()]) {
        let holder = lease["spec"]["holderIdentity"].as_str().unwrap_or_default();
        assert!(
            holder.is_empty() || !holder.contains(&blocked_pod),
            "the Job still waiting for its database holds the Lease ({holder}): it was taken \
             before PostgreSQL/Redis were ready"
        );
    }
    // ...does not keep a Job whose database is up from migrating: that Job completes while
    // the blocked one is still waiting (a Lease held by the blocked pod would be let go
    // only when it gives up, minutes later).
    w.ns.apply(&job("mig"));
    let (end, took) = w.ns.wait_job("mig", Duration::from_secs(180));
    figure(
        "Job Complete while another Job waits for its database",
        secs(took),
    );
    assert_eq!(end, JobEnd::Complete);
    let blocked_pods = w.ns.pods("job-name=blocked");
    assert!(
        blocked_pods
            .iter()
            .any(|p| p["status"]["phase"] == "Running"),
        "the blocked Job is still waiting for its database"
    );
    assert_once(&w);
}

#[test]
fn a_failed_migration_releases_the_lease_at_once() {
    let w = crate::common::world("lease-fail");
    w.db.expose(w.node, &w.ns.name, "postgres", "redis");
    w.apply_files(&["deploy/rbac.yaml", "deploy/secret.example.yaml"]);
    w.migrations_configmap("e2e-migrations", &[("V1__e2e_broken.sql", "SELEC 1;\n")]);
    let mut j = job("broken");
    j["spec"]["backoffLimit"] = json!(0);
    w.ns.apply(&j);
    let (end, _) = w.ns.wait_job("broken", Duration::from_secs(120));
    assert!(matches!(end, JobEnd::Failed(_)), "{end:?}");
    let pods = w.ns.pods("job-name=broken");
    let term = &pods[0]["status"]["containerStatuses"][0]["state"]["terminated"];
    let message = term["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("V1__e2e_broken") && message.contains("exit 5"),
        "termination message names the file: {message}"
    );
    let ran = parse_time(term["finishedAt"].as_str().unwrap_or_default())
        .zip(parse_time(term["startedAt"].as_str().unwrap_or_default()))
        .map(|(f, s)| f - s);
    figure(
        "failed migration: container start -> exit, s",
        format!("{ran:?}"),
    );
    // What "at once" means is the Lease's state now, not a time: released by the run itself
    // (an expired Lease would still name the holder).
    let lease = w.ns.get(&["lease", &lease_name()]).expect("Lease");
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "the Lease is released: {lease}"
    );
    w.assert_applied_once("agentic_deals", &[]);
}
