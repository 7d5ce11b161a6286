//! The Helm chart on the real node: README's install command, the hook Job's pod migrating,
//! the example app's `dbinit wait` pods becoming Ready, an upgrade adding one migration, `helm
//! test`, and an upgrade with a broken migration that fails naming the file.

use std::time::Duration;

use dbinit_tests::node::parse_time_precise;
use serde_json::{Value, json};

use crate::common::{builtin_files, builtin_versions, figure, secs, world};

/// The release's hooks of kind `kind` whose events include `event`, as (name, object).
fn hooks(release: &Value, kind: &str, event: &str) -> Vec<(String, Value)> {
    release["hooks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["kind"] == kind)
        .filter(|h| {
            h["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|x| x == event))
        })
        .map(|h| {
            let obj: Value = serde_saphyr::from_str(h["manifest"].as_str().unwrap_or_default())
                .expect("hook manifest is YAML");
            (h["name"].as_str().unwrap_or_default().to_string(), obj)
        })
        .collect()
}

/// The value of env variable `name` of a Job's first container.
fn job_env(job: &Value, name: &str) -> Option<String> {
    job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
        .map(str::to_string)
}

/// Helm's own record of the last run of hook `hook` (for `event`): (phase, seconds from start
/// to completion).
fn last_run(release: &Value, hook: &str, event: &str) -> (String, Option<f64>) {
    let h = release["hooks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| {
            h["name"] == hook
                && h["events"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|x| x == event))
        })
        .cloned()
        .unwrap_or_default();
    let lr = &h["last_run"];
    let t = |k: &str| lr[k].as_str().and_then(parse_time_precise);
    let took = match (t("started_at"), t("completed_at")) {
        (Some(a), Some(b)) if b >= a => Some(b - a),
        _ => None,
    };
    (lr["phase"].as_str().unwrap_or_default().to_string(), took)
}

/// The release as Helm stored it (`helm status`), with each hook's last run.
fn stored_release(w: &crate::common::World, release: &str) -> Value {
    w.sh.run_ok(&format!("helm status {release}"), Duration::from_secs(60));
    w.sh.helm_log()
        .into_iter()
        .rfind(|e| e["action"] == "status")
        .map(|e| e["result"].clone())
        .expect("helm status ran")
}

