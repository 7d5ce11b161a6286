//! deploy/ against a real kube-apiserver, and the manifests' own env and args run through the
//! real binaries against real PostgreSQL and Redis (the quick, apiserver-only tier: the Job's
//! container runs as a local process; the one-node cluster's e2e suite runs it in a pod).
//! deploy/ and the Helm chart must not drift apart: the last test compares what both make.

#[path = "helm/driver.rs"]
#[allow(dead_code)] // shared with tests/helm.rs, which uses all of it
mod driver;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use dbinit_tests::manifest::{PodWorld, local_process, volume_dir};
use dbinit_tests::{KubeApi, Pg, Redis, RedisOpts, run};
use serde_json::Value;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

/// Every Kubernetes object in a manifest file.
fn objects(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy(file)).expect("read manifest");
    serde_saphyr::from_multiple::<Value>(&text).expect("valid YAML")
}

fn kubectl(api: &KubeApi, token: &str, ns: &str) -> Command {
    let mut c = Command::new("kubectl");
    c.arg("--kubeconfig").arg(api.kubeconfig(token, ns));
    c
}

const MANIFESTS: &[&str] = &[
    "rbac.yaml",
    "secret.example.yaml",
    "job.yaml",
    "app-deployment.yaml",
    "postgres.yaml",
    "redis.yaml",
];

#[test]
fn every_manifest_passes_a_server_side_dry_run() {
    let api = KubeApi::shared();
    let ns = api.namespace("dryrun");
    for file in MANIFESTS {
        // A generateName Job is created, never applied (README: `kubectl create -f`).
        let verb = if *file == "job.yaml" {
            "create"
        } else {
            "apply"
        };
        let out = kubectl(api, "admin-token", &ns)
            .args([verb, "--dry-run=server", "-f"])
            .arg(deploy(file))
            .output()
            .expect("kubectl");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.matches("(server dry run)").count(),
            objects(file).len(),
            "{file}: every object accepted: {stdout}"
        );
    }
}

#[test]
fn pods_are_hardened() {
    for file in ["job.yaml", "app-deployment.yaml"] {
        for obj in objects(file) {
            let spec = &obj["spec"]["template"]["spec"];
            assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{file}");
            assert_eq!(spec["enableServiceLinks"], false, "{file}");
            assert_eq!(
                spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{file}"
            );
            let containers = spec["containers"].as_array().into_iter().flatten();
            let inits = spec["initContainers"].as_array().into_iter().flatten();
            for c in containers.chain(inits) {
                let sc = &c["securityContext"];
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{file} {}", c["name"]);
                assert_eq!(
                    sc["allowPrivilegeEscalation"], false,
                    "{file} {}",
                    c["name"]
                );
                assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{file} {}", c["name"]);
                assert!(
                    c["resources"]["limits"]["memory"].is_string(),
                    "{file} {}",
                    c["name"]
                );
            }
        }
    }
}

/// README's init-container snippet (the block marked `e2e:init-container`).
fn readme_pod_spec() -> Value {
    let block = dbinit_tests::docs::Docs::load().block("init-container");
    serde_saphyr::from_str(&block).expect("README's snippet is YAML")
}

