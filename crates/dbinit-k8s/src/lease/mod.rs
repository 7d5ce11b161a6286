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

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

mod held;
mod lock;
pub mod observe;
pub mod timing;

pub use held::Held;
pub use lock::LeaseLock;
pub use observe::Observation;
pub use timing::LeaseTiming;

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
