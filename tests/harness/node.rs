//! A real Kubernetes node for the end-to-end tests: the one-node cluster of `make cluster-up`
//! (inside its own network namespace), or any cluster given by `KUBECONFIG` (kind). Pods that a
//! real kubelet starts from the image built in the same run; nothing simulated.
//!
//! Where the cluster is found, in order:
//! - `KUBECONFIG` in the environment (as `make e2e` sets it), with `DBINIT_NETNS` (optional: the
//!   network namespace the node runs in; kubectl, Helm, PostgreSQL and Redis run in it too) and
//!   `DBINIT_NODE_IP` (the address pods reach PostgreSQL and Redis at: the node's address in the
//!   namespace, or for kind the docker network's gateway on this machine);
//! - else the `env` file `make cluster-up` writes in `DBINIT_NODE_DIR` (default /tmp/dbinit-node).
//!
//! No cluster, or one that does not answer, fails every test with the reason; nothing skips.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

mod backends;
mod dns;
mod namespace;
mod readme;
mod second;
mod wait;

pub use backends::{Backends, service};
pub use namespace::TestNs;
pub use readme::{Readme, Script};
pub use second::{Cordon, Fault, SecondNode};
pub use wait::{JobEnd, deadline_loop, hopeless, parse_time, parse_time_precise};

/// The cluster under test and how to reach it.
#[derive(Debug, Clone)]
pub struct Node {
    /// Admin kubeconfig of the cluster.
    pub kubeconfig: PathBuf,
    /// Network namespace the node runs in (`/run/netns/NAME`), when it has one.
    pub netns: Option<String>,
    /// The address pods reach PostgreSQL and Redis at.
    pub node_ip: String,
    /// State directory of `make cluster-up` (pid files), when the node is this machine's.
    pub node_dir: Option<PathBuf>,
    /// containerd's socket on the node, for killing a container's process (fault tests).
    pub containerd_sock: Option<PathBuf>,
    /// A command prefix that runs a command on the node of another cluster
    /// (`DBINIT_NODE_EXEC`, e.g. `docker exec dbinit-control-plane` for kind), for the fault
    /// tests there. Not run on these machines (no Docker).
    pub node_exec: Option<Vec<String>>,
    /// The first node's name (`DBINIT_NODE_NAME`), when the node is this machine's.
    pub name: Option<String>,
    /// The apiserver's port on the node's address (`DBINIT_APISERVER_PORT`).
    pub apiserver_port: Option<u16>,
    /// The second node of `make cluster-up NODES=2`, when it is up.
    pub second: Option<SecondNode>,
}

/// The repository root (README.md, deploy/, helm/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn env_file(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let path = dir.join("env");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "no cluster: KUBECONFIG is not set and {} cannot be read ({e}); run `make cluster-up` \
             (this machine's one-node cluster), or give KUBECONFIG (and DBINIT_NODE_IP) of a cluster \
             that has the image loaded, e.g. kind",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("export ").trim();
            let (k, v) = l.split_once('=')?;
            Some((
                k.trim().to_string(),
                v.trim().trim_matches(|c| c == '"' || c == '\'').to_string(),
            ))
        })
        .collect())
}

