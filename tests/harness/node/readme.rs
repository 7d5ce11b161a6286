//! README's and docs/'s commands, run as written. A fenced block the tests run has a marker
//! line right before it (`<!-- e2e:NAME -->`); the test takes the block from the page itself
//! (README.md or docs/, by name: [`crate::docs::Docs::block`]), so an edit that breaks a
//! command breaks a test. Commands run with `bash -euo pipefail` in the
//! repository root, with only a kubeconfig (whose context names the test's namespace), PATH and
//! HOME set, plus what README tells the user to set.
//!
//! `helm` on that PATH is `tests/e2e/helm_cli.py`: the helm command line (install, upgrade, test,
//! uninstall, status; `--set`, `--values`, `--namespace`, `--wait`, `--timeout`) driving the real
//! Helm engine (PyPI helm-sdkpy, Helm 4 as a library), because this machine has no helm binary.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Node, TestNs, repo_root};
use crate::Finished;
use crate::envtest::helm_python;

/// README.md and the pages of docs/: the blocks the end-to-end tests run are found by name
/// wherever they are (see [`crate::docs`]).
pub use crate::docs::Docs as Readme;

/// A shell like a user's: `bash -euo pipefail`, the test namespace's kubeconfig, `helm`.
pub struct Script {
    node: &'static Node,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Script {
    /// A shell acting on `ns` as its current namespace.
    pub fn new(node: &'static Node, ns: &TestNs) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("dbinit-e2e-sh-")
            .tempdir()
            .expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        let shim = repo_root().join("tests/e2e/helm_cli.py");
        std::fs::write(
            bin.join("helm"),
            format!(
                "#!/bin/sh\nexec '{}' '{}' \"$@\"\n",
                helm_python().display(),
                shim.display()
            ),
        )
        .expect("write helm");
        let perms = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(bin.join("helm"), perms).expect("chmod helm");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let env = vec![
            ("PATH".into(), path),
            (
                "HOME".into(),
                std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
            ),
            ("KUBECONFIG".into(), ns.kubeconfig.display().to_string()),
            (
                "DBINIT_E2E_HELM_LOG".into(),
                dir.path().join("helm.log").display().to_string(),
            ),
        ];
        Self { node, env, dir }
    }

    /// Sets a variable the README tells the user to set.
    pub fn set(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// Runs `command` to its end (killed after `timeout`), in the repository root.
    pub fn run(&self, command: &str, timeout: Duration) -> Finished {
        let started = Instant::now();
        let out = self
            .node
            .command("timeout")
            .args(["-k", "5", &timeout.as_secs().max(1).to_string()])
            .args(["bash", "-euo", "pipefail", "-c", command])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(repo_root())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run bash");
        Finished {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }

    /// Runs `command` to its end on this machine itself, outside the node's network namespace:
    /// what a reader types before there is a cluster to reach (`make cluster-up`, `make image`).
    pub fn run_here(&self, command: &str, timeout: Duration) -> Finished {
        let started = Instant::now();
        let out = std::process::Command::new("timeout")
            .args(["-k", "5", &timeout.as_secs().max(1).to_string()])
            .args(["bash", "-euo", "pipefail", "-c", command])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(repo_root())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run bash");
        let f = Finished {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        };
        assert_eq!(
            f.code,
            Some(0),
            "command failed after {:?}:\n{command}\n--- stdout\n{}\n--- stderr\n{}",
            f.elapsed,
            f.stdout,
            f.stderr
        );
        f
    }

    /// Runs `command` and panics unless it exits 0.
    pub fn run_ok(&self, command: &str, timeout: Duration) -> Finished {
        let f = self.run(command, timeout);
        assert_eq!(
            f.code,
            Some(0),
            "README command failed after {:?}:\n{command}\n--- stdout\n{}\n--- stderr\n{}",
            f.elapsed,
            f.stdout,
            f.stderr
        );
        f
    }

    /// What `helm` did in this shell so far: one JSON object per call (argv, action,
    /// release, namespace, ok, error, the release as the engine returned it).
    pub fn helm_log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("helm.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
