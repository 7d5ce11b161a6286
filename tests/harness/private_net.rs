//! A network namespace of the test's own, with only a loopback device: where a server can
//! listen on the port a reader's machine has it on (PostgreSQL on localhost:5432) without
//! meeting anything else on this machine, so a page's commands run exactly as written. Held by
//! a shell whose stdin is a pipe from the test: when the test goes away, so does the holder,
//! and the namespace with its last process.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};

/// A network namespace with its loopback up (needs root).
pub struct PrivateNet {
    holder: Child,
    stdin: Option<ChildStdin>,
}

impl PrivateNet {
    /// Creates the namespace and brings its loopback up.
    pub fn new() -> Self {
        let mut holder = Command::new("unshare")
            .args([
                "--net",
                "sh",
                "-c",
                "ip link set lo up && echo up && read _",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn unshare");
        let stdin = holder.stdin.take();
        let mut line = String::new();
        let stdout = holder.stdout.take().expect("stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "up" {
            let _ = holder.kill();
            let out = holder.wait_with_output().expect("wait unshare");
            panic!(
                "cannot make a network namespace (`unshare --net` needs root): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Self { holder, stdin }
    }

    /// The namespace's file, for `nsenter --net=...` and [`crate::PgOpts::netns`].
    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.id())
    }
}

impl Default for PrivateNet {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PrivateNet {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.holder.wait();
    }
}
