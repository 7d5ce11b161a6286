//! Taking the Lease: create it, or take a free or expired one with `replace` carrying the
//! resourceVersion read (409: somebody else won); while another replica holds it, watch it.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Duration;

use dbinit_core::retry::{Backoff, Pace, PollError, Step, Tick, poll};
use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{PostParams, WatchEvent, WatchParams};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Held, LeaseError, LeaseTiming, Observation, call, now_micro};

/// A Lease lock on one named Lease.
#[derive(Clone)]
pub struct LeaseLock {
    pub(super) api: Api<Lease>,
    pub(super) name: String,
    pub(super) identity: String,
    pub(super) timing: LeaseTiming,
    /// Labels the Lease gets when we create it.
    pub(super) labels: BTreeMap<String, String>,
}

/// What a waiter remembers between looks.
#[derive(Default)]
struct Seen {
    /// The last observation, so expiry is judged on our clock across looks.
    last: Option<Observation>,
    /// Set when the last look found the Lease held: watch it before the next read.
    watch: Option<Observation>,
}

/// What a waiter is waiting for.
enum Awaited {
    /// The holder to release or expire (`None`: a peer created the Lease a moment ago).
    Held(Option<String>),
    /// The API to answer again.
    Failed(LeaseError),
}

impl LeaseLock {
    /// A lock on the Lease `name` in `api`'s namespace, for this `identity`.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, timing: LeaseTiming) -> Self {
        Self {
            api,
            name: name.to_string(),
            identity: identity.to_string(),
            timing,
            labels: BTreeMap::new(),
        }
    }

    /// Adds labels to the Lease when this lock creates it (an existing Lease keeps its own).
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }

    fn spec_for_us(&self, transitions: i32, acquire_time: Option<MicroTime>) -> LeaseSpec {
        let now = now_micro();
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.timing.lease_duration.as_secs().max(1) as i32),
            acquire_time: Some(acquire_time.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Takes the lease, waiting (watching it) while another replica holds it, up to `timeout`.
    /// `on_wait` is told once, with the holder, when the Lease turns out to be held.
    pub async fn acquire(
        &self,
        timeout: Duration,
        on_wait: &(dyn Fn(&str) + Sync),
    ) -> Result<Held, LeaseError> {
        let t = self.timing;
        let pace = Pace {
            deadline: Instant::now() + timeout,
            // Pause after a failed API call; a held Lease is watched, not polled.
            backoff: Backoff {
                initial: t.retry_period,
                max: t.retry_period,
            },
            report_every: Duration::from_secs(5),
        };
        let seen = &Cell::new(Seen::default());
        let step = move |tick: Tick| async move {
            let mut s = seen.take();
            let step = self.look(&mut s, tick.left).await;
            seen.set(s);
            step
        };
        let mut told = false;
        let r = poll(pace, step, |p| match p.awaited {
            Awaited::Held(holder) => {
                if !std::mem::replace(&mut told, true) {
                    on_wait(&format!(
                        "the Lease {}, held by {}",
                        self.name,
                        holder.as_deref().unwrap_or("another replica")
                    ));
                }
                info!(
                lease = %self.name,
                holder = holder.as_deref().unwrap_or(""),
                "lease is held by another replica; waiting"
                )
            }
            Awaited::Failed(e) => warn!(error = %e, "lease call failed, retrying"),
        })
        .await;
        r.map_err(|e| match e {
            PollError::Failed(e) => e,
            PollError::Deadline { last, waited, .. } => LeaseError::AcquireTimeout {
                name: self.name.clone(),
                waited,
                holder: match last {
                    Awaited::Held(h) => h,
                    Awaited::Failed(_) => None,
                },
            },
        })
    }

    /// One look: after a look that found the Lease held, first wait for it to change (or
    /// expire, or the time `left` to pass); then read it and take it if it is free, expired
    /// or ours, or create it if it does not exist.
    async fn look(&self, seen: &mut Seen, left: Duration) -> Step<Held, LeaseError, Awaited> {
        if let Some(obs) = seen.watch.take() {
            let until = obs.expires_at().min(Instant::now() + left);
            self.watch_until(&obs, until).await;
        }
        let t = self.timing;
        let current = match call(
            t.api_timeout,
            "read",
            &self.name,
            self.api.get_opt(&self.name),
        )
        .await
        {
            Ok(l) => l,
            Err(e @ LeaseError::Forbidden(_)) => return Step::Fail(e),
            Err(e) => return Step::Wait(Awaited::Failed(e)),
        };
        let Some(lease) = current else {
            return match self.create().await {
                Ok(held) => Step::Done(held),
                Err(e @ LeaseError::Forbidden(_)) => Step::Fail(e),
                // 409 AlreadyExists: a peer created it first; read it.
                Err(e) if e.is_conflict() => Step::Again(Awaited::Held(None)),
                Err(e) => Step::Wait(Awaited::Failed(e)),
            };
        };
        let obs =
            Observation::observe(seen.last.as_ref(), &lease, Instant::now(), t.lease_duration);
        seen.last = Some(obs.clone());
        if obs.holder.as_deref() == Some(self.identity.as_str()) || obs.is_takeable(Instant::now())
        {
            return match self.take(&lease, &obs).await {
                Ok(held) => Step::Done(held),
                Err(e @ LeaseError::Forbidden(_)) => Step::Fail(e),
                Err(e) if e.is_conflict() => {
                    debug!("another replica took the lease first");
                    Step::Again(Awaited::Held(obs.holder))
                }
                Err(e) => Step::Wait(Awaited::Failed(e)),
            };
        }
        let holder = obs.holder.clone();
        seen.watch = Some(obs);
        Step::Again(Awaited::Held(holder))
    }

    /// Blocks until the Lease changes or `until`, whichever is first.
    async fn watch_until(&self, obs: &Observation, until: Instant) {
        let Some(rv) = obs.resource_version.clone() else {
            tokio::time::sleep_until(until).await;
            return;
        };
        let secs = until
            .saturating_duration_since(Instant::now())
            .as_secs()
            .clamp(1, 290) as u32;
        let wp = WatchParams::default()
            .fields(&format!("metadata.name={}", self.name))
            .timeout(secs);
        let watch = async {
            match self.api.watch(&wp, &rv).await {
                Ok(stream) => {
                    let mut stream = std::pin::pin!(stream);
                    while let Some(ev) = stream.next().await {
                        match ev {
                            Ok(WatchEvent::Bookmark(_)) => continue,
                            Ok(_) => return,
                            Err(e) => {
                                debug!(error = %e, "lease watch failed");
                                break;
                            }
                        }
                    }
                    // The watch ended early (timeout, error): poll after a short pause.
                    tokio::time::sleep(self.timing.retry_period).await;
                }
                Err(e) => {
                    debug!(error = %e, "lease watch failed");
                    tokio::time::sleep(self.timing.retry_period).await;
                }
            }
        };
        let _ = tokio::time::timeout_at(until, watch).await;
    }

    async fn create(&self) -> Result<Held, LeaseError> {
        let lease = Lease {
            metadata: crate::managed_metadata(&self.name, &self.labels),
            spec: Some(self.spec_for_us(1, None)),
        };
        let created = call(
            self.timing.api_timeout,
            "create",
            &self.name,
            self.api.create(&PostParams::default(), &lease),
        )
        .await?;
        Ok(self.held(created))
    }

    async fn take(&self, lease: &Lease, obs: &Observation) -> Result<Held, LeaseError> {
        let prev = lease.spec.clone().unwrap_or_default();
        let transitions = prev.lease_transitions.unwrap_or(0);
        let ours = obs.holder.as_deref() == Some(self.identity.as_str());
        let mut next = lease.clone();
        next.spec = Some(self.spec_for_us(
            if ours { transitions } else { transitions + 1 },
            if ours { prev.acquire_time } else { None },
        ));
        // `replace` carries metadata.resourceVersion: if anyone wrote since we read, 409.
        let replaced = call(
            self.timing.api_timeout,
            "take over",
            &self.name,
            self.api.replace(&self.name, &PostParams::default(), &next),
        )
        .await?;
        if let Some(old) = obs.holder.as_deref().filter(|_| !ours) {
            info!(lease = %self.name, previous = old, "took over an expired lease");
        }
        Ok(self.held(replaced))
    }

    fn held(&self, lease: Lease) -> Held {
        let epoch = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_transitions)
            .unwrap_or(0);
        info!(lease = %self.name, identity = %self.identity, epoch, "acquired the lease");
        Held::new(self.clone(), lease, epoch)
    }
}
