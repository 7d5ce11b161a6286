//! The Lease's timing, as client-go's LeaderElectionConfig, and the relations it must keep.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
