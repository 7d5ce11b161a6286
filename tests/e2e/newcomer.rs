//! A newcomer's path, as written: README's five-minute path points to docs/getting-started.md,
//! whose section on the project's one-node cluster is run block by block — `make cluster-up`
//! and `make image` on this machine (the node and the image the run already has: both are
//! idempotent, and the image is built and loaded again as a reader would), then the chart
//! install, the status ConfigMap, the example app's rollout and its init container's log, and
//! `helm test`, in the test's namespace, where PostgreSQL and Redis are reached as `postgres`
//! and `redis`, as the page says.

use std::time::Duration;

use crate::common::{builtin_versions, figure, secs, world};

#[test]
fn newcomer_path_readme_to_getting_started_to_the_chart_install() {
    let mut w = world("newcomer");

    // README -> getting started.
    let readme = w.readme.page("README.md");
    assert!(
        readme
            .links()
            .iter()
            .any(|l| l.parts().0 == "docs/getting-started.md"),
        "README's five-minute path links docs/getting-started.md"
    );

    // Getting started -> the project's node: on this machine, as root, outside the node.
    match w.node.node_dir.clone() {
        Some(dir) => {
            w.sh.set("DBINIT_NODE_DIR", &dir.display().to_string());
            for cmd in w.readme.commands("node-up") {
                let f = w.sh.run_here(&cmd, Duration::from_secs(1800));
                figure(
                    &format!("getting started: `{}`", cmd.trim()),
                    secs(f.elapsed),
                );
            }
        }
        None => println!(
            "not the project's one-node cluster (KUBECONFIG given): the node-up block is for that node only"
        ),
    }

    // -> the chart install, with the database the page says the pods reach.
    w.db.expose(w.node, &w.ns.name, "postgres", "redis");
    for cmd in w.readme.commands("first-chart") {
        let f = w.sh.run_ok(&cmd, Duration::from_secs(300));
        if cmd.contains("configmap") && cmd.contains("-o yaml") {
            let last = builtin_versions().last().copied().unwrap_or_default();
            assert!(
                f.stdout.contains("phase: Succeeded")
                    && f.stdout.contains(&format!("appliedVersion: \"{last}\"")),
                "the status ConfigMap shows the run as the page says: {}",
                f.stdout
            );
        }
        if cmd.contains("kubectl logs") {
            assert!(
                f.stdout.contains("version") || f.stderr.contains("version"),
                "the init container's log says what it found: {}{}",
                f.stdout,
                f.stderr
            );
        }
        if cmd.contains("helm install") {
            figure("getting started: helm install wall time", secs(f.elapsed));
        }
    }
    w.assert_applied_once("agentic_deals", &builtin_versions());
    w.assert_built_image(
        "app.kubernetes.io/instance=deals,app.kubernetes.io/component=app",
        "dbinit",
    );
}
