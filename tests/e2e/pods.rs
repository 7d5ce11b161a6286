//! README's pod-level recipes on the real node: the initContainer snippet (20 replicas running
//! `dbinit run`, no Job), the `kubectl run` example, Services named `postgres`/`redis` whose
//! service-link variables Kubernetes injects, and a host name given through `hostAliases`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{World, builtin_versions, figure, secs, world};

/// README's initContainer snippet: a pod spec fragment (`initContainers`, and `volumes` when
/// README gives them).
pub(crate) fn snippet(w: &World) -> Value {
    let block = w.readme.block("init-container");
    let v: Value = serde_saphyr::from_str(&block).expect("README's snippet is YAML");
    assert!(
        v["initContainers"].is_array(),
        "README's snippet is a pod spec fragment with initContainers: {v}"
    );
    v
}

/// README's snippet with `["/dbinit", "run"]`, which README's comment offers in place of
/// `wait` ("to migrate from the pods themselves").
fn snippet_run(w: &World) -> Value {
    let block = w.readme.block("init-container");
    assert!(
        block.contains(r#"["/dbinit", "run"]"#),
        "README's snippet offers [\"/dbinit\", \"run\"]:\n{block}"
    );
    let mut s = snippet(w);
    s["initContainers"][0]["command"] = json!(["/dbinit", "run"]);
    s
}

/// A Deployment `name` whose pod spec is `pod` plus a do-nothing app container.
pub(crate) fn deployment(name: &str, replicas: usize, mut pod: Value) -> Value {
    pod["containers"] = json!([{
        "name": "app", "image": "registry.k8s.io/pause:3.9", "imagePullPolicy": "IfNotPresent"
    }]);
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod}
        }
    })
}

