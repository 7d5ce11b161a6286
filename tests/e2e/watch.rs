//! Every change to objects of one kind in the test's namespace, as the apiserver streams it
//! (`kubectl get KIND --watch --output-watch-events -o json`): a pod's terminated state or a
//! Lease's release is seen even when the object is gone (deleted by Helm) before anyone polls.

use std::io::Read;
use std::process::{Child, Stdio};
use std::thread::JoinHandle;

use serde_json::Value;

use crate::common::World;

/// A running watch; [`Watch::stop`] ends it and returns what it saw.
pub struct Watch {
    child: Child,
    reader: Option<JoinHandle<String>>,
}

impl Watch {
    /// Starts watching `kind` (e.g. `pods`, `leases`) in the world's namespace.
    pub fn start(w: &World, kind: &str) -> Watch {
        let mut child =
            w.ns.kubectl()
                .args([
                    "get",
                    kind,
                    "--watch",
                    "--output-watch-events",
                    "-o",
                    "json",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("kubectl get --watch");
        let mut out = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Watch {
            child,
            reader: Some(reader),
        }
    }

    /// Ends the watch; the objects it saw, in order (each event's `object`).
    pub fn stop(mut self) -> Vec<Value> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = self
            .reader
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default();
        serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .filter_map(Result::ok)
            .map(|e| e["object"].clone())
            .collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
