//! The Helm chart, installed, upgraded, tested and uninstalled by the real Helm engine (PyPI
//! helm-sdkpy, Helm 4) on a real kube-apiserver.
//!
//! These are the QUICK, APISERVER-ONLY TIER (test names start with `quick_tier_`): there is
//! no kubelet and no Job controller, so each hook Job's container runs as a local process
//! against real PostgreSQL/Redis with the chart's ServiceAccount token, and the test then marks
//! the Job complete (see tests/helm/driver.rs). The same chart on a real node, with the hook
//! pods started by a kubelet, is the one-node cluster's e2e suite.

#[path = "helm/driver.rs"]
mod driver;
#[path = "helm/values.rs"]
mod values;

use std::path::Path;

use dbinit_tests::docs::Docs;
use dbinit_tests::manifest::{PodWorld, volume_dir};
use dbinit_tests::{KubeApi, Pg, Redis, RedisOpts};
use driver::{
    complete_jobs, dry_run, env, eventually, exists, finish, helm, objects, outcome, run_hook_job,
    run_with_a_pending_migration,
};
use serde_json::{Value, json};

const PASSWORD: &str = "change-me-7f3b9c";

struct Servers {
    pg: Pg,
    _redis: Redis,
    redis_port: u16,
}

fn servers(password: &str) -> Servers {
    let pg = Pg::start_new();
    pg.psql(
        "postgres",
        &format!("CREATE ROLE app LOGIN CREATEDB PASSWORD '{password}'"),
    );
    let redis = Redis::start(RedisOpts::default());
    Servers {
        redis_port: redis.port,
        pg,
        _redis: redis,
    }
}

/// Creates deploy/secret.example.yaml's Secret (what the default values name) in `ns`.
fn example_secret(api: &KubeApi, ns: &str) {
    let secret = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/secret.example.yaml"),
    )
    .expect("secret example");
    let (code, body) = api.call_with(
        "admin-token",
        "POST",
        &format!("/api/v1/namespaces/{ns}/secrets"),
        Some((&secret, "application/yaml")),
    );
    assert_eq!(code, 201, "{body}");
}

fn status(api: &KubeApi, ns: &str, name: &str) -> Value {
    api.wait_for(&format!("/api/v1/namespaces/{ns}/configmaps/{name}"))["data"].clone()
}

/// Uninstalls `release`, completing the post-delete stand-in Jobs, and checks that nothing of
/// it is left: no object with its instance label, no Lease or status ConfigMap, no release
/// record.
fn uninstall_leaves_nothing(
    api: &KubeApi,
    ns: &str,
    release: &str,
    fullname: &str,
    values: &Value,
) {
    let child = helm(api, "uninstall", ns, release, values);
    complete_jobs(
        api,
        ns,
        &[format!("{fullname}-migrate"), format!("{fullname}-test")],
    );
    finish(child, "uninstall");
    let left = objects(api, ns, &format!("app.kubernetes.io/instance={release}"));
    assert!(left.is_empty(), "helm uninstall left {left:?}");
    let records = objects(api, ns, &format!("owner=helm,name={release}"));
    assert!(records.is_empty(), "release records left: {records:?}");
    for path in [
        format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{fullname}-migrations"),
        format!("/api/v1/namespaces/{ns}/configmaps/{fullname}-status"),
    ] {
        assert!(!exists(api, &path), "{path} left behind");
    }
}

