//! PostgreSQL and Redis for the pods, reached the way users reach a managed database: the
//! servers run on the node's network (inside its namespace, listening on the node's address)
//! and pods find them through a selector-less Service with Endpoints at that address.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Node, repo_root};
use crate::{Pg, PgOpts, Watchdog, free_port, spawn_guarded, which};

/// A PostgreSQL cluster (role `app` with the password of deploy/secret.example.yaml, LOGIN
/// CREATEDB) and a Redis server, for one test.
pub struct Backends {
    /// The PostgreSQL server; its `psql` is the test's superuser view.
    pub pg: Pg,
    /// Redis's port on the node's address.
    pub redis_port: u16,
    /// The password of role `app`, as deploy/secret.example.yaml has it.
    pub app_password: String,
    redis_dir: tempfile::TempDir,
    _redis: Watchdog,
}

/// The password in deploy/secret.example.yaml: what README's commands give the pods.
pub fn example_secret_password() -> String {
    let path = repo_root().join("deploy/secret.example.yaml");
    let text = std::fs::read_to_string(&path).expect("deploy/secret.example.yaml");
    let v: Value = serde_saphyr::from_str(&text).expect("secret.example.yaml is YAML");
    v["stringData"]["password"]
        .as_str()
        .expect("stringData.password in deploy/secret.example.yaml")
        .to_string()
}

impl Backends {
    /// Starts both servers where the node's pods can reach them.
    pub fn start(node: &Node) -> Self {
        Self::start_with(node, &[])
    }

    /// [`Backends::start`] with more PostgreSQL settings (`max_connections`, ...).
    ///
    /// Always set: disconnections logged with millisecond UTC times and the backend pid (when
    /// a session ended, for the tests that compare it with a Lease); prepared transactions (a
    /// lock that survives a server restart). TCP keepalives and
    /// `client_connection_check_interval` stay at the server's defaults (none, and two hours):
    /// dbinit sets its own in its sessions, and the node-loss test relies on those.
    pub fn start_with(node: &Node, settings: &[(&str, &str)]) -> Self {
        let mut all: Vec<(String, String)> = [
            ("log_disconnections", "on"),
            ("log_line_prefix", "'%m [%p] '"),
            ("log_timezone", "UTC"),
            ("max_prepared_transactions", "10"),
        ]
        .iter()
        .chain(settings)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        all.push((
            "listen_addresses".into(),
            format!("127.0.0.1,{}", node.node_ip),
        ));
        let pg = Pg::init(PgOpts {
            settings: all,
            netns: node.netns.clone(),
            ..PgOpts::default()
        });
        let hba = pg.data_dir().join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        rules.push_str("host all all 0.0.0.0/0 scram-sha-256\n");
        std::fs::write(&hba, rules).expect("pg_hba.conf");
        pg.start();
        let app_password = example_secret_password();
        pg.psql(
            "postgres",
            &format!(
                "CREATE ROLE app LOGIN CREATEDB PASSWORD '{}'",
                app_password.replace('\'', "''")
            ),
        );
        let (redis, redis_port, redis_dir) = start_redis(node);
        Self {
            pg,
            redis_port,
            app_password,
            redis_dir,
            _redis: redis,
        }
    }

    /// Creates Services `pg_name` (port 5432) and `redis_name` (port 6379) in `ns`, without
    /// selectors, whose Endpoints are the servers on the node's address. Returns their
    /// ClusterIPs (PostgreSQL, Redis).
    pub fn expose(
        &self,
        node: &Node,
        ns: &str,
        pg_name: &str,
        redis_name: &str,
    ) -> (String, String) {
        (
            service(node, ns, pg_name, 5432, self.pg.port),
            service(node, ns, redis_name, 6379, self.redis_port),
        )
    }

    /// Connections currently open to database `db` from anything but the test itself.
    pub fn sessions(&self, db: &str) -> String {
        self.pg.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
            ),
        )
    }

    /// Redis's log so far (for failure messages).
    pub fn redis_log(&self) -> String {
        std::fs::read_to_string(self.redis_dir.path().join("redis.log")).unwrap_or_default()
    }
}

/// A selector-less Service `name` in `ns` (port `port`) whose Endpoints are `target` on the
/// node's address, its name resolvable in pods; returns its ClusterIP.
pub fn service(node: &Node, ns: &str, name: &str, port: u16, target: u16) -> String {
    node.apply(
        ns,
        &json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
             "spec": {"ports": [{"name": "tcp", "port": port, "targetPort": target}]}},
            {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name},
             "subsets": [{"addresses": [{"ip": node.node_ip}], "ports": [{"name": "tcp", "port": target}]}]}
        ]}),
    );
    let ip = node
        .get_json(Some(ns), &["service", name])
        .and_then(|s| s["spec"]["clusterIP"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("Service {name} has no ClusterIP"));
    super::dns::register(node, ns, name, &ip);
    ip
}

fn start_redis(node: &Node) -> (Watchdog, u16, tempfile::TempDir) {
    let bin = which("redis-server").unwrap_or_else(|| {
        panic!("redis-server not found: install Debian's `redis-server` package (make deps)")
    });
    let dir = tempfile::Builder::new()
        .prefix("dbinit-e2e-redis-")
        .tempdir()
        .expect("tempdir");
    let port = match &node.netns {
        Some(ns) => super::free_port_in(ns),
        None => free_port(),
    };
    let sock = dir.path().join("redis.sock");
    let conf = format!(
        "port {port}\nbind 127.0.0.1 {ip}\nprotected-mode no\nunixsocket {sock}\nunixsocketperm 700\n\
         save \"\"\nappendonly no\ndir {d}\nlogfile {d}/redis.log\n",
        ip = node.node_ip,
        sock = sock.display(),
        d = dir.path().display()
    );
    let conf_path = dir.path().join("redis.conf");
    std::fs::write(&conf_path, conf).expect("write redis.conf");
    let (program, args): (PathBuf, Vec<String>) = match &node.netns {
        Some(ns) => (
            PathBuf::from("nsenter"),
            vec![
                format!("--net=/run/netns/{ns}"),
                bin.display().to_string(),
                conf_path.display().to_string(),
            ],
        ),
        None => (bin, vec![conf_path.display().to_string()]),
    };
    let program = which(program.to_str().expect("utf8")).unwrap_or(program);
    let watchdog = spawn_guarded(&program, &args, &dir.path().join("redis.out"));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(mut s) = UnixStream::connect(&sock) {
            let mut buf = [0u8; 64];
            if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).unwrap_or(0) > 0 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not start on {}:{port}: {}",
            node.node_ip,
            std::fs::read_to_string(dir.path().join("redis.out")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (watchdog, port, dir)
}
