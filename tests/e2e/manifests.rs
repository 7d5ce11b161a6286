//! The plain manifests of deploy/ on the real node, through README's commands: the migration
//! Job's pod runs `dbinit-job` in the image and completes; README's re-run command makes a
//! second Job that completes too and applies nothing again.

use std::time::{Duration, Instant};

use dbinit_tests::node::{TestNs, deadline_loop, parse_time};
use serde_json::Value;

use crate::common::{builtin_versions, figure, secs, world};

/// Waits until every Job in the namespace is Complete (a Failed one fails the test at once);
/// returns the Jobs.
pub fn all_jobs_complete(ns: &TestNs, timeout: Duration) -> Vec<Value> {
    deadline_loop("every Job Complete", timeout, || {
        let jobs = ns
            .get(&["jobs"])
            .and_then(|l| l["items"].as_array().cloned())
            .unwrap_or_default();
        let mut pending = Vec::new();
        for j in &jobs {
            let name = j["metadata"]["name"].as_str().unwrap_or_default();
            let conds = j["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if let Some(f) = conds
                .iter()
                .find(|c| c["type"] == "Failed" && c["status"] == "True")
            {
                panic!("Job {name} failed: {} {}", f["reason"], f["message"]);
            }
            if !conds
                .iter()
                .any(|c| c["type"] == "Complete" && c["status"] == "True")
            {
                pending.push(format!("{name}: {}", j["status"]));
            }
        }
        if pending.is_empty() {
            Ok(jobs)
        } else {
            Err(pending.join("; "))
        }
    })
}

/// creationTimestamp -> completionTime of a Job, in whole seconds (the apiserver's resolution).
pub fn job_seconds(job: &Value) -> Option<i64> {
    let c = parse_time(job["metadata"]["creationTimestamp"].as_str()?)?;
    let d = parse_time(job["status"]["completionTime"].as_str()?)?;
    Some(d - c)
}

#[test]
fn readme_deploy_commands_job_completes_and_rerun_works() {
    let w = world("deploy");
    w.db.expose(w.node, &w.ns.name, "postgres", "redis");
    let mut cmds = w.readme.commands("deploy-job");
    // README's re-run path: the command its comment says re-runs the migration, once more.
    let rerun = cmds
        .iter()
        .find(|c| c.contains("re-run"))
        .cloned()
        .expect("README's deploy block says which command re-runs the migration (\"re-run\")");
    let status_at = cmds
        .iter()
        .position(|c| c.contains("configmap") && c.contains("-o yaml"))
        .unwrap_or(cmds.len());
    cmds.insert(status_at, rerun);
    let mut seen = 0;
    for cmd in &cmds {
        let f = w.sh.run_ok(cmd, Duration::from_secs(120));
        let t = Instant::now();
        let jobs = all_jobs_complete(&w.ns, Duration::from_secs(180));
        if jobs.len() > seen {
            figure(
                &format!("deploy/ Job(s) Complete after `{}`", cmd.trim()),
                format!(
                    "{} after the command (apiserver create -> complete: {:?} s)",
                    secs(t.elapsed()),
                    jobs.iter().filter_map(job_seconds).collect::<Vec<_>>()
                ),
            );
            seen = jobs.len();
        }
        if cmd.contains("configmap") && cmd.contains("-o yaml") {
            assert!(
                f.stdout.contains("phase: Succeeded"),
                "README's status command shows the run: {}",
                f.stdout
            );
        }
    }
    assert!(
        seen >= 2,
        "README's commands ran the Job and then re-ran it: {seen} Job(s)"
    );
    w.assert_applied_once("agentic_deals", &builtin_versions());
    w.assert_no_lock();
    let container = crate::common::repo_yaml("deploy/job.yaml")["spec"]["template"]["spec"]
        ["containers"][0]["name"]
        .as_str()
        .expect("container name")
        .to_string();
    w.assert_built_image("job-name", &container);
    let jobs = w.ns.get(&["jobs"]).expect("jobs");
    let status_cm = jobs["items"][0]["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "DBINIT_STATUS_CONFIGMAP")
        .and_then(|e| e["value"].as_str())
        .unwrap_or("dbinit-status")
        .to_string();
    let cm =
        w.ns.get(&["configmap", &status_cm])
            .expect("status ConfigMap");
    let runs = cm["data"]["history"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .count();
    assert!(runs >= 2, "status history records both runs: {cm}");
    assert_eq!(cm["data"]["phase"], "Succeeded");
}
