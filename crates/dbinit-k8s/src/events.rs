//! Kubernetes Events (`core/v1`) for what a run does, on state changes only: `Started`,
//! `WaitingForLock` (once per wait, naming the holder), `Applied`, `Failed` (file, SQLSTATE,
//! exit code). `kubectl describe pod` and `kubectl get events` show them beside the
//! scheduler's and kubelet's, so an operator sees why a hook is slow without reading logs.
//!
//! Events regard the Job's Pod (`POD_NAME` from the Downward API), or the Lease when not in
//! a pod. They are posted in order by one task fed through a channel, so a step of the run
//! never waits for the API; a failed post is logged and never fails the run, and a 403
//! (an older Role without `create` on `events`) stops further posts after one warning.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// The component name Events carry.
pub const COMPONENT: &str = "dbinit-job";

/// The longest message an Event keeps here (the API allows more; a line is enough).
const MAX_MESSAGE: usize = 1024;

/// One state change worth an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Milestone {
    /// The run began.
    Started(String),
    /// The run waits behind someone: the Lease, the migration lock, table locks.
    WaitingForLock(String),
    /// The run finished: what it applied and the version reached.
    Applied(String),
    /// The run failed: file, SQLSTATE and exit code when known.
    Failed(String),
}

impl Milestone {
    fn reason_type_message(&self) -> (&'static str, &'static str, &str) {
        match self {
            Self::Started(m) => ("Started", "Normal", m),
            Self::WaitingForLock(m) => ("WaitingForLock", "Normal", m),
            Self::Applied(m) => ("Applied", "Normal", m),
            Self::Failed(m) => ("Failed", "Warning", m),
        }
    }
}

/// What the Events are about.
#[derive(Debug, Clone)]
pub struct Regarding {
    /// `Pod` or `Lease`.
    pub kind: &'static str,
    /// Its API version.
    pub api_version: &'static str,
    /// Its name.
    pub name: String,
    /// Its UID, when known (`kubectl describe` matches on it).
    pub uid: Option<String>,
}

/// Sends milestones to the task that posts them.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Milestone>,
}

impl Recorder {
    /// Records `m` (posted shortly, in order).
    pub fn record(&self, m: Milestone) {
        let _ = self.tx.send(m);
    }
}

/// Starts the posting task for Events in `api`'s namespace about `regarding`, posted as
/// `instance`, each call limited to `timeout`. Drop every [`Recorder`] and await the handle
/// to flush what is queued.
pub fn start(
    api: Api<Event>,
    namespace: &str,
    regarding: Regarding,
    instance: &str,
    timeout: Duration,
) -> (Recorder, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Milestone>();
    let namespace = namespace.to_string();
    let instance = instance.to_string();
    let task = tokio::spawn(async move {
        let mut disabled = false;
        let mut seq = 0u32;
        while let Some(m) = rx.recv().await {
            if disabled {
                continue;
            }
            seq += 1;
            let ev = event(&namespace, &regarding, &instance, &m, seq);
            match tokio::time::timeout(timeout, api.create(&PostParams::default(), &ev)).await {
                Ok(Ok(_)) => debug!(reason = ?m, "posted event"),
                Ok(Err(kube::Error::Api(s))) if s.is_forbidden() => {
                    warn!(error = %s.message, "not allowed to create Events (add `create` on `events` to the Role); continuing without them");
                    disabled = true;
                }
                Ok(Err(e)) => warn!(error = %e, "could not post an Event; continuing"),
                Err(_) => warn!(?timeout, "posting an Event timed out; continuing"),
            }
        }
    });
    (Recorder { tx }, task)
}

fn event(namespace: &str, regarding: &Regarding, instance: &str, m: &Milestone, seq: u32) -> Event {
    let (reason, kind, message) = m.reason_type_message();
    let now = Timestamp::now();
    Event {
        metadata: ObjectMeta {
            // As client-go names them: the object, then a unique suffix.
            name: Some(format!(
                "{}.{:x}{seq:02x}",
                regarding.name,
                now.as_nanosecond()
            )),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "dbinit".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(regarding.api_version.to_string()),
            kind: Some(regarding.kind.to_string()),
            name: Some(regarding.name.clone()),
            namespace: Some(namespace.to_string()),
            uid: regarding.uid.clone(),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_string()),
        message: Some(dbinit_core::text::elide_middle(message, MAX_MESSAGE).into_owned()),
        type_: Some(kind.to_string()),
        source: Some(EventSource {
            component: Some(COMPONENT.to_string()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.to_string()),
        reporting_instance: Some(instance.to_string()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Event::default()
    }
}
