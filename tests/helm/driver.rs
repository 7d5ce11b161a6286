//! The real Helm engine (tests/helm/helm.py over PyPI helm-sdkpy) driven from Rust, and the
//! quick, apiserver-only tier's stand-in for the node: this apiserver has no kubelet and no
//! Job controller, so a test runs a hook Job's container as a local process (as Helm rendered
//! it, with the ServiceAccount's real token) and then marks the Job complete itself. The same
//! installs with a real kubelet and Job controller are the one-node cluster's e2e tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dbinit_tests::KubeApi;
use dbinit_tests::envtest::helm_python;
use dbinit_tests::manifest::{PodWorld, local_process};
use serde_json::Value;

/// The chart in this repository.
pub fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/dbinit")
}

/// Starts `helm <action>` (install, upgrade, uninstall, test) for `release` in `ns`.
pub fn helm(api: &KubeApi, action: &str, ns: &str, release: &str, values: &Value) -> Child {
    Command::new(helm_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/helm.py"))
        .arg(action)
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

/// Waits for the Helm action; its JSON answer, or the engine's error.
pub fn outcome(child: Child) -> Result<Value, String> {
    let out = child.wait_with_output().expect("helm driver");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("Helm's answer as JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Waits for the Helm action and requires success.
pub fn finish(child: Child, what: &str) -> Value {
    outcome(child).unwrap_or_else(|e| panic!("helm {what}: {e}"))
}

/// Quick tier: runs the container of hook Job `job` locally as ServiceAccount `sa` (None: no
/// API identity, e.g. the helm test Job), requires `expect_code`, then marks the Job complete
/// as the Job controller would.
pub fn run_hook_job(
    api: &KubeApi,
    ns: &str,
    job: &str,
    sa: Option<&str>,
    world: &PodWorld<'_>,
) -> Value {
    let job_obj = api.wait_for(&format!("/apis/batch/v1/namespaces/{ns}/jobs/{job}"));
    let pod = &job_obj["spec"]["template"]["spec"];
    let mut cmd = local_process(&pod["containers"][0], world);
    if let Some(sa) = sa {
        assert_eq!(pod["serviceAccountName"], sa);
        cmd.env(
            "KUBECONFIG",
            api.kubeconfig(&api.service_account_token(ns, sa), ns),
        );
    }
    let out = dbinit_tests::run(cmd);
    assert_eq!(
        out.code,
        Some(0),
        "hook Job {job}'s container: {}",
        out.stderr
    );
    api.complete_job(ns, job);
    job_obj
}

/// Quick tier: runs the container of Job `job` (already created) again, with the repository's
/// migrations plus one that is not applied yet as DBINIT_MIGRATIONS_DIR; returns its result.
/// For the helm test Job: it must fail (exit 10) when something is pending, not only pass.
pub fn run_with_a_pending_migration(
    api: &KubeApi,
    ns: &str,
    job: &str,
    world: &PodWorld<'_>,
) -> dbinit_tests::Finished {
    let job_obj = api.wait_for(&format!("/apis/batch/v1/namespaces/{ns}/jobs/{job}"));
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    copy_tree(&repo, dir.path());
    std::fs::write(
        dir.path().join("V99__pending.sql"),
        "CREATE TABLE pending_one (id int);",
    )
    .expect("write migration");
    let mut cmd = local_process(&job_obj["spec"]["template"]["spec"]["containers"][0], world);
    cmd.env("DBINIT_MIGRATIONS_DIR", dir.path());
    dbinit_tests::run(cmd)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read migrations") {
        let e = e.expect("dir entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// Quick tier: marks each named Job complete, in whatever order Helm creates them, without
/// running anything: for the uninstall stand-ins (`completions: 0`), which a Job controller
/// completes without starting a pod.
pub fn complete_jobs(api: &KubeApi, ns: &str, jobs: &[String]) {
    let mut left: Vec<&String> = jobs.iter().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !left.is_empty() {
        assert!(Instant::now() < deadline, "Helm never created {left:?}");
        left.retain(|job| {
            let (code, body) = api.admin(
                "GET",
                &format!("/apis/batch/v1/namespaces/{ns}/jobs/{job}"),
                None,
            );
            if code != 200 {
                return true;
            }
            let j: Value = serde_json::from_str(&body).expect("job");
            if j["spec"]["completions"] != 0 {
                // The leftover that the stand-in replaces (before-hook-creation).
                return true;
            }
            api.complete_job(ns, job);
            false
        });
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The kinds a release of this chart can leave behind, as list paths in `ns`.
fn kinds(ns: &str) -> Vec<String> {
    [
        "api/v1/namespaces/{ns}/configmaps",
        "api/v1/namespaces/{ns}/secrets",
        "api/v1/namespaces/{ns}/serviceaccounts",
        "api/v1/namespaces/{ns}/pods",
        "apis/batch/v1/namespaces/{ns}/jobs",
        "apis/apps/v1/namespaces/{ns}/deployments",
        "apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
        "apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
        "apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
    ]
    .iter()
    .map(|p| format!("/{}", p.replace("{ns}", ns)))
    .collect()
}

/// "kind/name" of every object in `ns` matching the label `selector`.
pub fn objects(api: &KubeApi, ns: &str, selector: &str) -> Vec<String> {
    let mut found = Vec::new();
    for path in kinds(ns) {
        let (code, body) = api.admin("GET", &format!("{path}?labelSelector={selector}"), None);
        assert_eq!(code, 200, "{path}: {body}");
        let list: Value = serde_json::from_str(&body).expect("list");
        let kind = path.rsplit('/').next().unwrap_or("");
        for item in list["items"].as_array().into_iter().flatten() {
            found.push(format!(
                "{kind}/{}",
                item["metadata"]["name"].as_str().unwrap_or("")
            ));
        }
    }
    found
}

/// Whether the object at `path` exists.
pub fn exists(api: &KubeApi, path: &str) -> bool {
    api.admin("GET", path, None).0 == 200
}

/// Polls `f` every 100 ms for up to 30 s.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of env var `name` in a container spec.
pub fn env<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_array()
        .and_then(|e| e.iter().find(|v| v["name"] == name))
        .map(|v| &v["value"])
        .unwrap_or(&Value::Null)
}

/// Every manifest Helm rendered for a release (ordinary objects and hooks), as one YAML text.
pub fn rendered(release: &Value) -> String {
    let mut docs = vec![release["manifest"].as_str().unwrap_or("").to_string()];
    for hook in release["hooks"].as_array().into_iter().flatten() {
        docs.push(hook["manifest"].as_str().unwrap_or("").to_string());
    }
    docs.join("\n---\n")
}

/// The object of `kind` and `name` as Helm rendered it (ordinary object or hook, not its
/// uninstall stand-in): what the
/// chart asked for, before an apiserver drops fields it does not know (1.20 drops
/// `ttlSecondsAfterFinished` without its feature gate).
pub fn rendered_object(release: &Value, kind: &str, name: &str) -> Value {
    serde_saphyr::from_multiple::<Value>(&rendered(release))
        .expect("rendered YAML")
        .into_iter()
        .find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && o["metadata"]["labels"]["app.kubernetes.io/component"] != "cleanup"
        })
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

/// Every rendered manifest passes `kubectl apply --dry-run=server`.
pub fn dry_run(api: &KubeApi, ns: &str, release: &Value) {
    let file = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(file.path(), rendered(release)).expect("write");
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
