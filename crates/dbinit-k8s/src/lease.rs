//! A `coordination.k8s.io/v1` Lease lock with fencing, modelled on client-go's leader election.
//!
//! - Acquire: create the Lease (409 AlreadyExists: read it), or take a free or expired one with
//!   `replace` carrying the resourceVersion read (409 Conflict: somebody else won). Never a
//!   blind patch.
//! - Expiry is judged by *observed* time: a holder is expired when its (holder, renewTime,
//!   resourceVersion) has not changed for leaseDurationSeconds on our monotonic clock, so a
//!   holder whose clock is minutes off is judged correctly.
//! - `leaseTransitions` after our acquire is our epoch, a fencing token.
//! - Renew every duration/3 with a timeout on every API call; stop leading at the last
//!   successful renew + renew deadline, which is shorter than the lease duration, so we stop
//!   before anyone else may consider the lease expired.
//! - Release clears holderIdentity, so a waiter (watching the Lease) goes at once.

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{PostParams, WatchEvent, WatchParams};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Timing of the lock, as client-go's LeaderElectionConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a holder's lease lasts without renewal (written to the Lease).
    pub lease_duration: Duration,
    /// The holder gives up at last successful renew + this; must be < `lease_duration`.
    pub renew_deadline: Duration,
    /// Wait between failed API calls.
    pub retry_period: Duration,
    /// Limit of every API call.
    pub api_timeout: Duration,
}

impl LeaseTiming {
    /// Checks the relations client-go also insists on.
    pub fn validate(&self) -> Result<(), String> {
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "the renew deadline ({:?}) must be shorter than the lease duration ({:?}), or a lost holder could still be working when another replica takes over",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.lease_duration < Duration::from_secs(1) {
            return Err(
                "the lease duration must be at least 1s (Kubernetes counts whole seconds)".into(),
            );
        }
        if self.retry_period.is_zero() || self.api_timeout.is_zero() {
            return Err("the retry period and API timeout must be positive".into());
        }
        Ok(())
    }

    /// How often the holder renews.
    pub fn renew_interval(&self) -> Duration {
        self.lease_duration / 3
    }
}

/// Errors of the lock. Callers map them to exit codes: forbidden is 4, the rest of the lock
/// failures 7, the API being unusable 1.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// RBAC refused a call; the message names the verb and resource.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The lease stayed held by another replica until the acquire timeout.
    #[error("timed out after {:.1}s waiting for the lease {name}{}", waited.as_secs_f64(), holder.as_ref().map(|h| format!(", held by {h}")).unwrap_or_default())]
    AcquireTimeout {
        /// Lease name.
        name: String,
        /// How long was waited.
        waited: Duration,
        /// Holder at the end.
        holder: Option<String>,
    },
    /// We held the lease and lost it (not renewed in time, or taken over).
    #[error("lost the lease {name}: {reason}")]
    Lost {
        /// Lease name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Another API failure.
    #[error("failed to {action} the lease {name}: {reason}")]
    Api {
        /// What we were doing.
        action: &'static str,
        /// Lease name.
        name: String,
        /// The API's words.
        reason: String,
        /// The HTTP status when the apiserver answered (409: somebody else wrote first).
        code: Option<u16>,
    },
}

impl LeaseError {
    /// A 409 from the apiserver: AlreadyExists on create, Conflict on a stale resourceVersion.
    fn is_conflict(&self) -> bool {
        matches!(
            self,
            LeaseError::Api {
                code: Some(409),
                ..
            }
        )
    }
}

/// What we last saw of the Lease, and since when on our monotonic clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Holder identity; `None` when free (released or never held).
    pub holder: Option<String>,
    /// Holder's renewTime, compared only for change, never against our clock.
    pub renew_time: Option<Timestamp>,
    /// resourceVersion of the object.
    pub resource_version: Option<String>,
    /// The holder's leaseDurationSeconds.
    pub lease_duration: Duration,
    /// When we first saw this exact (holder, renewTime, resourceVersion).
    pub since: Instant,
}

