//! Every value of the chart set at once, and what the rendered objects must then carry.

use serde_json::{Value, json};

use crate::driver::env;

/// A value for every key of values.yaml that changes something (argocd aside: it turns the
/// hooks into ordinary objects and has its own test).
pub fn every() -> Value {
    json!({
        "nameOverride": "db",
        "fullnameOverride": "custom",
        "image": {"registry": "registry.example", "repository": "team/dbinit", "tag": "ignored",
            "digest": format!("sha256:{}", "ab".repeat(32)), "pullPolicy": "Never"},
        "imagePullSecrets": [{"name": "regcred"}],
        "postgres": {"host": "pg.example", "port": 6543, "user": "owner", "database": "custom_db",
            "sslmode": "verify-full", "password": "pg-pw", "existingSecret": "ignored",
            "existingSecretKey": "ignored", "tls": {"caSecret": "pg-ca", "caSecretKey": "root.pem"}},
        "redis": {"enabled": true, "host": "cache.example", "port": 6380, "db": 2,
            "username": "worker", "password": "redis-pw", "existingSecret": "ignored",
            "existingSecretKey": "ignored", "tls": {"enabled": true, "caSecret": "redis-ca",
            "caSecretKey": "ca.pem"}},
        "migration": {"enabled": true, "timeoutSeconds": 30, "lockTimeoutSeconds": 60,
            "activeDeadlineSeconds": 240, "backoffLimit": 5, "ttlSecondsAfterFinished": 600,
            "jobName": "custom-job", "leaseName": "custom-lease", "statusConfigMap": "custom-status",
            "migrationsDir": "/ignored", "files": {"V1__t.sql": "CREATE TABLE t (id int);"}},
        "logFormat": "text",
        "serviceAccount": {"create": true, "name": "custom-sa",
            "annotations": {"iam.gke.io/gcp-service-account": "m@p.iam"}},
        "rbac": {"create": true, "roleName": "custom-role"},
        "podAnnotations": {"sidecar.istio.io/inject": "false"},
        "podLabels": {"team": "deals"},
        "podSecurityContext": {"runAsNonRoot": true, "runAsUser": 1001, "runAsGroup": 1001,
            "fsGroup": 1001, "seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]}, "runAsUser": 1002},
        "resources": {"requests": {"cpu": "20m", "memory": "24Mi"},
            "limits": {"cpu": "1", "memory": "128Mi"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "db", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In",
            "values": ["db"]}]}]}}},
        "priorityClassName": "system-cluster-critical",
        "extraEnv": [{"name": "DBINIT_HISTORY_TABLE", "value": "custom_history"}],
        "extraEnvFrom": [{"configMapRef": {"name": "dbinit-settings"}}],
        "extraVolumes": [{"name": "extra", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/extra"}],
        "tests": {"enabled": true, "timeoutSeconds": 20},
        "exampleApp": {"enabled": true, "replicas": 3, "image": "example/app:1", "waitTimeout": "2m"}
    })
}