/// The secret example's data: key -> value.
fn secret_values() -> BTreeMap<String, String> {
    let s = &objects("secret.example.yaml")[0];
    s["stringData"]
        .as_object()
        .expect("stringData")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

#[test]
fn the_manifests_env_and_args_run_the_real_binaries_with_least_privilege() {
    let api = KubeApi::shared();
    let ns = api.namespace("manifests");
    for file in ["rbac.yaml", "secret.example.yaml"] {
        let out = kubectl(api, "admin-token", &ns)
            .args(["apply", "-f"])
            .arg(deploy(file))
            .output()
            .expect("kubectl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let secrets = secret_values();
    let pg = Pg::start_new();
    pg.psql(
        "postgres",
        &format!(
            "CREATE ROLE app LOGIN CREATEDB PASSWORD '{}'",
            secrets["password"]
        ),
    );
    let redis = Redis::start(RedisOpts::default());
    let secret_dir = volume_dir(&secrets);
    let world = PodWorld::with_servers(&ns, pg.port, Some(redis.port), secret_dir.path());

    // README's commands: the Job is created, and created again to re-run it; each run is a
    // new Job. Its container runs authenticated as the ServiceAccount of deploy/rbac.yaml
    // (a real token), then the test marks it complete (no Job controller here).
    let token = api.service_account_token(&ns, "dbinit");
    let mut names = Vec::new();
    for run_no in 1..=2 {
        let out = kubectl(api, "admin-token", &ns)
            .args(["create", "-f", "deploy/job.yaml", "-o", "name"])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .output()
            .expect("kubectl");
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success(),
            "run {run_no}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let name = stdout
            .strip_prefix("job.batch/")
            .expect("job.batch/NAME")
            .to_string();
        assert!(name.starts_with("dbinit-migrate-"), "{name}");
        let job = api.wait_for(&format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}"));
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "dbinit");
        let mut job_cmd = local_process(&pod["containers"][0], &world);
        job_cmd.env("KUBECONFIG", api.kubeconfig(&token, &ns));
        let out = run(job_cmd);
        assert_eq!(out.code, Some(0), "the Job's container: {}", out.stderr);
        assert!(!out.all_output().contains(&secrets["password"]));
        api.complete_job(&ns, &name);
        names.push(name);
    }
    assert_ne!(names[0], names[1], "each run is a new Job");
    assert_eq!(pg.history("agentic_deals"), "1,2,3,4,5,6,7");
    let status = api
        .configmap(&ns, "dbinit-status")
        .expect("status ConfigMap");
    assert!(status.contains("\"phase\": \"Succeeded\""), "{status}");
    let status: Value = serde_json::from_str(&status).expect("json");
    let runs = status["data"]["history"]
        .as_str()
        .unwrap_or("")
        .lines()
        .count();
    assert_eq!(runs, 2, "both runs recorded");

    // The application's init container: `dbinit wait` finds the schema and exits 0.
    let app = &objects("app-deployment.yaml")[0];
    let pod = &app["spec"]["template"]["spec"];
    let out = run(local_process(&pod["initContainers"][0], &world));
    assert_eq!(out.code, Some(0), "the init container: {}", out.stderr);

    // README's init container snippet: a pod spec the apiserver accepts (its volume is
    // there), whose init container finds the schema too.
    let snippet = readme_pod_spec();
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "readme-snippet"},
        "spec": {"enableServiceLinks": snippet["enableServiceLinks"],
            "initContainers": snippet["initContainers"], "volumes": snippet["volumes"],
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}});
    let (code, body) = api.admin(
        "POST",
        &format!("/api/v1/namespaces/{ns}/pods?dryRun=All"),
        Some(&pod.to_string()),
    );
    assert_eq!(code, 201, "README's snippet as a pod: {body}");
    assert_eq!(snippet["enableServiceLinks"], false);
    let out = run(local_process(&snippet["initContainers"][0], &world));
    assert_eq!(out.code, Some(0), "README's init container: {}", out.stderr);

    // Least privilege: the same identity can read neither Secrets nor other ConfigMaps.
    let (code, _) = api.admin(
        "POST",
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        Some(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"someone-elses"},"data":{"k":"v"}}"#),
    );
    assert_eq!(code, 201);
    for path in [
        format!("/api/v1/namespaces/{ns}/secrets"),
        format!("/api/v1/namespaces/{ns}/secrets/agentic-deals-db"),
        format!("/api/v1/namespaces/{ns}/configmaps/someone-elses"),
        format!("/api/v1/namespaces/{ns}/configmaps"),
        format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"),
    ] {
        let (code, body) = api.call(&token, "GET", &path, None);
        assert_eq!(code, 403, "{path} must be forbidden: {body}");
    }
    let (code, body) = api.call(
        &token,
        "PUT",
        &format!("/api/v1/namespaces/{ns}/configmaps/someone-elses"),
        Some(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"someone-elses"},"data":{"k":"x"}}"#),
    );
    assert_eq!(
        code, 403,
        "updating another ConfigMap must be forbidden: {body}"
    );
}

/// The Job and RBAC in deploy/ are what the chart makes with `fullnameOverride=dbinit` and
/// default values, as the apiserver stores them (defaults filled in on both sides).
#[test]
fn deploy_job_and_rbac_match_what_the_chart_renders() {
    let api = KubeApi::shared();
    let ns = api.namespace("drift");
    let values = serde_json::json!({"fullnameOverride": "dbinit"});
    // Release "dbinit": the labels the chart passes in DBINIT_LABELS name the release.
    let child = driver::helm(api, "install", &ns, "dbinit", &values);
    let chart_job = api.wait_for(&format!(
        "/apis/batch/v1/namespaces/{ns}/jobs/dbinit-migrate"
    ));
    let chart_role = api.wait_for(&format!(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/dbinit"
    ));
    let chart_binding = api.wait_for(&format!(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/dbinit"
    ));
    api.complete_job(&ns, "dbinit-migrate");
    driver::finish(child, "install");

    let out = kubectl(api, "admin-token", &ns)
        .args(["create", "--dry-run=server", "-o", "json", "-f"])
        .arg(deploy("job.yaml"))
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deploy_job: Value = serde_json::from_slice(&out.stdout).expect("json");
    let comparable = |job: &Value| {
        let mut spec = job["spec"].clone();
        // Set by the apiserver per Job (controller-uid) and by Helm (labels).
        spec.as_object_mut().expect("spec").remove("selector");
        spec["template"]
            .as_object_mut()
            .expect("template")
            .remove("metadata");
        spec
    };
    assert_eq!(
        comparable(&deploy_job),
        comparable(&chart_job),
        "deploy/job.yaml and the chart's Job differ"
    );
    let deploy_rbac = objects("rbac.yaml");
    assert_eq!(
        deploy_rbac[1]["rules"], chart_role["rules"],
        "Role rules differ"
    );
    assert_eq!(
        deploy_rbac[2]["roleRef"], chart_binding["roleRef"],
        "roleRef differs"
    );
    assert_eq!(
        deploy_rbac[2]["subjects"][0]["name"],
        chart_binding["subjects"][0]["name"]
    );
}