impl Observation {
    /// Records `lease` as seen at `now`. `since` moves only if the record changed: a holder
    /// that keeps renewing keeps moving it, a dead one does not.
    pub fn observe(
        prev: Option<&Observation>,
        lease: &Lease,
        now: Instant,
        default_duration: Duration,
    ) -> Observation {
        let spec = lease.spec.as_ref();
        let holder = spec
            .and_then(|s| s.holder_identity.clone())
            .filter(|h| !h.is_empty());
        let renew_time = spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0);
        let lease_duration = spec
            .and_then(|s| s.lease_duration_seconds)
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s as u64))
            .unwrap_or(default_duration);
        let resource_version = lease.metadata.resource_version.clone();
        let since = match prev {
            Some(p)
                if p.holder == holder
                    && p.renew_time == renew_time
                    && p.resource_version == resource_version =>
            {
                p.since
            }
            _ => now,
        };
        Observation {
            holder,
            renew_time,
            resource_version,
            lease_duration,
            since,
        }
    }

    /// Nobody holds it.
    pub fn is_free(&self) -> bool {
        self.holder.is_none()
    }

    /// When, on our clock, the holder counts as gone if nothing changes.
    pub fn expires_at(&self) -> Instant {
        self.since + self.lease_duration
    }

    /// Free, or held by a holder that has not renewed for a whole lease duration.
    pub fn is_takeable(&self, now: Instant) -> bool {
        self.is_free() || now >= self.expires_at()
    }
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn api_err(action: &'static str, name: &str, e: kube::Error) -> LeaseError {
    match &e {
        kube::Error::Api(s) if s.is_forbidden() => LeaseError::Forbidden(s.message.clone()),
        kube::Error::Api(s) => LeaseError::Api {
            action,
            name: name.to_string(),
            reason: format!("{} ({})", s.message, s.code),
            code: Some(s.code),
        },
        other => LeaseError::Api {
            action,
            name: name.to_string(),
            reason: other.to_string(),
            code: None,
        },
    }
}

/// Runs an API call with a timeout; a timeout is an API error like any other.
async fn call<T>(
    timeout: Duration,
    action: &'static str,
    name: &str,
    f: impl std::future::Future<Output = kube::Result<T>>,
) -> Result<T, LeaseError> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r.map_err(|e| api_err(action, name, e)),
        Err(_) => Err(LeaseError::Api {
            action,
            name: name.to_string(),
            reason: format!("no answer within {timeout:?}"),
            code: None,
        }),
    }
}

/// A Lease lock on one named Lease.
#[derive(Clone)]
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaseTiming,
}

/// The lock, held. Keep it renewed with [`Held::keep`]; give it back with [`Held::release`].
pub struct Held {
    lock: LeaseLock,
    lease: Lease,
    last_renew: Instant,
    /// Our fencing token: leaseTransitions after our acquire.
    pub epoch: i32,
}

