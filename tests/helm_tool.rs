//! The chart's tool-mode values on a real kube-apiserver with the real Helm engine (quick
//! tier, as tests/helm.rs: hook containers run as local processes): `migration.command`
//! reaches the Job and the example app's init container as DBINIT_MIGRATE_COMMAND,
//! `migration.image`/`binDir` and `initContainer.image`/`binDir` put dbinit into the app's
//! image, the Job runs real dbmate under the Lease, the init container's `dbinit wait` finds
//! dbmate's head, and values that cannot work are refused with the reason.

#[path = "helm/driver.rs"]
#[allow(dead_code)] // shared with tests/helm.rs, which uses the rest of it
mod driver;

use dbinit_tests::manifest::{PodWorld, local_process, volume_dir};
use dbinit_tests::{KubeApi, Pg, run, tools};
use driver::{complete_jobs, env, finish, helm, objects, outcome, run_hook_job};
use serde_json::json;

#[test]
fn quick_tier_migration_command_runs_in_the_app_image_and_the_init_container_waits() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-tool");
    let pg = Pg::start_new();
    pg.psql(
        "postgres",
        "CREATE ROLE app LOGIN CREATEDB PASSWORD 'tool-pw'",
    );
    let secret_dir = volume_dir(&[("password".to_string(), "tool-pw".to_string())].into());
    let world = PodWorld::with_servers(&ns, pg.port, None, secret_dir.path());
    let project = tempfile::tempdir().expect("tmp");
    let m = project.path().join("db/migrations");
    std::fs::create_dir_all(&m).expect("mkdir");
    std::fs::write(
        m.join("20260101000001_items.sql"),
        "-- migrate:up\nCREATE TABLE items (id int);\n-- migrate:down\n",
    )
    .expect("write");
    let dbmate = tools::dbmate().display().to_string();
    let command = json!([
        dbmate,
        "--no-dump-schema",
        "-d",
        m.display().to_string(),
        "up"
    ]);
    let image = json!({"repository": "agentic-deals", "tag": "1.4.0"});
    let values = json!({
        "postgres": {"password": "tool-pw"},
        "redis": {"enabled": false},
        "migration": {"command": command, "image": image, "binDir": "/usr/local/bin/"},
        "initContainer": {"image": image, "binDir": "/usr/local/bin"},
        "exampleApp": {"enabled": true},
    });
    let child = helm(api, "install", &ns, "tool", &values);
    let job = run_hook_job(api, &ns, "tool-dbinit-migrate", Some("tool-dbinit"), &world);
    let release = finish(child, "install");
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "agentic-deals:1.4.0");
    assert_eq!(
        c["imagePullPolicy"], "IfNotPresent",
        "`image`'s policy when the value is empty"
    );
    assert_eq!(c["command"], json!(["/usr/local/bin/dbinit-job"]));
    let sent: serde_json::Value =
        serde_json::from_str(env(c, "DBINIT_MIGRATE_COMMAND").as_str().expect("set"))
            .expect("JSON");
    assert_eq!(sent, command);
    assert!(env(c, "DBINIT_MIGRATIONS_DIR").is_null());
    assert_eq!(
        pg.psql(
            "agentic_deals",
            "SELECT string_agg(version, ',') FROM schema_migrations"
        ),
        "20260101000001"
    );
    let status = api.wait_for(&format!(
        "/api/v1/namespaces/{ns}/configmaps/tool-dbinit-status"
    ))["data"]
        .clone();
    assert_eq!(
        (status["phase"].as_str(), status["tool"].as_str()),
        (Some("Succeeded"), Some("dbmate")),
        "{status}"
    );

    // The example app's init container: the app's image, dbinit wait, the same command.
    let app = api.wait_for(&format!(
        "/apis/apps/v1/namespaces/{ns}/deployments/tool-dbinit-app"
    ));
    let init = &app["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(init["image"], "agentic-deals:1.4.0");
    assert_eq!(init["command"], json!(["/usr/local/bin/dbinit", "wait"]));
    assert_eq!(
        env(init, "DBINIT_MIGRATE_COMMAND"),
        env(c, "DBINIT_MIGRATE_COMMAND")
    );
    let out = run(local_process(init, &world));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("dbmate is up to date"),
        "{}",
        out.stderr
    );
    driver::dry_run(api, &ns, &release);

    let child = helm(api, "uninstall", &ns, "tool", &values);
    complete_jobs(
        api,
        &ns,
        &[
            "tool-dbinit-migrate".to_string(),
            "tool-dbinit-test".to_string(),
        ],
    );
    finish(child, "uninstall");
    assert!(objects(api, &ns, "app.kubernetes.io/instance=tool").is_empty());
}

#[test]
fn chart_refuses_tool_mode_values_that_cannot_work() {
    let api = KubeApi::shared();
    let ns = api.namespace("chart-tool-bad");
    let command = json!(["alembic", "upgrade", "head"]);
    for (values, words) in [
        (
            json!({"migration": {"command": command, "files": {"V1__a.sql": "SELECT 1;"}}}),
            "migration.command runs your own migration tool: it does not go with migration.files",
        ),
        (
            json!({"migration": {"command": command}, "exampleApp": {"enabled": true}}),
            "initContainer.image must be an image that holds them",
        ),
        (
            json!({"migration": {"tool": "liquibase"}}),
            "/migration/tool",
        ),
        (
            json!({"migration": {"binDir": "usr/bin"}}),
            "/migration/binDir",
        ),
        (
            json!({"initContainer": {"imagee": {}}}),
            "additional properties 'imagee' not allowed",
        ),
    ] {
        let err = outcome(helm(api, "install", &ns, "bad", &values)).expect_err("must refuse");
        assert!(err.contains(words), "{values}: {err}");
    }
    assert!(
        objects(api, &ns, "app.kubernetes.io/instance=bad").is_empty(),
        "nothing created"
    );
}
