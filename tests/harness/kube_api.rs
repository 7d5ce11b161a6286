//! A real Kubernetes API server for tests, as controller-runtime's envtest: Debian's etcd and
//! a kube-apiserver built from Debian's `kubernetes` source package (`make envtest`), on free
//! ports in a temp dir, RBAC on, static token auth. No kubelet or controllers: objects are
//! stored and validated, not run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::envtest::apiserver_bin;
use crate::{Watchdog, free_port, keep_on_failure, print_log, spawn_guarded, which};

/// Static tokens the apiserver accepts: (token, user, uid, groups).
pub const TOKENS: &[(&str, &str, &str, &str)] = &[
    ("admin-token", "admin", "1", "system:masters"),
    ("app-token", "app-user", "1001", ""),
    ("limited-token", "limited-user", "1002", ""),
    ("nobody-token", "nobody-user", "1003", ""),
];

/// etcd + kube-apiserver, stoppable and restartable (same ports, same data).
pub struct KubeApi {
    dir: tempfile::TempDir,
    /// HTTPS port of the apiserver on 127.0.0.1.
    pub port: u16,
    etcd_port: u16,
    etcd: Mutex<Option<Watchdog>>,
    apiserver: Mutex<Option<Watchdog>>,
    /// Removes `dir` at exit: the shared apiserver lives in a static, which is never dropped.
    dir_guard: Mutex<Option<Watchdog>>,
}

impl Drop for KubeApi {
    /// A dedicated apiserver dropped by a failing test shows its log (and is kept with
    /// `DBINIT_TEST_KEEP=1`); the shared one is never dropped, so tests call
    /// [`KubeApi::on_failure`] for it.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.on_failure(None);
            if keep_on_failure() {
                self.dir.disable_cleanup(true);
            }
        }
    }
}