impl Node {
    /// The cluster of this test run, checked once: a node is Ready. Panics with the reason
    /// (no cluster configured, apiserver unreachable, no Ready node) in every test that asks.
    pub fn get() -> &'static Node {
        static NODE: OnceLock<Result<Node, String>> = OnceLock::new();
        match NODE.get_or_init(Self::discover) {
            Ok(n) => n,
            Err(e) => panic!("end-to-end cluster unavailable: {e}"),
        }
    }

    fn discover() -> Result<Node, String> {
        let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let vars: BTreeMap<String, String> = if from_env("KUBECONFIG").is_some() {
            [
                "KUBECONFIG",
                "DBINIT_NETNS",
                "DBINIT_NODE_IP",
                "DBINIT_NODE_DIR",
                "DBINIT_CONTAINERD_SOCK",
                "DBINIT_NODE_EXEC",
                "DBINIT_NODE_NAME",
                "DBINIT_APISERVER_PORT",
                "DBINIT_NODES",
                "DBINIT_NODE2_DIR",
                "DBINIT_NETNS2",
                "DBINIT_NODE2_IP",
                "DBINIT_NODE2_NAME",
                "DBINIT_CONTAINERD2_SOCK",
                "DBINIT_NODE2_LINK",
            ]
            .iter()
            .filter_map(|k| Some((k.to_string(), from_env(k)?)))
            .collect()
        } else {
            let dir = from_env("DBINIT_NODE_DIR").unwrap_or_else(|| "/tmp/dbinit-node".into());
            let mut v = env_file(Path::new(&dir))?;
            v.entry("DBINIT_NODE_DIR".into()).or_insert(dir);
            v
        };
        let kubeconfig = PathBuf::from(&vars["KUBECONFIG"]);
        if !kubeconfig.is_file() {
            return Err(format!(
                "KUBECONFIG {} does not exist (is the cluster up? `make cluster-up`)",
                kubeconfig.display()
            ));
        }
        let netns = vars.get("DBINIT_NETNS").cloned();
        if let Some(ns) = &netns
            && !Path::new("/run/netns").join(ns).exists()
        {
            return Err(format!(
                "network namespace {ns} (DBINIT_NETNS) does not exist: the node is down; run `make cluster-up`"
            ));
        }
        let node_ip = vars.get("DBINIT_NODE_IP").cloned().ok_or_else(|| {
            "DBINIT_NODE_IP is not set: the address pods reach PostgreSQL and Redis at \
             (the node's address in DBINIT_NETNS, or for kind the docker network's gateway)"
                .to_string()
        })?;
        let node = Node {
            kubeconfig,
            netns,
            node_ip,
            node_dir: vars.get("DBINIT_NODE_DIR").map(PathBuf::from),
            containerd_sock: vars.get("DBINIT_CONTAINERD_SOCK").map(PathBuf::from),
            node_exec: vars
                .get("DBINIT_NODE_EXEC")
                .map(|v| v.split_whitespace().map(str::to_string).collect()),
            name: vars.get("DBINIT_NODE_NAME").cloned(),
            apiserver_port: vars
                .get("DBINIT_APISERVER_PORT")
                .and_then(|p| p.parse().ok()),
            second: SecondNode::from_env(&vars),
        };
        node.ready_node()?;
        Ok(node)
    }

    /// Waits (up to 60 s) until a node reports Ready; the error says what was seen last.
    pub fn ready_node(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self
                .kubectl(None)
                .args(["get", "nodes", "-o", "json", "--request-timeout=10s"])
                .output()
                .map_err(|e| format!("cannot run kubectl: {e}"))?;
            let last = if out.status.success() {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                let ready = v["items"].as_array().into_iter().flatten().any(|n| {
                    n["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                if ready {
                    return Ok(());
                }
                "no node is Ready".to_string()
            } else {
                format!(
                    "the apiserver of {} does not answer: {}",
                    self.kubeconfig.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            };
            if Instant::now() > deadline {
                return Err(format!("{last} (waited 60 s)"));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `program`, run where the cluster is reachable: inside the node's network namespace when
    /// it has one.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}")).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    /// kubectl with the admin kubeconfig, in namespace `ns` when given.
    pub fn kubectl(&self, ns: Option<&str>) -> Command {
        let mut c = self.command("kubectl");
        c.arg("--kubeconfig").arg(&self.kubeconfig);
        if let Some(ns) = ns {
            c.args(["-n", ns]);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Runs kubectl and returns stdout; panics with stderr on failure.
    pub fn kubectl_ok(&self, ns: Option<&str>, args: &[&str]) -> String {
        let out = self.kubectl(ns).args(args).output().expect("run kubectl");
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get ... -o json`, or `None` when the object does not exist.
    pub fn get_json(&self, ns: Option<&str>, what: &[&str]) -> Option<Value> {
        let out = self
            .kubectl(ns)
            .arg("get")
            .args(what)
            .args(["-o", "json", "--request-timeout=20s"])
            .output()
            .expect("run kubectl");
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("NotFound"), "kubectl get {what:?}: {err}");
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("kubectl JSON"))
    }

    /// `kubectl apply -f -` of one object or a List.
    pub fn apply(&self, ns: &str, obj: &Value) {
        let out = pipe(
            self.kubectl(Some(ns)).args(["apply", "-f", "-"]),
            &obj.to_string(),
        );
        assert!(
            out.status.success(),
            "kubectl apply: {}\n{obj:#}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Kills (SIGKILL) the main process of a pod's container through the containerd of the
    /// node it runs on: a crash the process cannot react to. Needs `DBINIT_CONTAINERD_SOCK`
    /// (this machine's node; `DBINIT_CONTAINERD2_SOCK` for the second) or `DBINIT_NODE_EXEC`
    /// (another cluster's node).
    pub fn kill_container(&self, ns: &str, pod: &str, container: &str) {
        let p = self
            .get_json(Some(ns), &["pod", pod])
            .unwrap_or_else(|| panic!("pod {pod} is gone"));
        let id = p["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == container)
            .and_then(|c| c["containerID"].as_str())
            .and_then(|id| id.strip_prefix("containerd://"))
            .unwrap_or_else(|| panic!("no containerd id for {pod}/{container}: {p}"))
            .to_string();
        let kill = ["-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", &id];
        let sock = match &self.second {
            Some(n2) if p["spec"]["nodeName"] == n2.name.as_str() => Some(&n2.containerd_sock),
            _ => self.containerd_sock.as_ref(),
        };
        let out = match (sock, self.on_node()) {
            (Some(sock), _) => Command::new("ctr").arg("-a").arg(sock).args(kill).output(),
            (None, Some(mut cmd)) => cmd.arg("ctr").args(kill).output(),
            (None, None) => panic!(
                "killing a container needs the node's containerd: DBINIT_CONTAINERD_SOCK (this \
                 machine's node) or DBINIT_NODE_EXEC (e.g. `docker exec dbinit-control-plane`)"
            ),
        }
        .expect("run ctr");
        assert!(
            out.status.success(),
            "ctr tasks kill {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Node {
    /// A command that runs on another cluster's node (`DBINIT_NODE_EXEC`), when given.
    pub fn on_node(&self) -> Option<Command> {
        let prefix = self.node_exec.as_ref()?;
        let mut c = Command::new(prefix.first()?);
        c.args(&prefix[1..]);
        Some(c)
    }
}

/// The image ID (config digest, `sha256:...`) of the image this run built: the OCI archive
/// `DBINIT_IMAGE_ARCHIVE` (as `make e2e` exports it), else target/image/dbinit.oci.tar. Pods
/// whose container status shows another ID ran a stale image. Read at every call: a test that
/// runs `make image` as a reader would (tests/e2e/newcomer.rs) builds and loads a new one.
pub fn built_image_id() -> String {
    let archive = std::env::var_os("DBINIT_IMAGE_ARCHIVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/image/dbinit.oci.tar"));
    let blob = |name: &str| -> Value {
        let out = Command::new("tar")
            .arg("-xOf")
            .arg(&archive)
            .arg(name)
            .output()
            .expect("run tar");
        assert!(
            out.status.success(),
            "no image archive at {} ({name}): run `make image` (make e2e does)",
            archive.display()
        );
        serde_json::from_slice(&out.stdout).expect("OCI JSON")
    };
    let index = blob("index.json");
    let manifest = index["manifests"][0]["digest"]
        .as_str()
        .expect("manifest digest")
        .replace(':', "/");
    let m = blob(&format!("blobs/{manifest}"));
    m["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_string()
}

/// Runs `cmd` with `input` on its stdin; returns its output.
pub fn pipe(cmd: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// `cmd` rebuilt to run inside network namespace `ns` (for [`crate::Pg`] with `netns`).
/// The file of network namespace `ns`: a name made by `ip netns add` (`/run/netns/NAME`), or
/// already a path (`/proc/PID/ns/net`, see [`crate::PrivateNet`]).
pub(crate) fn netns_file(ns: &str) -> String {
    if ns.starts_with('/') {
        ns.to_string()
    } else {
        format!("/run/netns/{ns}")
    }
}

pub(crate) fn in_netns(ns: &str, cmd: &Command) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net={}", netns_file(ns)))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    c
}

/// A TCP port on which nothing listens at the node's address (inside its namespace when it
/// has one): a database that refuses connections.
pub fn free_port_on_node(node: &Node) -> u16 {
    match &node.netns {
        Some(ns) => free_port_in(ns),
        None => crate::free_port(),
    }
}

/// A TCP port that is free inside network namespace `ns` (bound there, then released).
pub fn free_port_in(ns: &str) -> u16 {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns_file(ns)))
        .args([
            "python3",
            "-c",
            "import socket; s=socket.socket(); s.bind(('0.0.0.0',0)); print(s.getsockname()[1])",
        ])
        .output()
        .expect("run python3 in the node's network namespace");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "no free port in netns {ns}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}
