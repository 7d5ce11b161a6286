//! The Helm chart, installed by the real Helm engine (PyPI helm-sdkpy) onto a real
//! kube-apiserver. The pre-install hook Job's container, as Helm rendered it, runs as a local
//! process against real PostgreSQL with the chart's ServiceAccount token; then the test marks
//! the Job complete (this apiserver has no Job controller) and Helm finishes the install.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use dbinit_tests::manifest::{PodWorld, local_process, volume_dir};
use dbinit_tests::{KubeApi, Pg, Redis, RedisOpts, run};
use serde_json::{Value, json};

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/dbinit")
}

fn helm_python() -> PathBuf {
    if let Some(p) = std::env::var_os("DBINIT_HELM_PYTHON") {
        return p.into();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    let p = std::env::var_os("DBINIT_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache/dbinit"))
        .join("helm-venv/bin/python");
    assert!(
        p.is_file(),
        "{} is missing: run `make envtest` (installs helm-sdkpy)",
        p.display()
    );
    p
}

fn install(api: &KubeApi, ns: &str, release: &str, values: &Value) -> Child {
    Command::new(helm_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/helm.py"))
        .arg("--kubeconfig")
        .arg(api.kubeconfig("admin-token", ns))
        .args(["--namespace", ns, "--release", release, "--timeout", "120"])
        .arg("--chart")
        .arg(chart())
        .args(["--values", &values.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("helm driver")
}

fn finish_install(child: Child) -> Value {
    let out = child.wait_with_output().expect("helm driver");
    assert!(
        out.status.success(),
        "helm install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("release JSON")
}

fn exists(api: &KubeApi, path: &str) -> bool {
    api.admin("GET", path, None).0 == 200
}

struct Servers {
    pg: Pg,
    _redis: Redis,
    redis_port: u16,
}

fn servers(password: &str) -> Servers {
    let pg = Pg::start_new();
    pg.psql(
        "postgres",
        &format!("CREATE ROLE app LOGIN CREATEDB PASSWORD '{password}'"),
    );
    let redis = Redis::start(RedisOpts::default());
    Servers {
        redis_port: redis.port,
        pg,
        _redis: redis,
    }
}

/// Runs the hook Job's container (as stored in the apiserver) locally with the chart's
/// ServiceAccount identity, then marks the Job complete.
fn run_hook_job(api: &KubeApi, ns: &str, job: &str, sa: &str, world: &PodWorld<'_>) {
    let job_obj = api.wait_for(&format!("/apis/batch/v1/namespaces/{ns}/jobs/{job}"));
    let pod = &job_obj["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], sa);
    let mut cmd = local_process(&pod["containers"][0], world);
    cmd.env(
        "KUBECONFIG",
        api.kubeconfig(&api.service_account_token(ns, sa), ns),
    );
    let out = run(cmd);
    assert_eq!(
        out.code,
        Some(0),
        "the hook Job's container: {}",
        out.stderr
    );
    api.complete_job(ns, job);
}

fn dry_run_release(api: &KubeApi, ns: &str, release: &Value) {
    let mut docs = vec![release["manifest"].as_str().unwrap_or("").to_string()];
    for hook in release["hooks"].as_array().into_iter().flatten() {
        docs.push(hook["manifest"].as_str().unwrap_or("").to_string());
    }
    let file = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(file.path(), docs.join("\n---\n")).expect("write");
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(api.kubeconfig("admin-token", ns))
        .args(["apply", "--dry-run=server", "-f"])
        .arg(file.path())
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "rendered chart fails a server dry run: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn chart_with_default_values_installs_and_its_hook_job_migrates() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-default");
    // The default values use the Secret of deploy/secret.example.yaml.
    let secret = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/secret.example.yaml"),
    )
    .expect("secret example");
    let (code, body) = api.call_with(
        "admin-token",
        "POST",
        &format!("/api/v1/namespaces/{ns}/secrets"),
        Some((&secret, "application/yaml")),
    );
    assert_eq!(code, 201, "{body}");
    let password = "change-me-7f3b9c";
    let s = servers(password);
    let helm = install(api, &ns, "demo", &json!({}));
    let secret_dir = volume_dir(&[("password".to_string(), password.to_string())].into());
    let world = PodWorld::with_servers(&ns, s.pg.port, Some(s.redis_port), secret_dir.path());
    run_hook_job(api, &ns, "demo-dbinit-migrate", "demo-dbinit", &world);
    let release = finish_install(helm);
    assert_eq!(s.pg.history("agentic_deals"), "1,2,3,4,5,6,7");
    for path in [
        format!("/api/v1/namespaces/{ns}/serviceaccounts/demo-dbinit"),
        format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/demo-dbinit"),
        format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/demo-dbinit"),
        format!("/api/v1/namespaces/{ns}/configmaps/dbinit-status"),
        format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/dbinit-migrations"),
    ] {
        assert!(exists(api, &path), "{path} exists");
    }
    assert!(
        !exists(
            api,
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/demo-dbinit-app")
        ),
        "no example app by default"
    );
    assert!(
        !exists(
            api,
            &format!("/api/v1/namespaces/{ns}/secrets/demo-dbinit-postgres")
        ),
        "no chart-made Secret with existingSecret"
    );
    dry_run_release(api, &ns, &release);

    // Least privilege: the chart's identity cannot read Secrets.
    let token = api.service_account_token(&ns, "demo-dbinit");
    let (code, _) = api.call(
        &token,
        "GET",
        &format!("/api/v1/namespaces/{ns}/secrets"),
        None,
    );
    assert_eq!(code, 403);
}

#[test]
fn chart_with_custom_values_makes_what_they_say() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-custom");
    let password = "chart-made-secret-pw";
    let s = servers(password);
    let values = json!({
        "postgres": {"existingSecret": "", "password": password, "database": "custom_db"},
        "redis": {"enabled": false},
        "image": {"repository": "registry.example/dbinit", "tag": "1.2.3"},
        "migration": {
            "leaseName": "custom-lease",
            "statusConfigMap": "custom-status",
            "backoffLimit": 1,
            "files": {"V1__from_values.sql": "CREATE TABLE from_values (id int);"}
        },
        "exampleApp": {"enabled": true, "replicas": 3}
    });
    let helm = install(api, &ns, "custom", &values);
    let secret_dir = volume_dir(&[("password".to_string(), password.to_string())].into());
    let migrations_dir = volume_dir(
        &[(
            "V1__from_values.sql".to_string(),
            "CREATE TABLE from_values (id int);".to_string(),
        )]
        .into(),
    );
    let mut world = PodWorld::with_servers(&ns, s.pg.port, None, secret_dir.path());
    world.volumes.insert(
        "migrations".to_string(),
        migrations_dir.path().to_path_buf(),
    );
    // What Helm rendered is what the values say.
    let job = api.wait_for(&format!(
        "/apis/batch/v1/namespaces/{ns}/jobs/custom-dbinit-migrate"
    ));
    assert_eq!(job["spec"]["backoffLimit"], 1);
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.example/dbinit:1.2.3");
    let env: Vec<String> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        !env.contains(&"REDIS_HOST".to_string()),
        "redis disabled: {env:?}"
    );
    assert!(env.contains(&"DBINIT_MIGRATIONS_DIR".to_string()));
    let cm = api.wait_for(&format!(
        "/api/v1/namespaces/{ns}/configmaps/custom-dbinit-migrations"
    ));
    assert_eq!(
        cm["data"]["V1__from_values.sql"],
        "CREATE TABLE from_values (id int);"
    );
    let role = api.wait_for(&format!(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/custom-dbinit"
    ));
    assert_eq!(role["rules"][1]["resourceNames"][0], "custom-lease");
    assert_eq!(role["rules"][3]["resourceNames"][0], "custom-status");
    let secret = api.wait_for(&format!(
        "/api/v1/namespaces/{ns}/secrets/custom-dbinit-postgres"
    ));
    assert!(secret["data"]["password"].is_string());

    run_hook_job(api, &ns, "custom-dbinit-migrate", "custom-dbinit", &world);
    let release = finish_install(helm);
    assert_eq!(s.pg.history("custom_db"), "1");
    assert_eq!(
        s.pg.psql("custom_db", "SELECT to_regclass('from_values') IS NOT NULL"),
        "t"
    );
    let status = api.wait_for(&format!("/api/v1/namespaces/{ns}/configmaps/custom-status"));
    assert_eq!(status["data"]["phase"], "Succeeded");
    assert!(exists(
        api,
        &format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/custom-lease")
    ));

    // The example app: 3 replicas, and its init container (`dbinit wait`) passes locally.
    let app = api.wait_for(&format!(
        "/apis/apps/v1/namespaces/{ns}/deployments/custom-dbinit-app"
    ));
    assert_eq!(app["spec"]["replicas"], 3);
    let init = &app["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(init["command"], json!(["/dbinit", "wait"]));
    let out = run(local_process(init, &world));
    assert_eq!(out.code, Some(0), "init container: {}", out.stderr);
    dry_run_release(api, &ns, &release);
}

#[test]
fn values_schema_rejects_a_bad_port_with_a_clear_message() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-schema");
    let out = install(api, &ns, "bad", &json!({"postgres": {"port": "abc"}}))
        .wait_with_output()
        .expect("helm driver");
    assert!(!out.status.success(), "a port of \"abc\" must be rejected");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("port") && err.contains("integer"), "{err}");
    assert!(
        !exists(
            api,
            &format!("/apis/batch/v1/namespaces/{ns}/jobs/bad-dbinit-migrate")
        ),
        "nothing was created"
    );
}
