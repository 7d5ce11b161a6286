//! `dbinit-job`: take the Lease, run create/migrate/seed while renewing it, record the run in
//! the status ConfigMap, release the Lease.

use std::time::Duration;

use clap::Parser;
use dbinit_core::backoff::Rng;
use dbinit_core::cli::{settings_or_exit, shutdown_signal};
use dbinit_core::config::{ConfigError, ConnArgs, Settings, duration_setting};
use dbinit_core::outcome::{self, OutcomeArgs};
use dbinit_core::run::{self, MigrateArgs, MigrateSettings, RunReport};
use dbinit_core::secret::scrub;
use dbinit_core::{Error, ExitCode, Result, postgres};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::lease::{Held, LeaseError, LeaseLock, LeaseTiming};
use crate::status::{RunRecord, StatusWriter};

/// dbinit-job: run the database migrations of a release once, from a Kubernetes Job, with a
/// Lease so only one replica migrates at a time, and a status ConfigMap recording each run.
///
/// Exit codes as dbinit's: 0 ok, 1 other, 2 configuration, 3 timeout, 4 refused (database
/// auth or Kubernetes RBAC), 5 migration failed, 6 diverged, 7 lease/lock not acquired or
/// lost, 8 interrupted.
#[derive(Debug, Parser)]
#[command(name = "dbinit-job", version)]
pub struct JobCli {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    migrate: MigrateArgs,
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    outcome: OutcomeArgs,
}

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
    /// Validates names and timing; the identity gets a random suffix so two processes in one
    /// pod (or a restarted container) never share it.
    pub fn resolve(self) -> std::result::Result<JobSettings, ConfigError> {
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
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
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

fn lease_error(e: LeaseError) -> Error {
    match e {
        LeaseError::Forbidden(msg) => Error::Refused {
            dependency: "the Kubernetes API".into(),
            reason: format!("RBAC denied a Lease call: {msg}"),
        },
        e @ (LeaseError::AcquireTimeout { .. } | LeaseError::Lost { .. }) => {
            Error::LockLost(e.to_string())
        }
        e @ LeaseError::Api { .. } => Error::Unusable {
            dependency: "the Kubernetes API".into(),
            reason: e.to_string(),
        },
    }
}

/// RFC 3339 UTC with a fixed microsecond precision, so records sort as text too.
fn now() -> String {
    Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

impl JobCli {
    /// Parses the command line and runs the job to an exit code.
    pub async fn parse_and_run() -> ExitCode {
        let started = Instant::now();
        let cli = JobCli::parse();
        let out = cli.outcome;
        let settings = match settings_or_exit(cli.conn, &out) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let resolved = cli
            .migrate
            .resolve()
            .and_then(|m| cli.job.resolve().map(|j| (m, j)))
            .map_err(Error::Config);
        let (m, job) = match resolved {
            Ok(x) => x,
            Err(e) => return outcome::finish(Err(e), &out, &[]),
        };
        let r = job_run(&settings, &m, &job, started).await;
        outcome::finish(r, &out, &settings.secrets())
    }
}

/// The whole job; SIGTERM/SIGINT end it with the run rolled back, the status recorded and the
/// lease released.
async fn job_run(
    s: &Settings,
    m: &MigrateSettings,
    job: &JobSettings,
    started: Instant,
) -> Result<String> {
    let client = kube::Client::try_default().await.map_err(|e| {
        Error::Config(ConfigError(format!(
            "no usable Kubernetes configuration (in a pod: the service account; outside: KUBECONFIG): {e}"
        )))
    })?;
    let ns = job
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let lock = LeaseLock::new(
        Api::namespaced(client.clone(), &ns),
        &job.lease_name,
        &job.identity,
        job.timing,
    );
    let status = StatusWriter::new(
        Api::namespaced(client, &ns),
        &job.status_configmap,
        job.timing.api_timeout,
    );
    info!(namespace = %ns, lease = %job.lease_name, identity = %job.identity, "taking the migration lease");
    let mut held = tokio::select! {
        r = lock.acquire(job.acquire_timeout) => r.map_err(lease_error)?,
        sig = shutdown_signal() => return Err(Error::Interrupted(sig)),
    };
    let mut record = RunRecord {
        phase: "Running".into(),
        holder: job.identity.clone(),
        epoch: held.epoch,
        started_at: now(),
        database: s.postgres.database.clone(),
        target_version: m
            .set
            .target_version()
            .map(|v| v.to_string())
            .unwrap_or_default(),
        migration_set_checksum: m.set.checksum(),
        dbinit_version: env!("CARGO_PKG_VERSION").into(),
        ..RunRecord::default()
    };
    if let Err(e) = status.write(&record).await {
        if e.is_forbidden() {
            held.release().await;
            return Err(Error::Refused {
                dependency: "the Kubernetes API".into(),
                reason: format!("RBAC denied writing the status ConfigMap: {}", e.reason),
            });
        }
        warn!(error = %e, "could not record the start of the run; continuing");
    }

    let run_started = Instant::now();
    let app = postgres::application_name(&job.identity);
    let deadline = run_started + s.wait.timeout;
    let (result, lost) = supervise(&mut held, run::run(s, m, &app, deadline)).await;
    let epoch = held.epoch;
    finish_record(&mut record, s, m, &app, &result, run_started).await;
    if !lost {
        if let Err(e) = status.write(&record).await {
            warn!(error = %e, "could not record the end of the run");
        }
        held.release().await;
    } else {
        // Fenced: another replica may hold the lease now; our record would race its writes.
        warn!(epoch, "lease lost: not writing status or releasing");
    }
    result.map(|r| format!("{} (lease epoch {epoch})", r.summary(started.elapsed())))
}

/// Runs `work` while renewing the lease; returns its result and whether the lease was lost.
/// On loss or signal the work future is dropped: its connections close and PostgreSQL rolls
/// back the open transaction.
async fn supervise(
    held: &mut Held,
    work: impl std::future::Future<Output = Result<RunReport>>,
) -> (Result<RunReport>, bool) {
    tokio::select! {
        r = work => (r, false),
        e = held.keep() => (Err(lease_error(e)), true),
        sig = shutdown_signal() => (Err(Error::Interrupted(sig)), false),
    }
}

/// Fills the final record: phase, exit code, scrubbed error, and what the database now says
/// (applied version, pending), read on a fresh connection so it is true after a failure too.
async fn finish_record(
    record: &mut RunRecord,
    s: &Settings,
    m: &MigrateSettings,
    app: &str,
    result: &Result<RunReport>,
    run_started: Instant,
) {
    record.finished_at = now();
    record.duration_ms = run_started.elapsed().as_millis() as u64;
    match result {
        Ok(r) => {
            record.phase = "Succeeded".into();
            record.exit_code = 0;
            record.applied_this_run = r
                .migrations
                .iter()
                .chain(r.seeds.iter())
                .cloned()
                .collect::<Vec<_>>()
                .join(",");
        }
        Err(e) => {
            record.phase = "Failed".into();
            record.exit_code = e.exit_code() as u8;
            record.error = scrub(&e.to_string(), s.secrets());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    if let Ok(Ok(st)) = tokio::time::timeout_at(deadline, run::status(s, m, app, deadline)).await {
        record.applied_version = st
            .applied_version
            .map(|v| v.to_string())
            .unwrap_or_default();
        record.pending = st
            .migrations
            .iter()
            .chain(st.seeds.iter())
            .filter(|e| e.state == "pending")
            .map(|e| e.name.clone())
            .collect::<Vec<_>>()
            .join(",");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let j = JobArgs::default().resolve().expect("defaults");
        assert_eq!(j.lease_name, "dbinit-migrations");
        assert_eq!(j.status_configmap, "dbinit-status");
        assert_eq!(j.timing.lease_duration, Duration::from_secs(15));
        let a = JobArgs::default().resolve().expect("ok").identity;
        let b = JobArgs::default().resolve().expect("ok").identity;
        assert_ne!(a, b, "identities get a random suffix");

        let bad = JobArgs {
            lease_name: Some("Bad_Name".into()),
            ..JobArgs::default()
        };
        assert!(
            bad.resolve()
                .expect_err("bad")
                .0
                .contains("DBINIT_LEASE_NAME")
        );
        let bad = JobArgs {
            renew_deadline: Some("20s".into()),
            ..JobArgs::default()
        };
        assert!(bad.resolve().is_err());
        let bad = JobArgs {
            lease_duration: Some("soon".into()),
            ..JobArgs::default()
        };
        assert!(
            bad.resolve()
                .expect_err("bad")
                .0
                .contains("DBINIT_LEASE_DURATION")
        );
    }
}
