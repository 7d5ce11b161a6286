//! deploy/ against a real kube-apiserver, and the manifests' own env and args run through the
//! real binaries against real PostgreSQL and Redis.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use dbinit_tests::{KubeApi, Pg, Redis, RedisOpts, command, run};
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
        let out = kubectl(api, "admin-token", &ns)
            .args(["apply", "--dry-run=server", "-f"])
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

/// A container of a manifest, turned into a local process: its command and args, its env
/// with fieldRefs and secret files resolved, and cluster DNS names mapped to local servers.
struct Local {
    cmd: Command,
}

fn local(
    container: &Value,
    pod_spec: &Value,
    hosts: &BTreeMap<&str, (String, u16)>,
    secret_dir: &Path,
    ns: &str,
) -> Local {
    let argv: Vec<String> = container["command"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(container["args"].as_array().into_iter().flatten())
        .map(|v| v.as_str().expect("string arg").to_string())
        .collect();
    let binary = Path::new(&argv[0])
        .file_name()
        .expect("binary")
        .to_string_lossy()
        .into_owned();
    let mut cmd = command(&binary);
    cmd.args(&argv[1..]);
    // Where the pod's secret volumes are mounted, and where the test put their files.
    let mounts: Vec<(String, String)> = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap_or("").to_string(),
                m["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for volume in pod_spec["volumes"].as_array().into_iter().flatten() {
        assert!(
            volume["secret"].is_object(),
            "only secret volumes are expected"
        );
    }
    let env = container["env"].as_array().expect("env");
    for e in env {
        let name = e["name"].as_str().expect("name");
        let value = if let Some(v) = e["value"].as_str() {
            v.to_string()
        } else if let Some(path) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match path {
                "metadata.name" => "local-pod-0".to_string(),
                "metadata.namespace" => ns.to_string(),
                other => panic!("unexpected fieldRef {other}"),
            }
        } else {
            panic!("unexpected env source for {name}: {e}");
        };
        let value = match mounts.iter().find(|(p, _)| value.starts_with(p.as_str())) {
            Some((p, _)) => secret_dir
                .join(value[p.len()..].trim_start_matches('/'))
                .display()
                .to_string(),
            None => value,
        };
        cmd.env(name, value);
    }
    // Cluster DNS names -> the test's servers.
    for (var, port_var) in [
        ("POSTGRES_HOST", "POSTGRES_PORT"),
        ("REDIS_HOST", "REDIS_PORT"),
    ] {
        if let Some(e) = env.iter().find(|e| e["name"] == var) {
            let host = e["value"].as_str().expect("host");
            let (h, p) = hosts
                .get(host)
                .unwrap_or_else(|| panic!("no local server for {host}"));
            cmd.env(var, h).env(port_var, p.to_string());
        }
    }
    Local { cmd }
}

fn token_for_service_account(api: &KubeApi, ns: &str, sa: &str) -> String {
    let (code, body) = api.admin(
        "POST",
        &format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token"),
        Some(r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}"#),
    );
    assert_eq!(code, 201, "TokenRequest: {body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    v["status"]["token"].as_str().expect("token").to_string()
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
    let hosts: BTreeMap<&str, (String, u16)> = [
        ("postgres", ("127.0.0.1".to_string(), pg.port)),
        ("redis", ("127.0.0.1".to_string(), redis.port)),
    ]
    .into();
    let secret_dir = tempfile::tempdir().expect("tmp");
    for (k, v) in &secrets {
        std::fs::write(secret_dir.path().join(k), v).expect("secret file");
    }

    // The Job, authenticated as the ServiceAccount of deploy/rbac.yaml (a real token).
    let token = token_for_service_account(api, &ns, "dbinit");
    let job = &objects("job.yaml")[0];
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "dbinit");
    let mut l = local(&pod["containers"][0], pod, &hosts, secret_dir.path(), &ns);
    l.cmd.env("KUBECONFIG", api.kubeconfig(&token, &ns));
    let out = run(l.cmd);
    assert_eq!(out.code, Some(0), "the Job's container: {}", out.stderr);
    assert_eq!(pg.history("agentic_deals"), "1,2,3,4,5,6,7");
    let status = api
        .configmap(&ns, "dbinit-status")
        .expect("status ConfigMap");
    assert!(status.contains("\"phase\": \"Succeeded\""), "{status}");
    assert!(!out.all_output().contains(&secrets["password"]));

    // The application's init container: `dbinit wait` finds the schema and exits 0.
    let app = &objects("app-deployment.yaml")[0];
    let pod = &app["spec"]["template"]["spec"];
    let l = local(
        &pod["initContainers"][0],
        pod,
        &hosts,
        secret_dir.path(),
        &ns,
    );
    let out = run(l.cmd);
    assert_eq!(out.code, Some(0), "the init container: {}", out.stderr);

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
