//! PostgreSQL restarted while the chart's hook Job migrates (issue 23, experiment 6; in the
//! multi-node tier): the Job's pod reconnects, runs the rolled-back migration again from its
//! start, and the Job completes with exit 0; each migration is applied once.
//!
//! The gate V1 waits at is held by a *prepared* transaction, whose lock survives the restart:
//! the same pod is seen waiting at it again after the restart (it reconnected and re-ran V1)
//! before the test opens it.

use std::time::{Duration, Instant};

use dbinit_tests::node::{Node, deadline_loop};
use serde_json::json;

use crate::common::{World, figure, world};
use crate::faults::{GATE_KEY, assert_once, pod_at_gate, pods_at_gate};
use crate::hook::{RELEASE, chart_world, gated_values, values_file};

/// Closes the gate with a prepared transaction holding its lock.
fn close_prepared_gate(w: &World) {
    w.db.pg
        .psql("postgres", "CREATE DATABASE agentic_deals OWNER app");
    w.db.pg.psql(
        "agentic_deals",
        &format!(
            "BEGIN; SELECT pg_advisory_xact_lock({GATE_KEY}); PREPARE TRANSACTION 'e2e-gate';"
        ),
    );
}

fn open_prepared_gate(w: &World) {
    w.db.pg
        .psql("agentic_deals", "ROLLBACK PREPARED 'e2e-gate'");
}

#[test]
fn postgres_restarted_mid_migration_the_hook_job_reconnects_and_completes_once() {
    let node = Node::get();
    if node.two_nodes("postgres_restarted_mid_migration").is_none() {
        return;
    }
    let w = world("pg-restart");
    chart_world(&w);
    close_prepared_gate(&w);
    let (_file, values) = values_file(&gated_values(30, json!({})));
    std::thread::scope(|s| {
        let helm = s.spawn(|| {
            w.sh.run(
                &format!(
                    "helm install {RELEASE} helm/dbinit -f {} --timeout 5m",
                    values.display()
                ),
                Duration::from_secs(330),
            )
        });
        let pod = pod_at_gate(&w, None, Duration::from_secs(180));
        let t = Instant::now();
        w.db.pg.stop();
        w.db.pg.start();
        figure(
            "PostgreSQL restart (fast stop + start)",
            format!("{:.2} s", t.elapsed().as_secs_f64()),
        );
        // The same pod, back at the gate: it reconnected and is running V1 again.
        deadline_loop(
            "the same pod at the gate again",
            Duration::from_secs(120),
            || {
                let at = pods_at_gate(&w);
                if at.contains(&pod) {
                    Ok(())
                } else {
                    Err(format!("at the gate: {at:?}"))
                }
            },
        );
        figure(
            "PostgreSQL restarted -> the same pod migrating again",
            format!("{:.2} s", t.elapsed().as_secs_f64()),
        );
        assert_eq!(
            pods_at_gate(&w),
            vec![pod.clone()],
            "no other pod was needed"
        );
        open_prepared_gate(&w);
        let f = helm.join().expect("helm thread");
        // Kubernetes 1.20: the chart's Job has backoffLimit 0, so Complete means this one pod
        // exited 0.
        assert_eq!(f.code, Some(0), "helm install: {}{}", f.stdout, f.stderr);
        figure(
            "PostgreSQL restarted -> hook Job Complete",
            format!("{:.2} s", t.elapsed().as_secs_f64()),
        );
    });
    assert_once(&w);
}
