//! What every end-to-end test starts from: the node, a namespace of its own, PostgreSQL and
//! Redis where the pods reach them, README, and a user's shell.

use std::io::Write;
use std::time::Duration;

use dbinit_tests::node::{Backends, Node, Readme, Script, TestNs, repo_root};
use serde_json::{Value, json};

/// One test's world.
pub struct World {
    /// The test's namespace (dropped first, while the servers still run: dumped on failure,
    /// then deleted).
    pub ns: TestNs,
    /// A user's shell acting on `ns`.
    pub sh: Script,
    /// README.md.
    pub readme: Readme,
    /// PostgreSQL and Redis for this test only.
    pub db: Backends,
    /// The cluster.
    pub node: &'static Node,
    /// One test at a time, whatever `--test-threads` says: the tests share one node, and a
    /// bare Service name resolves in the namespace of the running test.
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// A fresh world for a test named `prefix`.
pub fn world(prefix: &str) -> World {
    world_with(prefix, &[])
}

/// A fresh world whose PostgreSQL has `settings` too (e.g. `max_connections`).
pub fn world_with(prefix: &str, settings: &[(&str, &str)]) -> World {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::get();
    let ns = TestNs::new(node, prefix);
    let db = Backends::start_with(node, settings);
    let sh = Script::new(node, &ns);
    World {
        node,
        db,
        sh,
        readme: Readme::load(),
        ns,
        _serial: serial,
    }
}

/// The built-in migrations' versions, from migrations/V*.sql.
pub fn builtin_versions() -> Vec<u32> {
    let mut v: Vec<u32> = std::fs::read_dir(repo_root().join("migrations"))
        .expect("migrations/")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix('V')?.split("__").next()?.parse().ok()
        })
        .collect();
    v.sort();
    v
}

/// The built-in migrations as `file name -> SQL` (for a chart values `migration.files`).
pub fn builtin_files() -> serde_json::Map<String, Value> {
    std::fs::read_dir(repo_root().join("migrations"))
        .expect("migrations/")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sql"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                Value::String(std::fs::read_to_string(e.path()).expect("read migration")),
            )
        })
        .collect()
}

/// "1,2,3" for a list of versions.
pub fn csv(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// A YAML file of the repository as JSON (one document).
pub fn repo_yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(rel)).expect("read YAML");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

impl World {
    /// Every migration of `db` applied exactly once, and exactly `versions`.
    pub fn assert_applied_once(&self, db: &str, versions: &[u32]) {
        assert_eq!(self.db.pg.history(db), csv(versions), "history of {db}");
        assert_eq!(
            self.db.pg.psql(
                db,
                "SELECT count(*) - count(DISTINCT version) FROM refinery_schema_history"
            ),
            "0",
            "a migration applied twice"
        );
    }

    /// No advisory lock is left on the server (within 10 s of the last runner).
    pub fn assert_no_lock(&self) {
        self.db.pg.assert_no_advisory_lock_soon();
    }

    /// `kubectl apply -f` of repository files (the test's own setup step).
    pub fn apply_files(&self, files: &[&str]) {
        let mut args = vec!["apply"];
        for f in files {
            args.push("-f");
            args.push(f);
        }
        let out = self
            .ns
            .kubectl()
            .args(&args)
            .current_dir(repo_root())
            .output()
            .expect("kubectl");
        assert!(
            out.status.success(),
            "kubectl apply {files:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A ConfigMap `name` holding `files` (migrations for `--migrations-dir`).
    pub fn migrations_configmap(&self, name: &str, files: &[(&str, &str)]) {
        let data: serde_json::Map<String, Value> = files
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        self.ns.apply(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name}, "data": data
        }));
    }

    /// Every container `container` of the pods matching `selector` ran the image this run
    /// built (its image ID is the archive's config digest).
    pub fn assert_built_image(&self, selector: &str, container: &str) {
        let want = dbinit_tests::node::built_image_id();
        let pods = self.ns.pods(selector);
        assert!(!pods.is_empty(), "no pods with {selector}");
        for p in pods {
            let statuses: Vec<Value> = p["status"]["initContainerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(
                    p["status"]["containerStatuses"]
                        .as_array()
                        .into_iter()
                        .flatten(),
                )
                .filter(|s| s["name"] == container)
                .cloned()
                .collect();
            assert!(!statuses.is_empty(), "no container {container}: {p}");
            for s in statuses {
                let id = s["imageID"].as_str().unwrap_or_default();
                assert!(
                    id.ends_with(&want),
                    "{} ran image {id}, not the one built in this run ({want})",
                    p["metadata"]["name"]
                );
            }
        }
    }

    /// Termination messages of the containers named `container` in pods matching `selector`.
    pub fn termination_messages(&self, selector: &str, container: &str) -> Vec<String> {
        self.ns
            .pods(selector)
            .iter()
            .flat_map(|p| {
                let all: Vec<Value> = p["status"]["initContainerStatuses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(
                        p["status"]["containerStatuses"]
                            .as_array()
                            .into_iter()
                            .flatten(),
                    )
                    .cloned()
                    .collect();
                all.into_iter()
                    .filter(|s| s["name"] == container)
                    .filter_map(|s| {
                        s["state"]["terminated"]["message"]
                            .as_str()
                            .map(str::to_string)
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Records a measured figure: printed, and appended to target/e2e-figures.txt.
pub fn figure(name: &str, value: impl std::fmt::Display) {
    let line = format!("FIGURE {name}: {value}");
    println!("{line}");
    let path = repo_root().join("target/e2e-figures.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Seconds with two decimals.
pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}