impl KubeApi {
    /// One apiserver per test binary, started on first use.
    pub fn shared() -> &'static KubeApi {
        static SHARED: OnceLock<KubeApi> = OnceLock::new();
        SHARED.get_or_init(KubeApi::start)
    }

    /// A dedicated apiserver (for tests that stop it).
    pub fn start() -> KubeApi {
        apiserver_bin();
        let etcd = which("etcd").unwrap_or_else(|| {
            panic!("etcd not found: run `make envtest` (installs Debian's etcd-server)")
        });
        let dir = tempfile::Builder::new()
            .prefix("dbinit-kube-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let ok = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=sa",
            ])
            .arg("-keyout")
            .arg(d.join("sa.key"))
            .arg("-out")
            .arg(d.join("sa.crt"))
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            ok,
            "openssl could not make the service-account key (make envtest installs openssl)"
        );
        let tokens: String = TOKENS
            .iter()
            .map(|(t, u, id, g)| format!("{t},{u},{id},\"{g}\"\n"))
            .collect();
        std::fs::write(d.join("tokens.csv"), tokens).expect("tokens");
        let etcd_port = free_port();
        let peer_port = free_port();
        let etcd_guard = spawn_guarded(
            &etcd,
            &[
                format!("--data-dir={}", d.join("etcd").display()),
                format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-cluster=default=http://127.0.0.1:{peer_port}"),
                "--unsafe-no-fsync".into(),
            ],
            &d.join("etcd.log"),
        );
        let api = KubeApi {
            port: free_port(),
            etcd_port,
            dir_guard: Mutex::new(Some(crate::remove_at_exit(d))),
            dir,
            etcd: Mutex::new(Some(etcd_guard)),
            apiserver: Mutex::new(None),
        };
        api.start_apiserver();
        api
    }

    fn start_apiserver(&self) {
        let d = self.dir.path();
        let args = vec![
            format!("--etcd-servers=http://127.0.0.1:{}", self.etcd_port),
            format!("--secure-port={}", self.port),
            "--bind-address=127.0.0.1".into(),
            format!("--cert-dir={}", d.join("certs").display()),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-key-file={}", d.join("sa.crt").display()),
            format!(
                "--service-account-signing-key-file={}",
                d.join("sa.key").display()
            ),
            format!("--token-auth-file={}", d.join("tokens.csv").display()),
            "--authorization-mode=RBAC".into(),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--allow-privileged=true".into(),
            "--insecure-port=0".into(),
            "--disable-admission-plugins=ServiceAccount".into(),
        ];
        let guard = spawn_guarded(&apiserver_bin(), &args, &d.join("apiserver.log"));
        *self.apiserver.lock().expect("lock") = Some(guard);
        self.wait_ready();
    }

    /// Waits until /readyz answers ok (RBAC bootstrap included).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let out = Command::new("curl")
                .args([
                    "-sk",
                    "--max-time",
                    "2",
                    "-H",
                    "Authorization: Bearer admin-token",
                ])
                .arg(format!("https://127.0.0.1:{}/readyz", self.port))
                .output();
            if let Ok(o) = out
                && o.status.success()
                && o.stdout == b"ok"
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver not ready after 90 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the apiserver (etcd keeps the data).
    pub fn stop(&self) {
        if let Some(mut g) = self.apiserver.lock().expect("lock").take() {
            g.fire();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&self) {
        self.stop();
        self.start_apiserver();
    }

    /// The tail of the apiserver's log, for failure messages.
    pub fn log(&self) -> String {
        let s = std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default();
        s.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A kubeconfig for `token` with `namespace` as its default, written into the temp dir.
    pub fn kubeconfig(&self, token: &str, namespace: &str) -> PathBuf {
        // Tokens can be long JWTs: name the file by a hash.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&(token, namespace), &mut h);
        let path = self
            .dir
            .path()
            .join(format!("kubeconfig-{:016x}", std::hash::Hasher::finish(&h)));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: https://127.0.0.1:{}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context:\n    cluster: envtest\n    user: u\n    namespace: {namespace}\ncurrent-context: c\n",
            self.port
        );
        // Written whole and renamed into place: a process started a moment ago may be
        // reading the same file, and must never see it half-written.
        let tmp = path.with_extension(format!("tmp-{:08x}", rand_u32()));
        std::fs::write(&tmp, text).expect("write kubeconfig");
        std::fs::rename(&tmp, &path).expect("rename kubeconfig");
        path
    }

    /// Runs kubectl-like admin calls with curl: `method path [json body]`; returns the body.
    pub fn admin(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.call("admin-token", method, path, body)
    }

    /// A raw API call as `token` with a JSON body; returns (HTTP status, body).
    pub fn call(&self, token: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.call_with(token, method, path, body.map(|b| (b, "application/json")))
    }

    /// A raw API call as `token` with a body of the given content type (the apiserver takes
    /// `application/yaml` as well as JSON).
    pub fn call_with(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
    ) -> (u16, String) {
        let mut c = Command::new("curl");
        c.args([
            "-sk",
            "--max-time",
            "10",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ])
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("https://127.0.0.1:{}{path}", self.port));
        if let Some((b, content_type)) = body {
            c.arg("-H")
                .arg(format!("Content-Type: {content_type}"))
                .args(["--data-binary", b]);
        }
        let out = c.output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// Creates a namespace with a random suffix for one test.
    pub fn namespace(&self, prefix: &str) -> String {
        let ns = format!("{prefix}-{:08x}", rand_u32());
        let (code, body) = self.admin(
            "POST",
            "/api/v1/namespaces",
            Some(&format!("{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{ns}\"}}}}")),
        );
        assert_eq!(code, 201, "create namespace {ns}: {body}");
        ns
    }

    /// The data of a ConfigMap as JSON text, or `None` when absent.
    pub fn configmap(&self, ns: &str, name: &str) -> Option<String> {
        let (code, body) = self.admin(
            "GET",
            &format!("/api/v1/namespaces/{ns}/configmaps/{name}"),
            None,
        );
        (code == 200).then_some(body)
    }

    /// A token of the ServiceAccount `sa` in `ns` (TokenRequest API): the identity a pod of
    /// that ServiceAccount would have.
    pub fn service_account_token(&self, ns: &str, sa: &str) -> String {
        let (code, body) = self.admin(
            "POST",
            &format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token"),
            Some(r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}"#),
        );
        assert_eq!(code, 201, "TokenRequest: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        v["status"]["token"].as_str().expect("token").to_string()
    }

    /// Waits (up to 60 s) for an object to exist; returns it.
    pub fn wait_for(&self, path: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, body) = self.admin("GET", path, None);
            if code == 200 {
                return serde_json::from_str(&body).expect("json");
            }
            assert!(Instant::now() < deadline, "{path} never appeared");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Marks a Job complete, as the Job controller this apiserver lacks would after its pod
    /// succeeded (the tests run the pod's container themselves).
    pub fn complete_job(&self, ns: &str, name: &str) {
        let path = format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}");
        let mut job = self.wait_for(&path);
        let now = "2026-01-01T00:00:00Z";
        job["status"] = serde_json::json!({
            "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now}],
            "succeeded": 1, "startTime": now, "completionTime": now
        });
        let (code, body) = self.admin("PUT", &format!("{path}/status"), Some(&job.to_string()));
        assert_eq!(code, 200, "complete job: {body}");
    }

    /// Where its files live.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// For a failing test that used `namespace`: prints the apiserver's log and, with
    /// `DBINIT_TEST_KEEP=1`, keeps etcd and the apiserver running after the test process
    /// exits, with the namespace and a kubeconfig to look at it.
    pub fn on_failure(&self, namespace: Option<&str>) {
        print_log("kube-apiserver", &self.dir.path().join("apiserver.log"));
        if !keep_on_failure() {
            return;
        }
        for guard in [&self.etcd, &self.apiserver, &self.dir_guard] {
            if let Some(mut g) = guard.lock().unwrap_or_else(|e| e.into_inner()).take() {
                g.keep();
            }
        }
        let kubeconfig = self.kubeconfig("admin-token", namespace.unwrap_or("default"));
        let dir = self.dir.path().display();
        eprintln!(
            "DBINIT_TEST_KEEP=1: kube-apiserver kept running on https://127.0.0.1:{} (etcd on 127.0.0.1:{}), files in {dir}; export KUBECONFIG={}{}",
            self.port,
            self.etcd_port,
            kubeconfig.display(),
            namespace
                .map(|n| format!(" (namespace {n})"))
                .unwrap_or_default()
        );
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u32
}
