//! Service names for pods on a node without cluster DNS (this machine's one-node cluster):
//! `dns.py` answers on the node's address, port 53, where the pods' resolv.conf points, with the
//! ClusterIPs of the Services the tests create, as cluster DNS would. Started once per test
//! binary, only when the node runs in a network namespace and nothing else answers there;
//! on other clusters (kind) their own cluster DNS resolves the names.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::Node;
use crate::{Watchdog, spawn_guarded, which};

struct Dns {
    hosts: PathBuf,
    _dir: tempfile::TempDir,
    _server: Watchdog,
    // Dns lives in a static, which is never dropped: this removes its directory at exit.
    _cleanup: Watchdog,
}

fn start(node: &Node, ns: &str) -> Option<Dns> {
    let dir = tempfile::Builder::new()
        .prefix("dbinit-e2e-dns-")
        .tempdir()
        .expect("tempdir");
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "").expect("hosts");
    let log = dir.path().join("dns.log");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/node/dns.py");
    let server = spawn_guarded(
        &which("nsenter").expect("nsenter"),
        &[
            format!("--net=/run/netns/{ns}"),
            "python3".into(),
            script.display().to_string(),
            node.node_ip.clone(),
            hosts.display().to_string(),
        ],
        &log,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("answering on") {
            return Some(Dns {
                hosts,
                _cleanup: crate::remove_at_exit(dir.path()),
                _dir: dir,
                _server: server,
            });
        }
        if text.contains("Address already in use") {
            // The node has a resolver of its own there: let it answer.
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "the e2e DNS did not start on {}:53: {text}",
            node.node_ip
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Makes Service `name` of namespace `ns` resolve to `ip` in pods (no-op where the cluster
/// has its own DNS).
pub fn register(node: &Node, ns: &str, name: &str, ip: &str) {
    static DNS: OnceLock<Mutex<Option<Dns>>> = OnceLock::new();
    let Some(netns) = &node.netns else { return };
    let dns = DNS.get_or_init(|| Mutex::new(start(node, netns)));
    let guard = dns.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = guard.as_ref() {
        let mut text = std::fs::read_to_string(&d.hosts).unwrap_or_default();
        text.push_str(&format!("{ns} {name} {ip}\n"));
        std::fs::write(&d.hosts, text).expect("write DNS hosts");
    }
}
