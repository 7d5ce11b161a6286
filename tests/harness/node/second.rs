//! The second node of `make cluster-up NODES=2` (its own network namespace, joined to node 1's
//! by a veth pair), and what the multi-node tests do to it: cut it off from the apiserver only
//! (a partition: PostgreSQL still answers), cut it off from everything and SIGKILL every
//! process it has (the node is lost), cordon a node so a pod lands on the other, and bring the
//! second node back. Every fault is undone when its guard drops, whatever the test did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Node, deadline_loop, repo_root};

/// Where the second node is (from `make cluster-up NODES=2`'s env file).
#[derive(Debug, Clone)]
pub struct SecondNode {
    /// Its Node object's name.
    pub name: String,
    /// Its address (its end of the link).
    pub ip: String,
    /// Its network namespace.
    pub netns: String,
    /// Its state directory (pid files, kubelet root).
    pub dir: PathBuf,
    /// Its containerd's socket.
    pub containerd_sock: PathBuf,
    /// Its end of the link to node 1, inside `netns`.
    pub link: String,
}

impl SecondNode {
    /// The second node named by the cluster's env, when `DBINIT_NODES=2`.
    pub(super) fn from_env(vars: &BTreeMap<String, String>) -> Option<Self> {
        if vars.get("DBINIT_NODES").map(String::as_str) != Some("2") {
            return None;
        }
        let v = |k: &str| vars.get(k).cloned();
        Some(Self {
            name: v("DBINIT_NODE2_NAME")?,
            ip: v("DBINIT_NODE2_IP")?,
            netns: v("DBINIT_NETNS2")?,
            dir: v("DBINIT_NODE2_DIR")?.into(),
            containerd_sock: v("DBINIT_CONTAINERD2_SOCK")?.into(),
            link: v("DBINIT_NODE2_LINK").unwrap_or_else(|| "link-node1".into()),
        })
    }

    /// Drops, inside the node's namespace, every packet to and from the apiserver (its
    /// address and port; OUTPUT for the kubelet and kube-proxy, FORWARD for the pods, which
    /// reach it through the `kubernetes` Service's DNAT). PostgreSQL, on the same address but
    /// another port, still answers. Undone when the guard drops.
    pub fn partition_from_apiserver(&self, node: &Node) -> Fault {
        let port = node
            .apiserver_port
            .expect("DBINIT_APISERVER_PORT (make cluster-up writes it)")
            .to_string();
        let ip = node.node_ip.as_str();
        let to = ["-d", ip, "-p", "tcp", "--dport", &port, "-j", "DROP"];
        let from = ["-s", ip, "-p", "tcp", "--sport", &port, "-j", "DROP"];
        Fault::install(
            &self.netns,
            &[
                ("OUTPUT", &to[..]),
                ("FORWARD", &to[..]),
                ("INPUT", &from[..]),
                ("FORWARD", &from[..]),
            ],
        )
    }

    /// Drops every packet on the node's link: to the rest of the cluster the node is gone, as
    /// if powered off (nothing it sends, not even a FIN of a dying process, gets out). Undone
    /// when the guard drops.
    pub fn cut_off(&self) -> Fault {
        let link = self.link.as_str();
        Fault::install(
            &self.netns,
            &[
                ("INPUT", &["-i", link, "-j", "DROP"][..]),
                ("OUTPUT", &["-o", link, "-j", "DROP"][..]),
                ("FORWARD", &["-i", link, "-j", "DROP"][..]),
                ("FORWARD", &["-o", link, "-j", "DROP"][..]),
            ],
        )
    }

