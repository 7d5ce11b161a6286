//! Tool mode on the real node (issue 21): an image derived from the dbinit image with the
//! static dbmate binary from npm and a project's `db/migrations` (the tool-image Dockerfile of
//! docs/keeping-your-tool.md, built by scripts/image-derive.sh), installed by the chart with
//! `migration.command` and that image for both the hook Job and the app's init container.
//! The Job runs `dbmate up` under the Lease and the lock; the app pods' `dbinit wait` (tool
//! dbmate, from the same DBINIT_MIGRATE_COMMAND) become Ready after it; an upgrade finds
//! dbmate up to date and does not start it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use dbinit_tests::node::repo_root;
use dbinit_tests::tools;
use serde_json::json;

use crate::common::{World, figure, secs, world};
use crate::image::{base_archive, image_id, run_ok};

/// The derived image's name, as the chart values give it.
const REPO: &str = "dbinit-e2e-dbmate";

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The tool-image Dockerfile (docs/keeping-your-tool.md), with dbmate and two migrations in its context, built and
/// loaded onto the node. Returns the image ID.
fn build_and_load(w: &World, dir: &Path) -> String {
    let ctx = dir.join("context");
    write(
        &ctx.join("Dockerfile"),
        &w.readme.block("tool-image"),
        0o644,
    );
    let dbmate = ctx.join("dbmate");
    std::fs::copy(tools::dbmate(), &dbmate).expect("copy dbmate");
    std::fs::set_permissions(&dbmate, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let m = ctx.join("db/migrations");
    write(
        &m.join("20260101000001_create_deals.sql"),
        "-- migrate:up\nCREATE TABLE deals (id int PRIMARY KEY, title text);\n\n-- migrate:down\nDROP TABLE deals;\n",
        0o644,
    );
    write(
        &m.join("20260101000002_seed_deal.sql"),
        "-- migrate:up\nINSERT INTO deals VALUES (1, 'first');\n\n-- migrate:down\nDELETE FROM deals;\n",
        0o644,
    );
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = dir.join("dbmate.oci.tar");
    run_ok(
        Command::new(repo_root().join("scripts/image-derive.sh"))
            .arg(&ctx)
            .arg(format!("{REPO}:1"))
            .arg(&out)
            .env("BASE_ARCHIVE", base_archive()),
        "scripts/image-derive.sh",
    );
    let mut load = Command::new(repo_root().join("scripts/image-load.sh"));
    load.env("IMAGE_ARCHIVE", &out);
    if let Some(d) = &w.node.node_dir {
        load.env("DBINIT_NODE_DIR", d);
    }
    run_ok(&mut load, "scripts/image-load.sh");
    image_id(&out)
}

#[test]
fn chart_runs_dbmate_in_a_derived_image_and_app_pods_wait_for_its_head() {
    let w = world("tool");
    w.db.expose(w.node, &w.ns.name, "postgres", "redis");
    let dir = tempfile::tempdir().expect("temp dir");
    let id = build_and_load(&w, dir.path());
    assert_ne!(
        id,
        image_id(&base_archive()),
        "a new image on top of the base"
    );

    let image = json!({"repository": REPO, "tag": "1", "pullPolicy": "Never"});
    let values = dir.path().join("values.json");
    std::fs::write(
        &values,
        json!({
            "postgres": {"host": "postgres", "user": "app"},
            "migration": {"command": ["dbmate", "--no-dump-schema", "up"], "image": image},
            "initContainer": {"image": image},
            "exampleApp": {"enabled": true, "replicas": 2}
        })
        .to_string(),
    )
    .expect("values");
    w.sh.run_ok(
        "kubectl apply -f deploy/secret.example.yaml",
        Duration::from_secs(60),
    );
    let install = format!(
        "helm install tool helm/dbinit -f {} --timeout 4m",
        values.display()
    );
    let f = w.sh.run_ok(&install, Duration::from_secs(300));
    figure(
        "helm install (dbmate in a derived image) wall time",
        secs(f.elapsed),
    );

    // The hook Job ran dbmate once, in the derived image.
    assert_eq!(
        w.db.pg.psql(
            "agentic_deals",
            "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations"
        ),
        "20260101000001,20260101000002"
    );
    assert_eq!(
        w.db.pg.psql("agentic_deals", "SELECT count(*) FROM deals"),
        "1"
    );
    assert_eq!(
        w.db.pg.psql(
            "agentic_deals",
            "SELECT to_regclass('refinery_schema_history') IS NULL"
        ),
        "t",
        "the tool owns the migrations: no dbinit SQL history"
    );
    let cm =
        w.ns.get(&["configmap", "tool-dbinit-status"])
            .expect("status ConfigMap");
    assert_eq!(cm["data"]["phase"], "Succeeded", "{cm}");
    assert_eq!(cm["data"]["tool"], "dbmate", "{cm}");
    assert_eq!(cm["data"]["commandStatus"], "exited with status 0", "{cm}");
    assert_eq!(cm["data"]["appliedVersion"], "20260101000002", "{cm}");

    // The app pods' `dbinit wait` ran in the derived image and knew dbmate's head.
    let selector = "app.kubernetes.io/instance=tool,app.kubernetes.io/component=app";
    let t = w.ns.wait_ready(selector, 2, Duration::from_secs(180));
    figure(
        "example app (dbinit wait --tool dbmate): 2 pods Ready",
        secs(t),
    );
    for p in w.ns.pods(selector) {
        let init = &p["status"]["initContainerStatuses"][0];
        assert!(
            init["imageID"].as_str().unwrap_or_default().ends_with(&id),
            "init container ran the derived image: {init}"
        );
    }
    for m in w.termination_messages(selector, "dbinit") {
        assert!(
            m.starts_with("ok: ") && m.contains("dbmate is up to date"),
            "{m}"
        );
    }

    // An upgrade with nothing new: the Job finds dbmate up to date and does not start it.
    let upgrade = format!(
        "helm upgrade tool helm/dbinit --reuse-values -f {} --timeout 4m",
        values.display()
    );
    w.sh.run_ok(&upgrade, Duration::from_secs(300));
    let cm =
        w.ns.get(&["configmap", "tool-dbinit-status"])
            .expect("status ConfigMap");
    assert_eq!(cm["data"]["phase"], "Succeeded", "{cm}");
    assert_eq!(cm["data"]["commandStatus"], "not run", "{cm}");
    w.assert_no_lock();
}
