//! Holding the Lease: renew it every duration/3, stop leading at the last successful renew +
//! the renew deadline, and give it back on the way out.

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::PostParams;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{LeaseError, LeaseLock, call, now_micro};

/// The lock, held. Keep it renewed with [`Held::keep`]; give it back with [`Held::release`].
pub struct Held {
    lock: LeaseLock,
    lease: Lease,
    last_renew: Instant,
    /// Our fencing token: leaseTransitions after our acquire.
    pub epoch: i32,
}

impl Held {
    /// The lock just acquired as `lease`, with its epoch.
    pub(super) fn new(lock: LeaseLock, lease: Lease, epoch: i32) -> Self {
        Self {
            lock,
            lease,
            last_renew: Instant::now(),
            epoch,
        }
    }

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
