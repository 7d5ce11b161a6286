//! Running a container of a Kubernetes manifest as a local process: its command and args,
//! its env with fieldRefs resolved, mounted volumes mapped to local directories, and cluster
//! DNS names mapped to the test's servers. So a renamed flag or variable breaks a test, not a
//! rollout. This stands in for a kubelet only in the quick, apiserver-only tier; the
//! one-node cluster's e2e tests start the same specs as real pods.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::command;

/// Where the pod would find things, and where the test put them instead.
pub struct PodWorld<'a> {
    /// Cluster host name -> (local host, port), e.g. "postgres" -> 127.0.0.1:5433.
    pub hosts: BTreeMap<String, (String, u16)>,
    /// Volume name -> local directory with the files the volume would hold.
    pub volumes: BTreeMap<String, PathBuf>,
    /// metadata.namespace for fieldRefs.
    pub namespace: &'a str,
    /// envFrom source name (ConfigMap or Secret) -> its data.
    pub env_from: BTreeMap<String, BTreeMap<String, String>>,
}

impl<'a> PodWorld<'a> {
    /// The usual world: `postgres` (and `redis`) are the test's servers on 127.0.0.1, the
    /// `postgres-password` volume is `password_dir`.
    pub fn with_servers(
        namespace: &'a str,
        pg_port: u16,
        redis_port: Option<u16>,
        password_dir: &Path,
    ) -> Self {
        let mut hosts =
            BTreeMap::from([("postgres".to_string(), ("127.0.0.1".to_string(), pg_port))]);
        if let Some(p) = redis_port {
            hosts.insert("redis".to_string(), ("127.0.0.1".to_string(), p));
        }
        Self {
            hosts,
            volumes: BTreeMap::from([(
                "postgres-password".to_string(),
                password_dir.to_path_buf(),
            )]),
            namespace,
            env_from: BTreeMap::new(),
        }
    }
}

/// The local process for `container` (a JSON value of a container spec).
pub fn local_process(container: &Value, world: &PodWorld<'_>) -> Command {
    let argv: Vec<String> = container["command"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(container["args"].as_array().into_iter().flatten())
        .map(|v| v.as_str().expect("string arg").to_string())
        .collect();
    let binary = Path::new(&argv[0])
        .file_name()
        .expect("binary")
        .to_string_lossy()
        .into_owned();
    let mut cmd = command(&binary);
    cmd.args(&argv[1..]);
    let mounts: Vec<(String, PathBuf)> = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["name"].as_str().unwrap_or("");
            let dir = world
                .volumes
                .get(name)
                .unwrap_or_else(|| panic!("no local directory for volume {name}"));
            (
                m["mountPath"].as_str().unwrap_or("").to_string(),
                dir.clone(),
            )
        })
        .collect();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let name = source["configMapRef"]["name"]
            .as_str()
            .or_else(|| source["secretRef"]["name"].as_str())
            .unwrap_or_else(|| panic!("unexpected envFrom source {source}"));
        let data = world
            .env_from
            .get(name)
            .unwrap_or_else(|| panic!("no local data for envFrom source {name}"));
        let prefix = source["prefix"].as_str().unwrap_or("");
        for (k, v) in data {
            cmd.env(format!("{prefix}{k}"), v);
        }
    }
    let env = container["env"].as_array().expect("env");
    for e in env {
        let name = e["name"].as_str().expect("name");
        let value = if let Some(v) = e["value"].as_str() {
            v.to_string()
        } else if let Some(path) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match path {
                "metadata.name" => "local-pod-0".to_string(),
                "metadata.namespace" => world.namespace.to_string(),
                "metadata.uid" => "00000000-0000-4000-8000-000000000001".to_string(),
                other => panic!("unexpected fieldRef {other}"),
            }
        } else {
            panic!("unexpected env source for {name}: {e}");
        };
        let value = match mounts.iter().find(|(p, _)| value.starts_with(p.as_str())) {
            Some((p, dir)) => dir
                .join(value[p.len()..].trim_start_matches('/'))
                .display()
                .to_string(),
            None => value,
        };
        cmd.env(name, value);
    }
    for (var, port_var) in [
        ("POSTGRES_HOST", "POSTGRES_PORT"),
        ("REDIS_HOST", "REDIS_PORT"),
    ] {
        if let Some(e) = env.iter().find(|e| e["name"] == var) {
            let host = e["value"].as_str().expect("host");
            let (h, p) = world
                .hosts
                .get(host)
                .unwrap_or_else(|| panic!("no local server for {host}"));
            cmd.env(var, h).env(port_var, p.to_string());
        }
    }
    cmd
}

/// Writes `files` into a new temp dir standing in for a volume.
pub fn volume_dir(files: &BTreeMap<String, String>) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tmp");
    for (k, v) in files {
        std::fs::write(d.path().join(k), v).expect("write volume file");
    }
    d
}
