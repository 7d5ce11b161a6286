//! `dbinit-job`'s own options: where the Lease and the status ConfigMap live, who holds the
//! Lease, and its timing. Checked once, like dbinit-core's configuration.

use std::time::Duration;

use dbinit_core::config::{ConfigError, duration_setting};
use dbinit_core::retry::Rng;

use crate::lease::LeaseTiming;

/// Where the Lease and the status live, and the Lease's timing.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Kubernetes")]
pub struct JobArgs {
    /// Namespace of the Lease and the status ConfigMap [default: the service account's
    /// namespace in a pod, else the kubeconfig's]
    #[arg(long, env = "POD_NAMESPACE", value_name = "NS", hide_env_values = true)]
    pub namespace: Option<String>,
    /// Lease that serialises migration runs [default: dbinit-migrations]
    #[arg(
        long,
        env = "DBINIT_LEASE_NAME",
        value_name = "NAME",
        hide_env_values = true
    )]
    pub lease_name: Option<String>,
    /// ConfigMap recording the runs [default: dbinit-status]
    #[arg(
        long,
        env = "DBINIT_STATUS_CONFIGMAP",
        value_name = "NAME",
        hide_env_values = true
    )]
    pub status_configmap: Option<String>,
    /// Holder identity [default: POD_NAME or HOSTNAME, plus a random suffix]
    #[arg(
        long,
        env = "DBINIT_IDENTITY",
        value_name = "ID",
        hide_env_values = true
    )]
    pub identity: Option<String>,
    /// How long the lease lasts without renewal [default: 15s]
    #[arg(
        long,
        env = "DBINIT_LEASE_DURATION",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub lease_duration: Option<String>,
    /// Stop (exit 7) when the lease was not renewed for this long; < lease duration [default: 10s]
    #[arg(
        long,
        env = "DBINIT_RENEW_DEADLINE",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub renew_deadline: Option<String>,
    /// Pause after a failed Kubernetes API call [default: 2s]
    #[arg(
        long,
        env = "DBINIT_RETRY_PERIOD",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub retry_period: Option<String>,
    /// Limit of each Kubernetes API call [default: 5s]
    #[arg(
        long,
        env = "DBINIT_API_TIMEOUT",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub api_timeout: Option<String>,
    /// How long to wait for the lease held by another replica (exit 7 after) [default: 10m]
    #[arg(
        long,
        env = "DBINIT_ACQUIRE_TIMEOUT",
        value_name = "DURATION",
        hide_env_values = true
    )]
    pub acquire_timeout: Option<String>,
}

/// Validated [`JobArgs`].
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Namespace, when given.
    pub namespace: Option<String>,
    /// Lease name.
    pub lease_name: String,
    /// Status ConfigMap name.
    pub status_configmap: String,
    /// Holder identity.
    pub identity: String,
    /// Lease timing.
    pub timing: LeaseTiming,
    /// Acquire timeout.
    pub acquire_timeout: Duration,
}

/// Kubernetes object names: DNS-1123 subdomains.
fn object_name(raw: String, env: &str) -> std::result::Result<String, ConfigError> {
    let ok = !raw.is_empty()
        && raw.len() <= 253
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
        && raw.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(raw)
    } else {
        Err(ConfigError(format!(
            "invalid {env}: {raw:?} is not a Kubernetes object name (lowercase letters, digits, '-', '.')"
        )))
    }
}

impl JobArgs {
    /// Validates names and timing; the identity (`--identity`, else the pod's name from
    /// the configuration step, else `dbinit-job`) gets a random suffix so two processes in one
    /// pod (or a restarted container) never share it.
    pub fn resolve(
        self,
        host_identity: Option<&str>,
    ) -> std::result::Result<JobSettings, ConfigError> {
        let timing = LeaseTiming {
            lease_duration: duration_setting(
                self.lease_duration,
                "DBINIT_LEASE_DURATION",
                Duration::from_secs(15),
            )?,
            renew_deadline: duration_setting(
                self.renew_deadline,
                "DBINIT_RENEW_DEADLINE",
                Duration::from_secs(10),
            )?,
            retry_period: duration_setting(
                self.retry_period,
                "DBINIT_RETRY_PERIOD",
                Duration::from_secs(2),
            )?,
            api_timeout: duration_setting(
                self.api_timeout,
                "DBINIT_API_TIMEOUT",
                Duration::from_secs(5),
            )?,
        };
        timing.validate().map_err(|e| {
            ConfigError(format!(
                "invalid DBINIT_LEASE_DURATION/DBINIT_RENEW_DEADLINE: {e}"
            ))
        })?;
        let base = self
            .identity
            .or_else(|| host_identity.map(str::to_string))
            .unwrap_or_else(|| "dbinit-job".into());
        let identity = format!("{base}-{:06x}", Rng::new().next_u64() & 0xff_ffff);
        Ok(JobSettings {
            namespace: self.namespace.filter(|n| !n.is_empty()),
            lease_name: object_name(
                self.lease_name
                    .unwrap_or_else(|| "dbinit-migrations".into()),
                "DBINIT_LEASE_NAME (--lease-name)",
            )?,
            status_configmap: object_name(
                self.status_configmap
                    .unwrap_or_else(|| "dbinit-status".into()),
                "DBINIT_STATUS_CONFIGMAP (--status-configmap)",
            )?,
            identity,
            timing,
            acquire_timeout: duration_setting(
                self.acquire_timeout,
                "DBINIT_ACQUIRE_TIMEOUT",
                Duration::from_secs(600),
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let j = JobArgs::default().resolve(None).expect("defaults");
        assert_eq!(j.lease_name, "dbinit-migrations");
        assert_eq!(j.status_configmap, "dbinit-status");
        assert_eq!(j.timing.lease_duration, Duration::from_secs(15));
        let a = JobArgs::default().resolve(None).expect("ok").identity;
        let b = JobArgs::default().resolve(None).expect("ok").identity;
        assert_ne!(a, b, "identities get a random suffix");
        let c = JobArgs::default()
            .resolve(Some("pod-7"))
            .expect("ok")
            .identity;
        assert!(c.starts_with("pod-7-"), "{c}");

        let bad = JobArgs {
            lease_name: Some("Bad_Name".into()),
            ..JobArgs::default()
        };
        assert!(
            bad.resolve(None)
                .expect_err("bad")
                .0
                .contains("DBINIT_LEASE_NAME")
        );
        let bad = JobArgs {
            renew_deadline: Some("20s".into()),
            ..JobArgs::default()
        };
        assert!(bad.resolve(None).is_err());
        let bad = JobArgs {
            lease_duration: Some("soon".into()),
            ..JobArgs::default()
        };
        assert!(
            bad.resolve(None)
                .expect_err("bad")
                .0
                .contains("DBINIT_LEASE_DURATION")
        );
    }
}
