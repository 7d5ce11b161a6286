//! dbinit-k8s: the Kubernetes side of `dbinit-job` — a Lease lock with fencing
//! ([`lease::LeaseLock`]), the run record ([`record::RunRecord`]) kept in the status
//! ConfigMap ([`status::StatusWriter`]), the job's own options ([`config`]) and the job flow
//! that wraps dbinit-core's create/migrate/seed run in them ([`job::JobCli`]).

pub mod config;
pub mod events;
pub mod job;
pub mod lease;
pub mod record;
pub mod status;

pub use job::JobCli;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Metadata of an object dbinit creates: its name, the operator's `DBINIT_LABELS` and the
/// `managed-by` label, so `kubectl get lease,cm -l app.kubernetes.io/managed-by=dbinit` (or
/// `-l app.kubernetes.io/instance=<release>`) finds them.
pub(crate) fn managed_metadata(name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    let mut all = labels.clone();
    all.insert(
        "app.kubernetes.io/managed-by".to_string(),
        "dbinit".to_string(),
    );
    ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(all),
        ..ObjectMeta::default()
    }
}
