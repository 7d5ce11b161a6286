//! A user's image of their own migrations (issue 13 item 7): README's two Dockerfile lines,
//! `FROM dbinit:dev` + `COPY migrations /migrations`, built without Docker by
//! scripts/image-derive.sh (buildah, FROM the image archive this run built), imported into the
//! node by scripts/image-load.sh, and run by deploy/job.yaml's Job with no migrations setting:
//! exactly the image's set is applied, not the one built into the binaries.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dbinit_tests::node::{JobEnd, repo_root};
use serde_json::{Value, json};

use crate::common::{World, figure, repo_yaml, secs, world};

/// The derived image's name, as the pod spec gives it.
const TAG: &str = "dbinit-e2e-derived:1";

/// The image archive this run built (as `make e2e` exports it), the derived image's base.
pub(crate) fn base_archive() -> PathBuf {
    std::env::var_os("DBINIT_IMAGE_ARCHIVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/image/dbinit.oci.tar"))
}

/// The image ID (config digest) of the single image in an OCI archive.
pub(crate) fn image_id(archive: &Path) -> String {
    let blob = |name: &str| -> Value {
        let out = Command::new("tar")
            .arg("-xOf")
            .arg(archive)
            .arg(name)
            .output()
            .expect("run tar");
        assert!(out.status.success(), "{}: no {name}", archive.display());
        serde_json::from_slice(&out.stdout).expect("OCI JSON")
    };
    let manifest = blob("index.json")["manifests"][0]["digest"]
        .as_str()
        .expect("manifest digest")
        .replace(':', "/");
    blob(&format!("blobs/{manifest}"))["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_string()
}

pub(crate) fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().expect(what);
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds README's Dockerfile with `migrations` (file name, SQL) in its context, as a user's
/// checkout has them (0755 directory, 0644 files), and loads it onto the node. Returns the
/// image ID.
fn build_and_load(w: &World, dir: &Path, migrations: &[(&str, &str)]) -> String {
    let ctx = dir.join("context");
    let mig = ctx.join("migrations");
    std::fs::create_dir_all(&mig).expect("mkdir");
    std::fs::set_permissions(&mig, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(ctx.join("Dockerfile"), w.readme.block("derived-image")).expect("Dockerfile");
    for (name, sql) in migrations {
        let f = mig.join(name);
        std::fs::write(&f, sql).expect("write migration");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let out = dir.join("derived.oci.tar");
    run_ok(
        Command::new(repo_root().join("scripts/image-derive.sh"))
            .arg(&ctx)
            .arg(TAG)
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
fn derived_image_with_its_own_migrations_applies_exactly_those() {
    let w = world("derived");
    w.db.expose(w.node, &w.ns.name, "postgres", "redis");
    w.apply_files(&["deploy/rbac.yaml", "deploy/secret.example.yaml"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let t = Instant::now();
    let id = build_and_load(
        &w,
        dir.path(),
        &[(
            "V1__only_this.sql",
            "CREATE TABLE only_this (id int);\nINSERT INTO only_this VALUES (1);\n",
        )],
    );
    figure(
        "derived image built (buildah) and loaded",
        secs(t.elapsed()),
    );
    assert_ne!(
        id,
        image_id(&base_archive()),
        "a new image on top of the base"
    );

    // deploy/job.yaml as README has users run it, with the derived image and nothing else.
    let mut j = repo_yaml("deploy/job.yaml");
    let meta = j["metadata"].as_object_mut().expect("metadata");
    meta.remove("generateName");
    meta.insert("name".into(), json!("derived"));
    let c = &mut j["spec"]["template"]["spec"]["containers"][0];
    assert!(
        !c["env"].to_string().contains("DBINIT_MIGRATIONS_DIR"),
        "no migrations setting: the image's /migrations must be found by itself"
    );
    c["image"] = json!(TAG);
    c["imagePullPolicy"] = json!("Never");
    w.ns.apply(&j);
    let (end, took) = w.ns.wait_job("derived", Duration::from_secs(120));
    assert_eq!(end, JobEnd::Complete);
    figure("derived image's migration Job", secs(took));

    w.assert_applied_once("agentic_deals", &[1]);
    assert_eq!(
        w.db.pg.psql(
            "agentic_deals",
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "dbinit_seed_history,only_this,refinery_schema_history",
        "exactly the image's migration ran, none of the built-in set"
    );
    assert_eq!(
        w.db.pg
            .psql("agentic_deals", "SELECT count(*) FROM dbinit_seed_history"),
        "0",
        "the built-in seeds did not run"
    );
    assert_eq!(
        w.db.pg
            .psql("agentic_deals", "SELECT count(*) FROM only_this"),
        "1"
    );
    let pods = w.ns.pods("job-name=derived");
    assert!(!pods.is_empty(), "the Job's pod");
    for p in &pods {
        let ran = p["status"]["containerStatuses"][0]["imageID"]
            .as_str()
            .unwrap_or_default();
        assert!(ran.ends_with(&id), "ran {ran}, not the derived image {id}");
    }
    let msgs = w.termination_messages("job-name=derived", "dbinit-job");
    assert!(
        msgs.iter().any(|m| m.contains("V1__only_this")),
        "termination message names the image's migration: {msgs:?}"
    );
    let logs = w.ns.ok(&["logs", "job/derived"]);
    assert!(
        logs.contains("migrations from /migrations (image directory)"),
        "README's log line: {logs}"
    );
    w.assert_no_lock();
}
