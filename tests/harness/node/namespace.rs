//! One Kubernetes namespace per test, with a random suffix: its own kubeconfig whose current
//! context points at it (what README's commands act on), a dump of what happened in it when
//! the test fails, and deletion afterwards unless `DBINIT_TEST_KEEP=1`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::Node;

/// A namespace owned by one test.
pub struct TestNs {
    /// The namespace's name.
    pub name: String,
    /// A self-contained admin kubeconfig whose current context's namespace is this one.
    pub kubeconfig: PathBuf,
    node: &'static Node,
    _dir: tempfile::TempDir,
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u32
}

impl TestNs {
    /// Creates `e2e-<prefix>-<random>`.
    pub fn new(node: &'static Node, prefix: &str) -> Self {
        let name = format!("e2e-{prefix}-{:08x}", rand_u32());
        node.kubectl_ok(None, &["create", "namespace", &name]);
        let dir = tempfile::Builder::new()
            .prefix("dbinit-e2e-")
            .tempdir()
            .expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let flat = node.kubectl_ok(None, &["config", "view", "--flatten", "--minify", "--raw"]);
        std::fs::write(&kubeconfig, flat).expect("write kubeconfig");
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["config", "set-context", "--current", "--namespace", &name])
            .output()
            .expect("kubectl config");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            name,
            kubeconfig,
            node,
            _dir: dir,
        }
    }

    /// kubectl in this namespace.
    pub fn kubectl(&self) -> Command {
        self.node.kubectl(Some(&self.name))
    }

    /// Runs kubectl in this namespace; stdout, or a panic with stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        self.node.kubectl_ok(Some(&self.name), args)
    }

    /// `kubectl get <what> -o json` in this namespace; `None` when absent.
    pub fn get(&self, what: &[&str]) -> Option<Value> {
        self.node.get_json(Some(&self.name), what)
    }

    /// Pods matching a label selector, as JSON objects.
    pub fn pods(&self, selector: &str) -> Vec<Value> {
        let what: &[&str] = if selector.is_empty() {
            &["pods"]
        } else {
            &["pods", "-l", selector]
        };
        self.get(what)
            .and_then(|l| l["items"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Applies one object (or a List) in this namespace.
    pub fn apply(&self, obj: &Value) {
        self.node.apply(&self.name, obj);
    }

    /// Everything a failing test's reader needs: objects, events, pod descriptions, logs.
    pub fn dump(&self) -> String {
        let run = |args: &[&str]| {
            let out = self
                .kubectl()
                .args(args)
                .arg("--request-timeout=20s")
                .output();
            match out {
                Ok(o) => format!(
                    "$ kubectl -n {} {}\n{}{}\n",
                    self.name,
                    args.join(" "),
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => format!("kubectl: {e}\n"),
            }
        };
        let mut s = String::new();
        s += &run(&["get", "all,configmaps,leases,endpoints", "-o", "wide"]);
        s += &run(&["get", "events", "--sort-by=.lastTimestamp"]);
        s += &run(&["describe", "jobs,pods"]);
        for pod in self.pods("") {
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            s += &run(&["logs", name, "--all-containers", "--prefix", "--tail=60"]);
        }
        s
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "==== namespace {} at the failure ====\n{}",
                self.name,
                self.dump()
            );
        }
        if std::env::var("DBINIT_TEST_KEEP").as_deref() == Ok("1") {
            eprintln!("kept namespace {} (DBINIT_TEST_KEEP=1)", self.name);
            return;
        }
        let _ = self
            .node
            .kubectl(None)
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .output();
    }
}