/// The pod-level settings every pod of the chart carries.
fn check_pod(pod: &Value, what: &str) {
    let spec = &pod["spec"];
    assert_eq!(spec["enableServiceLinks"], false, "{what}");
    assert_eq!(
        spec["imagePullSecrets"],
        json!([{"name": "regcred"}]),
        "{what}"
    );
    assert_eq!(spec["securityContext"]["runAsUser"], 1001, "{what}");
    assert_eq!(spec["securityContext"]["fsGroup"], 1001, "{what}");
    assert_eq!(spec["nodeSelector"]["kubernetes.io/os"], "linux", "{what}");
    assert_eq!(spec["tolerations"][0]["key"], "db", "{what}");
    assert!(spec["affinity"]["nodeAffinity"].is_object(), "{what}");
    assert_eq!(
        spec["priorityClassName"], "system-cluster-critical",
        "{what}"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["sidecar.istio.io/inject"], "false",
        "{what}"
    );
    assert_eq!(pod["metadata"]["labels"]["team"], "deals", "{what}");
    assert_eq!(
        pod["metadata"]["labels"]["app.kubernetes.io/name"], "db",
        "{what}"
    );
    let volumes: Vec<&str> = spec["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| v["name"].as_str().unwrap_or(""))
        .collect();
    for v in [
        "postgres-password",
        "postgres-ca",
        "redis-password",
        "redis-ca",
        "migrations",
        "extra",
    ] {
        assert!(volumes.contains(&v), "{what}: volume {v} in {volumes:?}");
    }
}

/// A dbinit container (Job, init container).
fn check_container(c: &Value, what: &str) {
    let image = format!("registry.example/team/dbinit@sha256:{}", "ab".repeat(32));
    assert_eq!(c["image"], image, "{what}");
    assert_eq!(c["imagePullPolicy"], "Never", "{what}");
    assert_eq!(c["securityContext"]["runAsUser"], 1002, "{what}");
    assert_eq!(c["resources"]["limits"]["memory"], "128Mi", "{what}");
    assert_eq!(
        c["envFrom"][0]["configMapRef"]["name"], "dbinit-settings",
        "{what}"
    );
    for (k, v) in [
        ("POSTGRES_HOST", "pg.example"),
        ("POSTGRES_PORT", "6543"),
        ("POSTGRES_USER", "owner"),
        ("POSTGRES_DB", "custom_db"),
        ("POSTGRES_SSLMODE", "verify-full"),
        (
            "POSTGRES_SSLROOTCERT",
            "/var/run/secrets/dbinit/postgres-ca/ca.crt",
        ),
        ("REDIS_URL", "rediss://cache.example:6380/2"),
        ("REDIS_USERNAME", "worker"),
        (
            "REDIS_PASSWORD_FILE",
            "/var/run/secrets/dbinit/redis/password",
        ),
        (
            "REDIS_SSLROOTCERT",
            "/var/run/secrets/dbinit/redis-ca/ca.crt",
        ),
        ("DBINIT_MIGRATIONS_DIR", "/migrations"),
        ("DBINIT_LOG_FORMAT", "text"),
        ("DBINIT_HISTORY_TABLE", "custom_history"),
    ] {
        assert_eq!(env(c, k), v, "{what}: {k}");
    }
    assert!(
        env(c, "REDIS_HOST").is_null(),
        "{what}: TLS goes by REDIS_URL"
    );
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap_or(""))
        .collect();
    assert!(
        mounts.contains(&"/extra") && mounts.contains(&"/migrations"),
        "{what}: {mounts:?}"
    );
}

/// The migration Job rendered from [`every`].
pub fn check_job(job: &Value) {
    let spec = &job["spec"];
    assert_eq!(spec["activeDeadlineSeconds"], 240);
    // Kubernetes 1.20: backoffLimit 0 whatever the value, as there is no Pod failure policy.
    assert_eq!(spec["backoffLimit"], 0);
    assert_eq!(
        job["metadata"]["labels"]["app.kubernetes.io/instance"],
        "full"
    );
    let pod = &spec["template"];
    check_pod(pod, "job");
    assert_eq!(pod["spec"]["serviceAccountName"], "custom-sa");
    let c = &pod["spec"]["containers"][0];
    check_container(c, "job");
    for (k, v) in [
        ("DBINIT_TIMEOUT", "30s"),
        ("DBINIT_ACQUIRE_TIMEOUT", "60s"),
        ("DBINIT_LOCK_TIMEOUT", "60s"),
        ("DBINIT_LEASE_NAME", "custom-lease"),
        ("DBINIT_STATUS_CONFIGMAP", "custom-status"),
    ] {
        assert_eq!(env(c, k), v, "job: {k}");
    }
}

/// The example app rendered from [`every`].
pub fn check_app(app: &Value) {
    assert_eq!(app["spec"]["replicas"], 3);
    assert_eq!(
        app["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"],
        "full"
    );
    let pod = &app["spec"]["template"];
    check_pod(pod, "app");
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    let init = &pod["spec"]["initContainers"][0];
    check_container(init, "app init");
    assert_eq!(env(init, "DBINIT_TIMEOUT"), "2m");
    assert_eq!(pod["spec"]["containers"][0]["image"], "example/app:1");
}