impl LeaseLock {
    /// A lock on the Lease `name` in `api`'s namespace, for this `identity`.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, timing: LeaseTiming) -> Self {
        Self {
            api,
            name: name.to_string(),
            identity: identity.to_string(),
            timing,
        }
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
    pub async fn acquire(&self, timeout: Duration) -> Result<Held, LeaseError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let t = self.timing;
        let mut seen: Option<Observation> = None;
        let mut next_report = started;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(LeaseError::AcquireTimeout {
                    name: self.name.clone(),
                    waited: started.elapsed(),
                    holder: seen.and_then(|o| o.holder),
                });
            }
            let current = match call(
                t.api_timeout,
                "read",
                &self.name,
                self.api.get_opt(&self.name),
            )
            .await
            {
                Ok(l) => l,
                Err(e @ LeaseError::Forbidden(_)) => return Err(e),
                Err(e) => {
                    warn!(error = %e, "lease read failed, retrying");
                    tokio::time::sleep(t.retry_period.min(deadline - now)).await;
                    continue;
                }
            };
            let Some(lease) = current else {
                match self.create().await {
                    Ok(held) => return Ok(held),
                    Err(e @ LeaseError::Forbidden(_)) => return Err(e),
                    // 409 AlreadyExists: a peer created it first; read it.
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => {
                        warn!(error = %e, "lease create failed, retrying");
                        tokio::time::sleep(t.retry_period.min(deadline - now)).await;
                        continue;
                    }
                }
            };
            let obs = Observation::observe(seen.as_ref(), &lease, Instant::now(), t.lease_duration);
            if obs.holder.as_deref() == Some(self.identity.as_str())
                || obs.is_takeable(Instant::now())
            {
                match self.take(&lease, &obs).await {
                    Ok(held) => return Ok(held),
                    Err(e @ LeaseError::Forbidden(_)) => return Err(e),
                    Err(e) if e.is_conflict() => {
                        debug!("another replica took the lease first");
                        seen = Some(obs);
                        continue;
                    }
                    Err(e) => {
                        warn!(error = %e, "lease takeover failed, retrying");
                        seen = Some(obs);
                        tokio::time::sleep(t.retry_period.min(deadline - now)).await;
                        continue;
                    }
                }
            }
            if Instant::now() >= next_report {
                info!(
                    lease = %self.name,
                    holder = obs.holder.as_deref().unwrap_or(""),
                    "lease is held by another replica; waiting"
                );
                next_report = Instant::now() + Duration::from_secs(5);
            }
            let until = obs.expires_at().min(deadline);
            self.watch_until(&obs, until).await;
            seen = Some(obs);
        }
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
            metadata: crate::managed_metadata(&self.name),
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
        Held {
            lock: self.clone(),
            lease,
            last_renew: Instant::now(),
            epoch,
        }
    }
}