/// The number N in "applied N migration(s)" of a termination message (0 when up to date).
fn applied_count(message: &str) -> usize {
    message
        .split("applied ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn readme_init_snippet_running_dbinit_run_in_20_replicas_applies_each_migration_once() {
    let w = world("init20");
    w.db.expose(w.node, &w.ns.name, "postgres", "redis");
    w.apply_files(&["deploy/secret.example.yaml"]);
    w.ns.apply(&deployment("app20", 20, snippet_run(&w)));
    let took = w.ns.wait_ready("app=app20", 20, Duration::from_secs(240));
    figure(
        "20 replicas with `dbinit run` init container: all Ready",
        secs(took),
    );
    figure(
        "20 replicas: pod create -> Ready, seconds (apiserver timestamps)",
        format!("{:?}", w.ns.ready_seconds("app=app20")),
    );
    let builtin = builtin_versions();
    w.assert_applied_once("agentic_deals", &builtin);
    assert_eq!(
        w.db.pg
            .psql("agentic_deals", "SELECT count(*) FROM dbinit_seed_history"),
        w.db.pg.psql(
            "agentic_deals",
            "SELECT count(DISTINCT name) FROM dbinit_seed_history"
        ),
        "a seed applied twice"
    );
    w.assert_no_lock();
    w.assert_built_image("app=app20", "dbinit");
    let messages = w.termination_messages("app=app20", "dbinit");
    assert_eq!(
        messages.len(),
        20,
        "every init container finished: {messages:?}"
    );
    let applied: usize = messages.iter().map(|m| applied_count(m)).sum();
    assert_eq!(
        applied,
        builtin.len(),
        "the pods together applied each migration once: {messages:#?}"
    );
}

/// README's `kubectl run` command, with the password README leaves for the user (`...`).
fn kubectl_run_command(w: &mut World) -> String {
    let cmds = w.readme.commands("kubectl-run");
    assert_eq!(
        cmds.len(),
        1,
        "README's kubectl run block is one command: {cmds:?}"
    );
    let cmd = &cmds[0];
    if cmd.contains("POSTGRES_PASSWORD=...") {
        cmd.replace(
            "POSTGRES_PASSWORD=...",
            &format!("POSTGRES_PASSWORD={}", w.db.app_password),
        )
    } else {
        let password = w.db.app_password.clone();
        w.sh.set("POSTGRES_PASSWORD", &password);
        cmd.clone()
    }
}

fn run_kubectl_run_example(w: &mut World) {
    w.apply_files(&["deploy/rbac.yaml"]);
    let cmd = kubectl_run_command(w);
    let f = w.sh.run(&cmd, Duration::from_secs(180));
    figure("README kubectl run example wall time", secs(f.elapsed));
    assert_eq!(
        f.code,
        Some(0),
        "README's kubectl run example:\n--- stdout\n{}\n--- stderr\n{}",
        f.stdout,
        f.stderr
    );
    w.assert_applied_once("agentic_deals", &builtin_versions());
    w.assert_no_lock();
    assert!(
        w.ns.pods("run=dbinit-once").is_empty(),
        "--rm removed the pod"
    );
}

#[test]
fn readme_kubectl_run_example_verbatim() {
    let mut w = world("run");
    w.db.expose(w.node, &w.ns.name, "postgres", "redis");
    run_kubectl_run_example(&mut w);
}

#[test]
fn service_links_of_postgres_and_redis_services_break_nothing() {
    let mut w = world("links");
    w.db.expose(w.node, &w.ns.name, "postgres", "redis");
    w.apply_files(&["deploy/secret.example.yaml"]);
    // README's snippet in a pod with service links on (Kubernetes' default): Kubernetes
    // injects POSTGRES_PORT=tcp://<ip>:5432 and REDIS_PORT=tcp://<ip>:6379.
    let mut pod = snippet_run(&w);
    pod["enableServiceLinks"] = json!(true);
    w.ns.apply(&deployment("links", 2, pod.clone()));
    w.ns.wait_ready("app=links", 2, Duration::from_secs(120));
    w.assert_applied_once("agentic_deals", &builtin_versions());

    // A lone injected REDIS_PORT (no REDIS_HOST) is not "Redis configured".
    let env = pod["initContainers"][0]["env"]
        .as_array_mut()
        .expect("snippet env");
    env.retain(|e| e["name"] != "REDIS_HOST" && e["name"] != "REDIS_PORT");
    pod["initContainers"][0]["command"] = json!(["/dbinit", "wait"]);
    w.ns.apply(&deployment("links-no-redis", 1, pod));
    w.ns.wait_ready("app=links-no-redis", 1, Duration::from_secs(120));

    // The variables really were injected, and dbinit said what it made of them.
    let logs = |selector: &str| {
        w.ns.pods(selector)
            .iter()
            .map(|p| {
                let name = p["metadata"]["name"].as_str().unwrap_or_default();
                w.ns.ok(&["logs", name, "-c", "dbinit"])
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let with_redis = logs("app=links");
    assert!(
        with_redis.contains("POSTGRES_PORT") && with_redis.contains("tcp://"),
        "dbinit read the injected POSTGRES_PORT=tcp://... and said so:\n{with_redis}"
    );
    let without = logs("app=links-no-redis");
    assert!(
        without.contains("REDIS_PORT") && without.contains("ignored"),
        "a lone injected REDIS_PORT is ignored, with a word:\n{without}"
    );
    assert!(
        !without.to_lowercase().contains("redis is ready"),
        "Redis was not checked without REDIS_HOST:\n{without}"
    );

    // README's kubectl run example in the same namespace.
    run_kubectl_run_example(&mut w);
}

#[test]
fn host_name_from_host_aliases_resolves_in_the_static_binary() {
    let w = world("alias");
    // Services not named like README's hosts; the names come only from /etc/hosts.
    let (pg_ip, redis_ip) = w.db.expose(w.node, &w.ns.name, "db-e2e", "cache-e2e");
    w.apply_files(&["deploy/secret.example.yaml"]);
    let mut pod = snippet_run(&w);
    pod["hostAliases"] = json!([
        {"ip": pg_ip, "hostnames": ["postgres"]},
        {"ip": redis_ip, "hostnames": ["redis"]}
    ]);
    w.ns.apply(&deployment("alias", 1, pod));
    let took = w.ns.wait_ready("app=alias", 1, Duration::from_secs(120));
    figure("hostAliases pod Ready", secs(took));
    w.assert_applied_once("agentic_deals", &builtin_versions());
}
