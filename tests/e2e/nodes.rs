//! Two nodes (`make cluster-up NODES=2`; skipped with a line on one): the chart's hook Job
//! migrating on node 2 when node 2 is cut off from the apiserver while it still reaches
//! PostgreSQL (issue 23, experiment 1: the holder must fence itself before its Lease could
//! expire for anyone else), and when node 2 is lost outright, every process SIGKILLed
//! (experiment 2). Either way the Job's next pod finishes on node 1 and each migration is
//! applied once.
//!
//! Node 1 is cordoned until the Job's first pod runs, so it lands on node 2; V1 then waits at
//! the test's [`Gate`], and the gate opens only once the fault has landed and the next pod is
//! at it. No assertion is a stopwatch: the fence is compared with the Lease's own renewTime and
//! duration (both on this machine's clock, as PostgreSQL's log is).

use std::time::{Duration, Instant};

use dbinit_tests::node::{Node, SecondNode};
use serde_json::json;

use crate::common::{World, figure, world};
use crate::faults::{Gate, assert_once, pod_at_gate};
use crate::hook::{
    RELEASE, chart_world, gate_backend, gated_values, lease, node_of, replacement_figures,
    session_end, termination_message_on_disk, values_file, wall,
};

/// How long the Job's pods tolerate a lost node (chart value migration.nodeLossTolerationSeconds).
const TOLERATION: u32 = 5;

/// `helm install` of the gated chart, as the tests run it in the background.
fn install_command(values: &std::path::Path) -> String {
    format!(
        "helm install {RELEASE} helm/dbinit -f {} --timeout 5m",
        values.display()
    )
}

/// Waits for the hook Job's first pod at the gate, on node 2 (node 1 cordoned meanwhile);
/// returns its name and uid.
fn holder_on_node2(w: &World, n2: &SecondNode) -> (String, String) {
    let node1 = w.node.name.clone().expect("DBINIT_NODE_NAME");
    let cordon = w.node.cordon(&node1);
    let holder = pod_at_gate(w, None, Duration::from_secs(180));
    drop(cordon);
    assert_eq!(node_of(w, &holder), n2.name, "node 1 was cordoned");
    let pod = w.ns.get(&["pod", &holder]).expect("holder");
    let tolerations = pod["spec"]["tolerations"].to_string();
    assert!(
        tolerations.contains("node.kubernetes.io/unreachable")
            && tolerations.contains(&format!("\"tolerationSeconds\":{TOLERATION}")),
        "the chart's Job pod tolerates a lost node for {TOLERATION} s only: {tolerations}"
    );
    let uid = pod["metadata"]["uid"].as_str().expect("uid").to_string();
    (holder, uid)
}