#[test]
fn quick_tier_default_values_install_upgrade_test_and_uninstall() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-default");
    example_secret(api, &ns);
    let s = servers(PASSWORD);
    let secret_dir = volume_dir(&[("password".to_string(), PASSWORD.to_string())].into());
    let world = PodWorld::with_servers(&ns, s.pg.port, Some(s.redis_port), secret_dir.path());
    let none = json!({});

    let child = helm(api, "install", &ns, "demo", &none);
    let job = run_hook_job(api, &ns, "demo-dbinit-migrate", Some("demo-dbinit"), &world);
    let release = finish(child, "install");
    assert_eq!(s.pg.history("agentic_deals"), "1,2,3,4,5,6,7");
    let spec = &job["spec"];
    // This apiserver is 1.20: no Pod failure policy, so no retry at all.
    assert_eq!(spec["backoffLimit"], 0);
    assert!(spec["podFailurePolicy"].is_null());
    assert!(
        spec["activeDeadlineSeconds"].as_i64() < Some(300),
        "below Helm's default timeout"
    );
    assert_eq!(spec["template"]["spec"]["enableServiceLinks"], false);
    let c = &spec["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "dbinit:dev");
    assert_eq!(env(c, "DBINIT_LEASE_NAME"), "demo-dbinit-migrations");
    assert_eq!(env(c, "DBINIT_STATUS_CONFIGMAP"), "demo-dbinit-status");
    assert_eq!(env(c, "DBINIT_TIMEOUT"), "60s");
    assert_eq!(env(c, "DBINIT_ACQUIRE_TIMEOUT"), "120s");
    assert_eq!(status(api, &ns, "demo-dbinit-status")["phase"], "Succeeded");
    assert!(exists(
        api,
        &format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/demo-dbinit-migrations")
    ));
    // The Job's identity and the succeeded Job exist only while the hooks run; what stays
    // with the release's labels is the Lease and the status ConfigMap dbinit-job created
    // (DBINIT_LABELS), which uninstall removes.
    eventually("transient hooks deleted after success", || {
        objects(api, &ns, "app.kubernetes.io/instance=demo")
            == [
                "configmaps/demo-dbinit-status",
                "leases/demo-dbinit-migrations",
            ]
    });
    assert!(
        !exists(
            api,
            &format!("/api/v1/namespaces/{ns}/secrets/demo-dbinit-postgres")
        ),
        "no chart-made Secret with existingSecret"
    );
    let notes = release["info"]["notes"].as_str().unwrap_or("");
    assert!(
        notes.contains("get configmap demo-dbinit-status"),
        "{notes}"
    );
    dry_run(api, &ns, &release);

    // An upgrade runs the hook again: a no-op run, recorded.
    let child = helm(api, "upgrade", &ns, "demo", &none);
    run_hook_job(api, &ns, "demo-dbinit-migrate", Some("demo-dbinit"), &world);
    finish(child, "upgrade");
    let st = status(api, &ns, "demo-dbinit-status");
    assert_eq!(st["phase"], "Succeeded");
    assert_eq!(st["history"].as_str().unwrap_or("").lines().count(), 2);

    // helm test: `dbinit status --exit-code --allow-ahead` finds the schema up to date (exit 0).
    let child = helm(api, "test", &ns, "demo", &none);
    let t = run_hook_job(api, &ns, "demo-dbinit-test", None, &world);
    finish(child, "test");
    // The passed test Job stays here: Helm 4 deletes test hooks in a deferred step that the
    // `helm test` CLI runs after printing logs and helm-sdkpy does not; the uninstall
    // stand-in below removes it either way.
    let pod = &t["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(
        pod["containers"][0]["command"],
        json!(["/dbinit", "status", "--exit-code", "--allow-ahead"])
    );
    // The same test fails when a migration is pending (exit 10, naming it).
    let pending = run_with_a_pending_migration(api, &ns, "demo-dbinit-test", &world);
    assert_eq!(pending.code, Some(10), "{}", pending.stderr);
    assert!(
        pending.stderr.contains("V99__pending"),
        "{}",
        pending.stderr
    );

    uninstall_leaves_nothing(api, &ns, "demo", "demo-dbinit", &none);
}

#[test]
fn quick_tier_every_value_set_at_once_install_upgrade_and_uninstall() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-every");
    let v = values::every();
    let child = helm(api, "install", &ns, "full", &v);
    let job = api.wait_for(&format!("/apis/batch/v1/namespaces/{ns}/jobs/custom-job"));
    values::check_job(&job);
    let sa = api.wait_for(&format!(
        "/api/v1/namespaces/{ns}/serviceaccounts/custom-sa"
    ));
    assert_eq!(
        sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"],
        "m@p.iam"
    );
    let role = api.wait_for(&format!(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/custom-role"
    ));
    assert_eq!(role["rules"][1]["resourceNames"], json!(["custom-lease"]));
    assert_eq!(role["rules"][3]["resourceNames"], json!(["custom-status"]));
    let binding = api.wait_for(&format!(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/custom-role"
    ));
    assert_eq!(binding["subjects"][0]["name"], "custom-sa");
    for (name, key) in [
        ("custom-postgres", "password"),
        ("custom-redis", "password"),
    ] {
        let secret = api.wait_for(&format!("/api/v1/namespaces/{ns}/secrets/{name}"));
        assert!(secret["data"][key].is_string(), "{name}");
    }
    let cm = api.wait_for(&format!(
        "/api/v1/namespaces/{ns}/configmaps/custom-migrations-sql"
    ));
    assert_eq!(cm["data"]["V1__t.sql"], "CREATE TABLE t (id int);");
    api.complete_job(&ns, "custom-job");
    let release = finish(child, "install");
    let rendered_job = driver::rendered_object(&release, "Job", "custom-job");
    assert_eq!(rendered_job["spec"]["ttlSecondsAfterFinished"], 600);
    let app = api.wait_for(&format!(
        "/apis/apps/v1/namespaces/{ns}/deployments/custom-app"
    ));
    values::check_app(&app);
    dry_run(api, &ns, &release);

    let child = helm(api, "upgrade", &ns, "full", &v);
    api.wait_for(&format!("/apis/batch/v1/namespaces/{ns}/jobs/custom-job"));
    api.complete_job(&ns, "custom-job");
    finish(child, "upgrade");

    let child = helm(api, "uninstall", &ns, "full", &v);
    complete_jobs(
        api,
        &ns,
        &["custom-job".to_string(), "custom-test".to_string()],
    );
    finish(child, "uninstall");
    let left = objects(api, &ns, "app.kubernetes.io/instance=full");
    assert!(left.is_empty(), "helm uninstall left {left:?}");
}

