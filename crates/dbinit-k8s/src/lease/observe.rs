//! What a waiter saw of the Lease, and since when on its own monotonic clock: expiry judged by
//! observed time, so a holder whose clock is minutes off is judged correctly.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

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
}