#[test]
fn helm_install_with_readme_values_hook_job_app_ready_upgrade_test_and_broken_upgrade() {
    let w = world("helm");
    w.db.expose(w.node, &w.ns.name, "postgres", "redis");
    let builtin = builtin_versions();

    // README's commands, in order, as written.
    for cmd in w.readme.commands("helm-install") {
        let f = w.sh.run_ok(&cmd, Duration::from_secs(300));
        if cmd.contains("helm install") {
            figure("helm install (README) wall time", secs(f.elapsed));
        }
        if cmd.contains("configmap") && cmd.contains("-o yaml") {
            assert!(
                f.stdout.contains("phase: Succeeded"),
                "README's status command shows the run: {}",
                f.stdout
            );
        }
    }
    let log = w.sh.helm_log();
    let install = log
        .iter()
        .find(|e| e["action"] == "install")
        .expect("README's helm block runs `helm install`");
    assert_eq!(install["ok"], true, "{}", install["error"]);
    let release = install["release"].as_str().expect("release").to_string();
    let rel = &install["result"];
    assert_eq!(rel["info"]["status"], "deployed", "release status");

    // The pre-install hook Job ran in a pod of the image and migrated.
    let jobs = hooks(rel, "Job", "pre-install");
    let (job_name, job) = jobs
        .iter()
        .find(|(_, j)| job_env(j, "DBINIT_STATUS_CONFIGMAP").is_some() || jobs.len() == 1)
        .cloned()
        .expect("a pre-install hook Job");
    let stored = stored_release(&w, &release);
    let (phase, took) = last_run(&stored, &job_name, "pre-install");
    assert_eq!(phase, "Succeeded", "hook Job {job_name} as Helm saw it");
    if let Some(t) = took {
        figure(
            "hook Job created -> Complete (Helm's hook record, cold database)",
            format!("{t:.2} s"),
        );
    }
    w.assert_applied_once("agentic_deals", &builtin);
    let status_cm = job_env(&job, "DBINIT_STATUS_CONFIGMAP").unwrap_or("dbinit-status".into());
    let cm =
        w.ns.get(&["configmap", &status_cm])
            .unwrap_or_else(|| panic!("status ConfigMap {status_cm}"));
    assert_eq!(cm["data"]["phase"], "Succeeded", "{cm}");
    assert_eq!(
        cm["data"]["appliedVersion"],
        builtin.last().expect("migrations").to_string()
    );

    // The example app: 3 replicas whose init container runs `dbinit wait` in the image.
    let apps =
        w.ns.get(&[
            "deployments",
            "-l",
            &format!("app.kubernetes.io/instance={release}"),
        ])
        .expect("deployments");
    let app = apps["items"]
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .expect("README's values enable the example Deployment");
    let app_name = app["metadata"]["name"].as_str().expect("name").to_string();
    let init = &app["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(init["command"], json!(["/dbinit", "wait"]));
    let selector = app["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector")
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",");
    w.ns.ok(&["scale", "deployment", &app_name, "--replicas=3"]);
    let t = w.ns.wait_ready(&selector, 3, Duration::from_secs(120));
    figure("example app: 3 pods Ready (after install)", secs(t));
    figure(
        "example app: pod create -> Ready, seconds (apiserver timestamps)",
        format!("{:?}", w.ns.ready_seconds(&selector)),
    );
    w.assert_built_image(&selector, "dbinit");
    for m in w.termination_messages(&selector, "dbinit") {
        assert!(
            m.starts_with("ok"),
            "init container's termination message: {m}"
        );
    }

    // helm upgrade with one more migration applies exactly it.
    let applied_before = w.db.pg.psql(
        "agentic_deals",
        "SELECT string_agg(applied_on, ',' ORDER BY version) FROM refinery_schema_history",
    );
    let mut files = builtin_files();
    let extra = builtin.last().expect("migrations") + 1;
    let extra_name = format!("V{extra}__e2e_extra");
    files.insert(
        format!("{extra_name}.sql"),
        Value::String("CREATE TABLE e2e_extra (id int PRIMARY KEY);\n".into()),
    );
    let values = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(
        values.path(),
        json!({"migration": {"files": files}}).to_string(),
    )
    .expect("write values");
    let upgrade = format!(
        "helm upgrade {release} helm/dbinit --reuse-values -f {} --set exampleApp.replicas=3 --timeout 3m",
        values.path().display()
    );
    let f = w.sh.run_ok(&upgrade, Duration::from_secs(240));
    figure("helm upgrade (+1 migration) wall time", secs(f.elapsed));
    if let (_, Some(t)) = last_run(&stored_release(&w, &release), &job_name, "pre-upgrade") {
        figure(
            "hook Job created -> Complete (Helm's hook record, +1 migration)",
            format!("{t:.2} s"),
        );
    }
    let mut with_extra = builtin.clone();
    with_extra.push(extra);
    w.assert_applied_once("agentic_deals", &with_extra);
    let applied_after = w.db.pg.psql(
        "agentic_deals",
        &format!(
            "SELECT string_agg(applied_on, ',' ORDER BY version) FROM refinery_schema_history WHERE version < {extra}"
        ),
    );
    assert_eq!(
        applied_before, applied_after,
        "earlier migrations untouched"
    );
    let cm = w.ns.get(&["configmap", &status_cm]).expect("status");
    let this_run = cm["data"]["appliedThisRun"].as_str().unwrap_or_default();
    assert!(
        this_run.contains(&extra_name) && !this_run.contains("V1__"),
        "the upgrade applied exactly {extra_name}: appliedThisRun={this_run}"
    );
    w.ns.wait_ready(&selector, 3, Duration::from_secs(120));

    // helm test: the chart's test hook runs and passes.
    let f =
        w.sh.run(&format!("helm test {release}"), Duration::from_secs(180));
    let test =
        w.sh.helm_log()
            .into_iter()
            .rfind(|e| e["action"] == "test")
            .expect("helm test ran");
    assert_eq!(f.code, Some(0), "helm test: {}{}", f.stdout, f.stderr);
    let test_hooks: Vec<String> = test["result"]["hooks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| {
            h["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|x| x == "test"))
        })
        .map(|h| format!("{}={}", h["name"], h["last_run"]["phase"]))
        .collect();
    assert!(
        !test_hooks.is_empty() && test_hooks.iter().all(|h| h.ends_with("=\"Succeeded\"")),
        "the chart has test hooks and they passed: {test_hooks:?}"
    );

    // helm upgrade with a broken migration fails, and the Job's pod names the file.
    let broken = format!("V{}__e2e_broken", extra + 1);
    files.insert(format!("{broken}.sql"), Value::String("SELEC 1;\n".into()));
    std::fs::write(
        values.path(),
        json!({"migration": {"files": files}}).to_string(),
    )
    .expect("write values");
    let f = w.sh.run(&upgrade, Duration::from_secs(240));
    figure(
        "helm upgrade (broken migration) until it fails",
        secs(f.elapsed),
    );
    assert_ne!(
        f.code,
        Some(0),
        "an upgrade with a broken migration must fail"
    );
    let job =
        w.ns.get(&["job", &job_name])
            .expect("the failed hook Job is kept");
    let uid = job["metadata"]["uid"].as_str().expect("uid").to_string();
    let described =
        w.ns.ok(&["describe", "pods", "-l", &format!("controller-uid={uid}")]);
    assert!(
        described.contains(&broken),
        "kubectl describe of the Job's pod names {broken}:\n{described}"
    );
    let container = job["spec"]["template"]["spec"]["containers"][0]["name"]
        .as_str()
        .expect("container name")
        .to_string();
    let messages = w.termination_messages(&format!("controller-uid={uid}"), &container);
    assert!(
        messages
            .iter()
            .any(|m| m.contains(&broken) && m.contains("exit 5")),
        "termination message: {messages:?}"
    );
    w.assert_applied_once("agentic_deals", &with_extra);
}