#[test]
fn partitioned_lease_holder_fences_before_its_lease_expires_and_node_1_finishes() {
    let node = Node::get();
    let Some(n2) = node.two_nodes("partitioned_lease_holder_fences") else {
        return;
    };
    let w = world("partition");
    chart_world(&w);
    let gate = Gate::close(&w);
    let (_file, values) = values_file(&gated_values(TOLERATION, json!({})));
    let node1 = node.name.clone().expect("DBINIT_NODE_NAME");
    std::thread::scope(|s| {
        let helm = s.spawn(|| {
            w.sh.run(&install_command(&values), Duration::from_secs(330))
        });
        let (holder, uid) = holder_on_node2(&w, n2);
        let backend = gate_backend(&w, &holder);
        let before = lease(&w);
        assert!(before.holder.contains(&holder), "{holder} holds the Lease");

        let t0 = wall();
        let mut partition = n2.partition_from_apiserver(node);
        // The holder cannot renew: it must stop, and its transaction end, before its Lease
        // could be taken (renewTime + duration, the Lease as its last renewal left it).
        let fenced = session_end(&w, &backend, Duration::from_secs(90));
        let last = lease(&w);
        assert_eq!(last.holder, before.holder, "nobody took the Lease yet");
        let expiry = last.renewed + last.duration;
        figure(
            "partition -> holder fenced (session ended), s",
            format!("{:.2}", fenced - t0),
        );
        figure(
            "holder fenced -> its Lease could expire for others, s (margin)",
            format!("{:.2}", expiry - fenced),
        );
        assert!(
            fenced < expiry,
            "the partitioned holder's session ended at {fenced:.3}, after its Lease could expire \
             for others ({expiry:.3}: renewed {:.3} + {} s)",
            last.renewed,
            last.duration
        );
        assert_eq!(
            w.db.pg
                .psql("agentic_deals", "SELECT to_regclass('slow') IS NULL"),
            "t",
            "V1 was rolled back: nothing of it committed"
        );
        let message =
            termination_message_on_disk(&n2.dir, &uid, "dbinit-job", Duration::from_secs(60));
        assert!(
            message.contains("exit 7") && message.contains("lost the lease"),
            "the fenced holder exits 7 (lock): {message}"
        );

        // Node 2 goes NotReady, its pod is evicted after the toleration, and the Job's next
        // pod, on node 1, takes the expired Lease and the advisory lock.
        let next = pod_at_gate(&w, Some(&holder), Duration::from_secs(300));
        assert_eq!(node_of(&w, &next), node1, "the next pod runs on node 1");
        replacement_figures(&w, "partition", &n2.name, &holder, t0);
        let taken = lease(&w);
        assert!(taken.holder.contains(&next), "{next} holds the Lease");
        assert!(
            taken.acquired >= expiry && taken.transitions > before.transitions,
            "taken after the old holder's expiry ({expiry:.3}): acquired {:.3}",
            taken.acquired
        );
        figure(
            "partition -> Lease taken by a pod on the other node, s",
            format!("{:.2}", taken.acquired - t0),
        );
        gate.open();
        let f = helm.join().expect("helm thread");
        assert_eq!(f.code, Some(0), "helm install: {}{}", f.stdout, f.stderr);
        figure(
            "partition -> helm install done, s",
            format!("{:.2}", wall() - t0),
        );
        partition.heal();
    });
    assert_once(&w);
    node.wait_node_ready(&n2.name, Duration::from_secs(180));
}

/// Brings node 2 back when dropped, however the test ends.
struct BringBack<'a> {
    n2: &'a SecondNode,
    node: &'a Node,
}

impl Drop for BringBack<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.n2.try_restart(self.node) {
            eprintln!("{e}");
        }
    }
}

#[test]
fn lost_node_every_process_sigkilled_the_job_finishes_on_node_1() {
    let node = Node::get();
    let Some(n2) = node.two_nodes("lost_node_every_process_sigkilled") else {
        return;
    };
    let w = world("node-loss");
    chart_world(&w);
    let gate = Gate::close(&w);
    let (_file, values) = values_file(&gated_values(TOLERATION, json!({})));
    let node1 = node.name.clone().expect("DBINIT_NODE_NAME");
    std::thread::scope(|s| {
        let helm = s.spawn(|| {
            w.sh.run(&install_command(&values), Duration::from_secs(330))
        });
        let (holder, _) = holder_on_node2(&w, n2);
        let backend = gate_backend(&w, &holder);

        // The node vanishes: its link goes dark (nothing it sends gets out, not even the FIN of
        // a dying process), then every process of it is SIGKILLed.
        let back = BringBack { n2, node };
        let t0 = wall();
        let started = Instant::now();
        let mut cut = n2.cut_off();
        let killed = n2.kill_everything();
        figure("node lost: processes SIGKILLed", killed);
        // PostgreSQL hears nothing from the dead client: keepalives end the session, and
        // with it the advisory lock and the open transaction.
        let freed = session_end(&w, &backend, Duration::from_secs(60));
        figure(
            "node lost -> PostgreSQL ended the holder's session, s",
            format!("{:.2}", freed - t0),
        );
        let next = pod_at_gate(&w, Some(&holder), Duration::from_secs(300));
        assert_eq!(node_of(&w, &next), node1, "the next pod runs on node 1");
        replacement_figures(&w, "node lost", &n2.name, &holder, t0);
        figure(
            "node lost -> next pod migrating on node 1, s",
            format!("{:.2}", wall() - t0),
        );
        gate.open();
        let f = helm.join().expect("helm thread");
        assert_eq!(f.code, Some(0), "helm install: {}{}", f.stdout, f.stderr);
        figure(
            "node lost (kill -9) -> hook Job Complete (helm install done), s",
            format!("{:.2}", started.elapsed().as_secs_f64()),
        );
        cut.heal();
        drop(back);
    });
    assert_once(&w);
    node.wait_node_ready(&n2.name, Duration::from_secs(180));
}
