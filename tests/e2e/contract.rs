//! Experiment 4 again with a contract step (issue 23's compatibility floor): V9 declares
//! `-- dbinit:compatible-from=9` and drops a column the older release reads. The rollback that
//! succeeds after an expand step (rollback.rs) fails fast here, at the older release's
//! pre-rollback Job, with the floor's message (exit 13), and the older release's pods, when
//! they start, never get past their `dbinit wait`.

use std::time::Duration;

use dbinit_tests::node::deadline_loop;
use serde_json::Value;

use crate::common::{figure, secs, world};
use crate::rollback::{APP, helm, install_v8, newer_release_that_fails_to_roll_out, upto};
use crate::watch::Watch;

/// The older release's `dbinit wait`, `run` and status after the contract step of
/// [`a_rollback_past_a_contract_step_fails_fast_with_the_floor_message`].
const FLOOR_MESSAGE: &str = "database requires a release with migrations >= V9 \
                             (V9__drop_legacy_price is incompatible with this image, which ends at V8)";

/// Experiment 4 again, with a contract step: the rollback that succeeded with an expand step
/// fails fast, at the older release's pre-rollback Job, with the floor's message; the older
/// release's pods, restarted, never get past their `dbinit wait`.
#[test]
fn a_rollback_past_a_contract_step_fails_fast_with_the_floor_message() {
    let w = world("contract");
    install_v8(&w);
    let pods = Watch::start(&w, "pods");
    let v9 = (
        "V9__drop_legacy_price.sql",
        "-- dbinit:compatible-from=9\nALTER TABLE e2e_prices DROP COLUMN legacy_price;\n",
    );
    let f = helm(
        &w,
        "upgrade",
        &newer_release_that_fails_to_roll_out(v9),
        "--atomic --wait --timeout 45s",
    );
    figure(
        "helm upgrade (contract V9) --atomic -> rollback refused, wall time",
        secs(f.elapsed),
    );
    assert_ne!(f.code, Some(0), "{}{}", f.stdout, f.stderr);
    assert!(
        f.stderr.contains("error occurred while rolling back")
            && f.stderr.contains("dbinit-migrate"),
        "Helm's rollback failed at the older release's Job: {}",
        f.stderr
    );
    let events = pods.stop();
    let refused: Vec<String> = events
        .iter()
        .filter_map(|p| {
            p["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
                .as_str()
                .map(str::to_string)
        })
        .filter(|m| m.contains("exit 13"))
        .collect();
    assert!(
        refused.iter().any(|m| m.contains(FLOOR_MESSAGE)),
        "the older release's pre-rollback Job refused with the floor's message: {refused:?}"
    );
    w.assert_applied_once("agentic_deals", &upto(9));

    // An older release's pod that starts now never gets past its init container.
    w.ns.ok(&[
        "delete",
        "pods",
        "-l",
        APP,
        "--field-selector=status.phase=Running",
        "--wait=false",
    ]);
    let pod = deadline_loop(
        "an older release's pod refused",
        Duration::from_secs(180),
        || {
            w.ns.pods(APP)
                .into_iter()
                .find(|p| {
                    let s = &p["status"]["initContainerStatuses"][0];
                    [&s["state"]["terminated"], &s["lastState"]["terminated"]]
                        .iter()
                        .any(|t| t["exitCode"] == 13)
                })
                .ok_or_else(|| "no init container has exited 13 yet".to_string())
        },
    );
    let s = &pod["status"]["initContainerStatuses"][0];
    let msg = [&s["state"]["terminated"], &s["lastState"]["terminated"]]
        .iter()
        .find_map(|t| t["message"].as_str().map(str::to_string))
        .unwrap_or_default();
    assert!(
        msg.contains(FLOOR_MESSAGE),
        "`dbinit wait` of the older release: {msg}"
    );
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["running"],
        Value::Null,
        "its app container never started"
    );
}
