//! `dbinit-job`'s own options: where the Lease and the status ConfigMap live, who holds the
//! Lease, and its timing. Checked once, like dbinit-core's configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use dbinit_core::config::duration_setting;
use dbinit_core::retry::Rng;
use dbinit_core::setting::ConfigError;

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
    /// Labels added to the Lease and status ConfigMap when dbinit-job creates them (never
    /// changed on existing ones), beside app.kubernetes.io/managed-by=dbinit: comma-separated
    /// key=value pairs, e.g. app.kubernetes.io/instance=shop,app.kubernetes.io/name=dbinit
    #[arg(
        long,
        env = "DBINIT_LABELS",
        value_name = "KEY=VALUE,...",
        hide_env_values = true
    )]
    pub labels: Option<String>,
    /// The Pod this job runs in, which its Events are about (set from the Downward API's
    /// metadata.name) [default: the Lease]
    #[arg(long, env = "POD_NAME", value_name = "NAME", hide_env_values = true)]
    pub pod_name: Option<String>,
    /// The Pod's UID (Downward API metadata.uid), so `kubectl describe pod` lists the Events
    #[arg(long, env = "POD_UID", value_name = "UID", hide_env_values = true)]
    pub pod_uid: Option<String>,
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
    /// Extra labels for created objects.
    pub labels: BTreeMap<String, String>,
    /// The Pod's name and UID, when running in one.
    pub pod: Option<(String, Option<String>)>,
}

/// A label name: 1-63 characters, alphanumeric at both ends, `-_.` inside.
fn label_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A DNS-1123 subdomain (a label key's prefix).
fn dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Parses `DBINIT_LABELS`: comma-separated `key=value` with Kubernetes' label syntax.
pub fn parse_labels(raw: &str) -> std::result::Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let ok = pair.split_once('=').and_then(|(k, v)| {
            let name_ok = match k.split_once('/') {
                Some((prefix, name)) => dns_subdomain(prefix) && label_name(name),
                None => label_name(k),
            };
            (name_ok && (v.is_empty() || label_name(v))).then(|| (k.to_string(), v.to_string()))
        });
        let Some((k, v)) = ok else {
            return Err(ConfigError(format!(
                "invalid DBINIT_LABELS (--labels): {pair:?} is not key=value with Kubernetes label syntax (key: [prefix/]name, name and value up to 63 of a-z A-Z 0-9 - _ . starting and ending alphanumeric; pairs separated by commas)"
            )));
        };
        out.insert(k, v);
    }
    Ok(out)
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
            labels: parse_labels(self.labels.as_deref().unwrap_or(""))?,
            pod: self
                .pod_name
                .filter(|n| !n.is_empty())
                .map(|n| (n, self.pod_uid.filter(|u| !u.is_empty()))),
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
        let labels = parse_labels("app.kubernetes.io/instance=shop, team=db,empty=").expect("ok");
        assert_eq!(labels["app.kubernetes.io/instance"], "shop");
        assert_eq!(labels["empty"], "");
        for bad in [
            "novalue",
            "Bad Key=x",
            "k=-x",
            "a/b/c=x",
            "UPPER.example/x=y",
        ] {
            let e = parse_labels(bad).expect_err(bad).0;
            assert!(e.contains("DBINIT_LABELS") && e.contains(bad), "{e}");
        }
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