#[test]
fn quick_tier_two_releases_in_one_namespace_keep_separate_leases_and_status() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-two");
    let s = servers(PASSWORD);
    let secret_dir = volume_dir(&[("password".to_string(), PASSWORD.to_string())].into());
    let world = PodWorld::with_servers(&ns, s.pg.port, None, secret_dir.path());
    let values = |db: &str| json!({"postgres": {"password": PASSWORD, "database": db}, "redis": {"enabled": false}});
    for (release, db) in [("alpha", "alpha_db"), ("beta", "beta_db")] {
        let child = helm(api, "install", &ns, release, &values(db));
        if release == "beta" {
            // While beta migrates, its identity cannot touch alpha's record or Lease.
            api.wait_for(&format!(
                "/api/v1/namespaces/{ns}/serviceaccounts/beta-dbinit"
            ));
            api.wait_for(&format!(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/beta-dbinit"
            ));
            let token = api.service_account_token(&ns, "beta-dbinit");
            for path in [
                format!("/api/v1/namespaces/{ns}/configmaps/alpha-dbinit-status"),
                format!(
                    "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/alpha-dbinit-migrations"
                ),
            ] {
                assert_eq!(api.call(&token, "GET", &path, None).0, 403, "{path}");
            }
        }
        let job = format!("{release}-dbinit-migrate");
        run_hook_job(api, &ns, &job, Some(&format!("{release}-dbinit")), &world);
        finish(child, "install");
    }
    for (release, db) in [("alpha", "alpha_db"), ("beta", "beta_db")] {
        let st = status(api, &ns, &format!("{release}-dbinit-status"));
        assert_eq!(st["phase"], "Succeeded", "{release}");
        assert_eq!(st["database"], db, "{release}");
        assert_eq!(
            st["history"].as_str().unwrap_or("").lines().count(),
            1,
            "{release}"
        );
        api.wait_for(&format!(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{release}-dbinit-migrations"
        ));
        assert_eq!(s.pg.history(db), "1,2,3,4,5,6,7");
    }
    // Uninstalling one leaves the other's record alone.
    uninstall_leaves_nothing(api, &ns, "alpha", "alpha-dbinit", &values("alpha_db"));
    assert_eq!(status(api, &ns, "beta-dbinit-status")["phase"], "Succeeded");
}

#[test]
fn values_schema_rejects_a_misspelt_key_naming_it() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-typo");
    for (values, key) in [
        (json!({"postgress": {"host": "db"}}), "postgress"),
        (json!({"migration": {"leaseNmae": "x"}}), "leaseNmae"),
        (
            json!({"podSecurityContext": {"runAsUsr": 1000}}),
            "runAsUsr",
        ),
    ] {
        let err = outcome(helm(api, "install", &ns, "typo", &values))
            .expect_err("a misspelt key must be rejected");
        assert!(
            err.contains("values don't meet the specifications of the schema(s)")
                && err.contains(&format!("additional properties '{key}' not allowed")),
            "{err}"
        );
        // docs/kubernetes.md quotes the engine's words for `postgress`: every line of them.
        if key == "postgress" {
            for line in Docs::load().block("helm-schema-typo").lines() {
                assert!(err.contains(line), "the engine says {line:?}: {err}");
            }
        }
    }
    let err = outcome(helm(
        api,
        "install",
        &ns,
        "typo",
        &json!({"postgres": {"port": "abc"}}),
    ))
    .expect_err("a port of \"abc\" must be rejected");
    for line in Docs::load().block("helm-schema-port").lines() {
        assert!(err.contains(line), "the engine says {line:?}: {err}");
    }
    assert!(
        objects(api, &ns, "app.kubernetes.io/instance=typo").is_empty(),
        "nothing created"
    );
}

