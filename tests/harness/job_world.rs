//! One `dbinit-job` test's world (tests/job.rs, tests/events.rs): a namespace of its own on a
//! real kube-apiserver, a real PostgreSQL and the test's database, the job's command with
//! Lease timings short enough for a test, and what a test reads back there: the Lease, the
//! status ConfigMap, the Events.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Instant;

use serde_json::Value;

use crate::fixtures::spawn_piped;
use crate::{KubeApi, Pg, command};

/// `DBINIT_LEASE_DURATION` of every job in a world.
pub const LEASE: &str = "4s";

/// A namespace, a cluster, a database.
pub struct JobWorld<'a> {
    /// The apiserver (shared by the test binary, or the test's own).
    pub api: &'a KubeApi,
    /// The test's namespace.
    pub ns: String,
    /// The test's PostgreSQL.
    pub pg: Pg,
    /// The database the job migrates.
    pub db: String,
}

impl Drop for JobWorld<'_> {
    /// A failing test shows the apiserver's log (PostgreSQL's comes from `Pg`) and, with
    /// DBINIT_TEST_KEEP=1, keeps the apiserver and names the test's namespace.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.api.on_failure(Some(&self.ns));
        }
    }
}

impl<'a> JobWorld<'a> {
    /// A world named `name` with a PostgreSQL of its own, started.
    pub fn new(api: &'a KubeApi, name: &str) -> Self {
        Self::with_pg(api, name, Pg::start_new())
    }

    /// A world named `name` around `pg`, which the test may not have started yet.
    pub fn with_pg(api: &'a KubeApi, name: &str, pg: Pg) -> Self {
        Self {
            api,
            ns: api.namespace(name),
            pg,
            db: format!("{}_db", name.replace('-', "_")),
        }
    }

    /// `dbinit-job` as the user of `token`, with the migrations in `dir`.
    pub fn cmd(&self, token: &str, dir: &Path) -> Command {
        let mut c = command("dbinit-job");
        c.envs(self.pg.env())
            .env("POSTGRES_DB", &self.db)
            .env("DBINIT_MIGRATIONS_DIR", dir)
            .env("KUBECONFIG", self.api.kubeconfig(token, &self.ns))
            .env("DBINIT_LEASE_DURATION", LEASE)
            .env("DBINIT_RENEW_DEADLINE", "3s")
            .env("DBINIT_RETRY_PERIOD", "500ms")
            .env("DBINIT_API_TIMEOUT", "2s")
            .env("DBINIT_TIMEOUT", "60s");
        c
    }

    /// Starts the job as the admin, output piped.
    pub fn spawn(&self, dir: &Path) -> (Child, Instant) {
        spawn_piped(self.cmd("admin-token", dir))
    }

    /// A query's result on the test's database.
    pub fn sql(&self, q: &str) -> String {
        self.pg.psql(&self.db, q)
    }

    /// The Lease, `None` when absent.
    pub fn lease(&self) -> Option<Value> {
        let (code, body) = self.api.admin(
            "GET",
            &format!(
                "/apis/coordination.k8s.io/v1/namespaces/{}/leases/dbinit-migrations",
                self.ns
            ),
            None,
        );
        if code == 404 {
            return None;
        }
        assert_eq!(code, 200, "read the Lease: {body}");
        Some(serde_json::from_str(&body).expect("json"))
    }

    /// The Lease's holderIdentity: `None` when the Lease is absent, `Some("")` when released.
    pub fn lease_holder(&self) -> Option<String> {
        let lease = self.lease()?;
        Some(
            lease["spec"]["holderIdentity"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    }

    /// The status ConfigMap's data.
    pub fn status(&self) -> Value {
        let body = self
            .api
            .configmap(&self.ns, "dbinit-status")
            .expect("the status ConfigMap exists");
        let cm: Value = serde_json::from_str(&body).expect("json");
        cm["data"].clone()
    }

    /// The status ConfigMap's `history`, one record per run.
    pub fn history(&self) -> Vec<Value> {
        self.status()["history"]
            .as_str()
            .unwrap_or("")
            .lines()
            .map(|l| serde_json::from_str(l).expect("history line is JSON"))
            .collect()
    }

    /// (reason, type, message, involvedObject) of every Event in the namespace, in posting order.
    pub fn events(&self) -> Vec<(String, String, String, Value)> {
        let (code, body) = self.api.admin(
            "GET",
            &format!("/api/v1/namespaces/{}/events", self.ns),
            None,
        );
        assert_eq!(code, 200, "list events: {body}");
        let list: Value = serde_json::from_str(&body).expect("json");
        let mut items: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
        // Timestamps have whole seconds; the name ends in the posting time in nanoseconds
        // (hex) and a sequence number, as client-go names Events.
        items.sort_by_key(|e| {
            e["metadata"]["name"]
                .as_str()
                .and_then(|n| n.rsplit_once('.'))
                .and_then(|(_, hex)| u128::from_str_radix(hex, 16).ok())
                .unwrap_or(0)
        });
        items
            .into_iter()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or("").to_string(),
                    e["type"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                    e["involvedObject"].clone(),
                )
            })
            .collect()
    }

    /// The reasons of [`JobWorld::events`].
    pub fn reasons(&self) -> Vec<String> {
        self.events().into_iter().map(|e| e.0).collect()
    }
}

/// deploy/rbac.yaml, the ServiceAccount, Role and RoleBinding the job runs with.
pub fn deploy_rbac() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rbac.yaml"))
        .expect("deploy/rbac.yaml")
}

/// Creates the ServiceAccount, Role and RoleBinding documents of `yaml` in `ns`.
pub fn create_rbac(api: &KubeApi, ns: &str, yaml: &str) {
    for doc in yaml.split("\n---\n") {
        let kind = doc
            .lines()
            .find_map(|l| l.strip_prefix("kind: "))
            .expect("kind")
            .trim();
        let path = match kind {
            "ServiceAccount" => format!("/api/v1/namespaces/{ns}/serviceaccounts"),
            "Role" => format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"),
            "RoleBinding" => {
                format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings")
            }
            other => panic!("unexpected kind {other}"),
        };
        let (code, body) = api.call_with(
            "admin-token",
            "POST",
            &path,
            Some((doc, "application/yaml")),
        );
        assert_eq!(code, 201, "create {kind}: {body}");
    }
}