impl Held {
    /// Renews once. A 409 means someone wrote the Lease: if it is still ours (only metadata
    /// changed), retry with the new version; otherwise it is lost.
    async fn renew_once(&mut self) -> Result<(), LeaseError> {
        let l = &self.lock;
        let mut next = self.lease.clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.renew_time = Some(now_micro());
        }
        match call(
            l.timing.api_timeout,
            "renew",
            &l.name,
            l.api.replace(&l.name, &PostParams::default(), &next),
        )
        .await
        {
            Ok(lease) => {
                self.lease = lease;
                self.last_renew = Instant::now();
                Ok(())
            }
            Err(e) if e.is_conflict() => {
                let current = call(
                    l.timing.api_timeout,
                    "read",
                    &l.name,
                    l.api.get_opt(&l.name),
                )
                .await?;
                let holder = current
                    .as_ref()
                    .and_then(|c| c.spec.as_ref())
                    .and_then(|s| s.holder_identity.clone());
                match (current, holder) {
                    (Some(c), Some(h)) if h == l.identity => {
                        self.lease = c;
                        Err(e)
                    }
                    (_, h) => Err(LeaseError::Lost {
                        name: l.name.clone(),
                        reason: format!(
                            "the lease now names {} as its holder",
                            h.unwrap_or_else(|| "nobody".into())
                        ),
                    }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Keeps the lease renewed; returns only when it is lost: taken over, or not renewed
    /// before last success + renew deadline. Run it beside the protected work and cancel the
    /// work when it returns.
    pub async fn keep(&mut self) -> LeaseError {
        let t = self.lock.timing;
        let mut wait = t.renew_interval();
        loop {
            tokio::time::sleep(wait).await;
            let deadline = self.last_renew + t.renew_deadline;
            let result = match tokio::time::timeout_at(deadline, self.renew_once()).await {
                Ok(r) => r,
                Err(_) => Err(LeaseError::Api {
                    action: "renew",
                    name: self.lock.name.clone(),
                    reason: "renew deadline passed".into(),
                    code: None,
                }),
            };
            match result {
                Ok(()) => wait = t.renew_interval(),
                Err(e @ LeaseError::Lost { .. }) => return e,
                Err(e) => {
                    if Instant::now() >= deadline {
                        return LeaseError::Lost {
                            name: self.lock.name.clone(),
                            reason: format!(
                                "not renewed within the renew deadline of {:?} (last error: {e})",
                                t.renew_deadline
                            ),
                        };
                    }
                    warn!(error = %e, "lease renewal failed, retrying");
                    wait = t.retry_period.min(deadline - Instant::now());
                }
            }
        }
    }

    /// Gives the lease back (holderIdentity cleared) so a waiting replica goes at once.
    /// Failure only delays the next holder until expiry; it is logged, not returned.
    pub async fn release(self) {
        let l = &self.lock;
        let mut next = self.lease.clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.holder_identity = None;
            spec.renew_time = Some(now_micro());
        }
        match call(
            l.timing.api_timeout,
            "release",
            &l.name,
            l.api.replace(&l.name, &PostParams::default(), &next),
        )
        .await
        {
            Ok(_) => info!(lease = %l.name, "released the lease"),
            Err(e) => warn!(error = %e, "lease release failed; it expires on its own"),
        }
    }

    /// The identity holding the lease.
    pub fn identity(&self) -> &str {
        &self.lock.identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn lease(holder: Option<&str>, renew: Timestamp, rv: &str, secs: i32) -> Lease {
        Lease {
            metadata: ObjectMeta {
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                renew_time: Some(MicroTime(renew)),
                lease_duration_seconds: Some(secs),
                ..LeaseSpec::default()
            }),
        }
    }

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn free_lease_is_takeable_at_once() {
        let now = Instant::now();
        let o = Observation::observe(None, &lease(None, Timestamp::now(), "1", 15), now, D);
        assert!(o.is_free() && o.is_takeable(now));
        let o = Observation::observe(None, &lease(Some(""), Timestamp::now(), "1", 15), now, D);
        assert!(o.is_free(), "an empty holder is free");
    }

    #[test]
    fn held_lease_expires_after_duration_of_no_change_on_our_clock() {
        let t0 = Instant::now();
        let renew = Timestamp::now();
        let o = Observation::observe(None, &lease(Some("a"), renew, "1", 15), t0, D);
        assert!(!o.is_takeable(t0 + Duration::from_secs(14)));
        // Seeing the same record again does not reset the clock...
        let o2 = Observation::observe(
            Some(&o),
            &lease(Some("a"), renew, "1", 15),
            t0 + Duration::from_secs(10),
            D,
        );
        assert_eq!(o2.since, t0);
        assert!(o2.is_takeable(t0 + Duration::from_secs(15)));
        // ...a renewal does.
        let later = renew
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(5))
            .expect("ts");
        let o3 = Observation::observe(
            Some(&o2),
            &lease(Some("a"), later, "2", 15),
            t0 + Duration::from_secs(10),
            D,
        );
        assert_eq!(o3.since, t0 + Duration::from_secs(10));
        assert!(!o3.is_takeable(t0 + Duration::from_secs(20)));
        assert!(o3.is_takeable(t0 + Duration::from_secs(25)));
    }

    #[test]
    fn holder_clock_skew_does_not_matter() {
        let t0 = Instant::now();
        let ten_min = k8s_openapi::jiff::SignedDuration::from_secs(600);
        for renew in [
            Timestamp::now().checked_add(ten_min).expect("ahead"),
            Timestamp::now().checked_sub(ten_min).expect("behind"),
        ] {
            // A renewTime minutes in the future or the past is not compared with our clock:
            // the holder gets exactly one lease duration from when we saw it.
            let o = Observation::observe(None, &lease(Some("skewed"), renew, "7", 15), t0, D);
            assert!(!o.is_takeable(t0), "not expired at first sight");
            assert!(!o.is_takeable(t0 + Duration::from_secs(14)));
            assert!(o.is_takeable(t0 + Duration::from_secs(15)));
        }
    }

    #[test]
    fn holder_lease_duration_wins_over_ours() {
        let t0 = Instant::now();
        let o = Observation::observe(None, &lease(Some("a"), Timestamp::now(), "1", 60), t0, D);
        assert!(!o.is_takeable(t0 + Duration::from_secs(59)));
        assert!(o.is_takeable(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn timing_rules() {
        let ok = LeaseTiming {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            api_timeout: Duration::from_secs(5),
        };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.renew_interval(), Duration::from_secs(5));
        let bad = LeaseTiming {
            renew_deadline: Duration::from_secs(15),
            ..ok
        };
        assert!(bad.validate().is_err());
    }
}