#[test]
fn chart_refuses_waits_longer_than_the_job_deadline() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-timing");
    let values = json!({"migration": {"timeoutSeconds": 200, "lockTimeoutSeconds": 120}});
    let err = outcome(helm(api, "install", &ns, "slow", &values)).expect_err("must refuse");
    assert!(
        err.contains("migration.timeoutSeconds (200) + migration.lockTimeoutSeconds (120) must be below migration.activeDeadlineSeconds (270)"),
        "{err}"
    );
}

#[test]
fn chart_refuses_a_redis_ca_without_redis_tls() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-redis-ca");
    let values = json!({"redis": {"enabled": true, "tls": {"caSecret": "redis-ca"}}});
    let err = outcome(helm(api, "install", &ns, "ca", &values)).expect_err("must refuse");
    assert!(
        err.contains("redis.tls.caSecret is set but redis.tls.enabled is false"),
        "{err}"
    );
}

#[test]
fn quick_tier_migration_disabled_installs_no_job_and_no_migration_notes() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-nomig");
    let values = json!({"migration": {"enabled": false}, "tests": {"enabled": false},
        "postgres": {"password": "pw"}});
    let release = finish(helm(api, "install", &ns, "plain", &values), "install");
    let notes = release["info"]["notes"].as_str().unwrap_or("");
    assert!(notes.contains("Migration is disabled"), "{notes}");
    assert!(
        !notes.contains("get configmap") && !notes.contains("get lease"),
        "{notes}"
    );
    assert!(!exists(
        api,
        &format!("/apis/batch/v1/namespaces/{ns}/jobs/plain-dbinit-migrate")
    ));
    let child = helm(api, "uninstall", &ns, "plain", &values);
    finish(child, "uninstall");
    let left = objects(api, &ns, "app.kubernetes.io/instance=plain");
    assert!(left.is_empty(), "helm uninstall left {left:?}");
}

#[test]
fn quick_tier_argocd_value_swaps_helm_hooks_for_argo_hooks() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-argo");
    // Argo CD renders the chart and applies it itself; installed by Helm, Argo's annotations
    // make the hooks ordinary objects, which shows what Argo CD would read.
    let values = json!({"argocd": {"enabled": true}, "postgres": {"password": "pw"},
        "migration": {"migrationsDir": "/migrations"}});
    let release = finish(helm(api, "install", &ns, "argo", &values), "install");
    assert!(
        release["hooks"].as_array().is_none_or(|h| h.is_empty()),
        "no Helm hooks"
    );
    let job = api.wait_for(&format!(
        "/apis/batch/v1/namespaces/{ns}/jobs/argo-dbinit-migrate"
    ));
    // A `FROM dbinit` + `COPY migrations /migrations` image: the Job reads that directory.
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(env(c, "DBINIT_MIGRATIONS_DIR"), "/migrations");
    let a = &job["metadata"]["annotations"];
    assert_eq!(a["argocd.argoproj.io/hook"], "PreSync");
    assert_eq!(
        a["argocd.argoproj.io/hook-delete-policy"],
        "BeforeHookCreation,HookSucceeded"
    );
    assert_eq!(a["argocd.argoproj.io/sync-wave"], "0");
    let sa = api.wait_for(&format!(
        "/api/v1/namespaces/{ns}/serviceaccounts/argo-dbinit"
    ));
    assert_eq!(
        sa["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"],
        "-10"
    );
    let test = api.wait_for(&format!(
        "/apis/batch/v1/namespaces/{ns}/jobs/argo-dbinit-test"
    ));
    assert_eq!(
        test["metadata"]["annotations"]["argocd.argoproj.io/hook"],
        "Skip"
    );
    let lease = api.wait_for(&format!(
        "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/argo-dbinit-migrations"
    ));
    assert_eq!(
        lease["metadata"]["annotations"]["argocd.argoproj.io/hook"],
        "PostDelete"
    );
    assert!(rendered_has_no_helm_hook(&release));
}

fn rendered_has_no_helm_hook(release: &Value) -> bool {
    !driver::rendered(release).contains("helm.sh/hook")
}

#[test]
fn chart_passes_helm_lint() {
    let api = KubeApi::shared();
    // Lint renders with Helm's own default Kubernetes version (>= 1.26), so the Pod failure
    // policy branch of job.yaml is rendered and parsed here too.
    let report = finish(helm(api, "lint", "default", "lint", &json!({})), "lint");
    assert_eq!(report["Errors"], Value::Null, "{report}");
    for m in report["Messages"].as_array().into_iter().flatten() {
        // 1 is INFO (e.g. "icon is recommended"); 2 WARNING, 3 ERROR.
        assert!(m["Severity"].as_i64() < Some(2), "{m}");
    }
}