    /// Every process of the node: its components by their pid files (checked to name the
    /// node's state dir), whatever runs in its network namespace (containerd's shims too), and
    /// every process in the pods' cgroups.
    pub fn processes(&self) -> Vec<u32> {
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &str| std::fs::metadata(p).map(|m| m.ino()).ok();
        let netns = ino(&format!("/run/netns/{}", self.netns));
        let dir = self.dir.to_string_lossy().into_owned();
        let sock = format!("-address {} ", self.containerd_sock.display());
        let cmdline = |pid: u32| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default()
        };
        let mut pids: Vec<u32> = ["kubelet", "containerd", "kube-proxy"]
            .iter()
            .filter_map(|c| std::fs::read_to_string(self.dir.join(format!("pids/{c}.pid"))).ok())
            .filter_map(|p| p.trim().parse().ok())
            .filter(|&p| cmdline(p).contains(&dir))
            .collect();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            if let Ok(p) = e.file_name().to_string_lossy().parse::<u32>()
                && (cmdline(p).contains(&sock)
                    || (netns.is_some() && ino(&format!("/proc/{p}/ns/net")) == netns))
            {
                pids.push(p);
            }
        }
        for controller in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            cgroup_procs(&controller.path().join(&self.netns), &mut pids);
        }
        cgroup_procs(&Path::new("/sys/fs/cgroup").join(&self.netns), &mut pids);
        pids.sort();
        pids.dedup();
        pids.retain(|p| Path::new(&format!("/proc/{p}")).exists());
        pids
    }

    /// SIGKILLs every process of the node at once — kubelet, containerd, kube-proxy, the shims
    /// and every container — until none is left (a shim may reap and exit meanwhile). Returns
    /// how many were killed.
    pub fn kill_everything(&self) -> usize {
        let mut killed = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let pids = self.processes();
            if pids.is_empty() {
                return killed.len();
            }
            let _ = Command::new("kill")
                .arg("-9")
                .args(pids.iter().map(u32::to_string))
                .output();
            killed.extend(pids);
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "processes of node {} survive SIGKILL: {:?}",
            self.name,
            self.processes()
        );
    }

    /// Brings the node back: scripts/cluster-up.sh with the cluster's own env file (it starts
    /// only what is missing), then waits until the node is Ready and untainted.
    pub fn restart(&self, node: &Node) {
        if let Err(e) = self.try_restart(node) {
            panic!("{e}");
        }
        node.wait_node_ready(&self.name, Duration::from_secs(180));
    }

    /// [`SecondNode::restart`] without waiting for Ready, and an error instead of a panic
    /// (for guards that run while a test unwinds).
    pub fn try_restart(&self, node: &Node) -> Result<(), String> {
        let node_dir = node.node_dir.as_ref().ok_or("not this machine's node")?;
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#". "$1/env" && exec "$2""#)
            .arg("restart-node")
            .arg(node_dir)
            .arg(repo_root().join("scripts/cluster-up.sh"))
            .env("NODES", "2")
            .output()
            .map_err(|e| format!("scripts/cluster-up.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "bringing node {} back: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

/// Adds the pids in every `cgroup.procs` below `dir`.
fn cgroup_procs(dir: &Path, out: &mut Vec<u32>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            cgroup_procs(&e.path(), out);
        }
    }
}

/// iptables rules inside a node's network namespace, removed when dropped (or [`Fault::heal`]).
pub struct Fault {
    netns: String,
    rules: Vec<(String, Vec<String>)>,
}

fn iptables(netns: &str, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .arg("iptables")
        .args(["-w", "5"])
        .args(args)
        .output()
        .expect("run iptables")
}

impl Fault {
    fn install(netns: &str, rules: &[(&str, &[&str])]) -> Fault {
        let mut f = Fault {
            netns: netns.to_string(),
            rules: Vec::new(),
        };
        for (chain, rule) in rules {
            // First in the chain: before kube-proxy's and the CNI's ACCEPTs.
            let mut args = vec!["-I", chain, "1"];
            args.extend_from_slice(rule);
            let out = iptables(netns, &args);
            assert!(
                out.status.success(),
                "iptables {args:?} in {netns}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            f.rules.push((
                chain.to_string(),
                rule.iter().map(|s| s.to_string()).collect(),
            ));
        }
        f
    }

    /// Removes the rules: the traffic flows again.
    pub fn heal(&mut self) {
        for (chain, rule) in self.rules.drain(..).rev() {
            let mut args = vec!["-D", chain.as_str()];
            args.extend(rule.iter().map(String::as_str));
            let out = iptables(&self.netns, &args);
            if !out.status.success() {
                eprintln!(
                    "iptables {args:?} in {}: {}",
                    self.netns,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        self.heal();
    }
}

/// A cordoned node (no new pods scheduled there), uncordoned when dropped.
pub struct Cordon<'a> {
    node: &'a Node,
    name: String,
}

impl Node {
    /// Cordons node `name` until the guard drops.
    pub fn cordon(&self, name: &str) -> Cordon<'_> {
        self.kubectl_ok(None, &["cordon", name]);
        Cordon {
            node: self,
            name: name.to_string(),
        }
    }

    /// Waits until node `name` reports Ready and carries none of the node lifecycle's taints
    /// (not-ready, unreachable): new pods may go there again.
    pub fn wait_node_ready(&self, name: &str, timeout: Duration) {
        deadline_loop(&format!("node {name} Ready"), timeout, || {
            let n = self
                .get_json(None, &["node", name])
                .ok_or_else(|| "no such node".to_string())?;
            let ready = n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let tainted = n["spec"]["taints"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| {
                    t["key"]
                        .as_str()
                        .is_some_and(|k| k.starts_with("node.kubernetes.io/"))
                });
            if ready && !tainted {
                Ok(())
            } else {
                Err(format!(
                    "{} taints {}",
                    n["status"]["conditions"], n["spec"]["taints"]
                ))
            }
        });
    }

    /// The second node, or `None` after printing why the test `test` is skipped: the
    /// multi-node tier needs `make cluster-up NODES=2`.
    pub fn two_nodes(&self, test: &str) -> Option<&SecondNode> {
        if self.second.is_none() {
            println!(
                "SKIPPED {test}: needs two nodes (make cluster-up NODES=2); this cluster has one"
            );
        }
        self.second.as_ref()
    }
}

impl Drop for Cordon<'_> {
    fn drop(&mut self) {
        let _ = self
            .node
            .kubectl(None)
            .args(["uncordon", &self.name])
            .output();
    }
}
