//! `dbinit-job`: wait for PostgreSQL and Redis, take the Lease, run create/migrate/seed while
//! renewing it, record the run in the status ConfigMap, release the Lease.

use clap::Parser;
use dbinit_core::cli::{interruptible, settings_or_exit};
use dbinit_core::config::{self, ConnArgs, Env, MigrateArgs, OutcomeArgs, Settings, ToolArgs, Use};
use dbinit_core::dependency;
use dbinit_core::migrate::report::RunReport;
use dbinit_core::migrate::{self, MigrateSettings};
use dbinit_core::postgres::scope::ConnScope;
use dbinit_core::ready::{self, Context, PgReady};
use dbinit_core::secret::scrub;
use dbinit_core::setting::ConfigError;
use dbinit_core::signal::{Listener, shutdown_signal};
use dbinit_core::tool::report::ToolReport;
use dbinit_core::tool::{self, ToolSettings};
use dbinit_core::{Error, ExitCode, Result, outcome};
use kube::Api;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{JobArgs, JobSettings};
use crate::events::{self, Milestone, Recorder, Regarding};
use crate::lease::{Held, LeaseError, LeaseLock};
use crate::record::RunRecord;
use crate::status::StatusWriter;

/// dbinit-job: run the database migrations of a release once, from a Kubernetes Job, with a
/// Lease so only one replica migrates at a time, and a status ConfigMap recording each run.
/// Exit code 4 also covers Kubernetes RBAC refusals; 7 a Lease not acquired or lost.
#[derive(Debug, Parser)]
#[command(name = "dbinit-job", version, after_help = ExitCode::help())]
pub struct JobCli {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    migrate: MigrateArgs,
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    tool: ToolArgs,
    #[command(flatten)]
    outcome: OutcomeArgs,
}

fn lease_error(e: LeaseError) -> Error {
    match e {
        LeaseError::Forbidden(msg) => dependency::Error::Refused {
            dependency: "the Kubernetes API".into(),
            cause: format!("RBAC denied a Lease call: {msg}").into(),
        }
        .into(),
        e @ (LeaseError::AcquireTimeout { .. } | LeaseError::Lost { .. }) => {
            Error::LockLost(Box::new(e))
        }
        e @ LeaseError::Api { .. } => dependency::Error::Unusable {
            dependency: "the Kubernetes API".into(),
            cause: Box::new(e),
        }
        .into(),
    }
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
        let resolved = config::resolve_tool(cli.tool, &Env::read(), Use::Run)
            .and_then(|t| {
                let m = match &t {
                    Some(_) => config::resolve_migrate_tool(cli.migrate)?,
                    None => config::resolve_migrate(cli.migrate)?,
                };
                Ok((m, t))
            })
            .and_then(|(m, t)| {
                cli.job
                    .resolve(settings.host_identity.as_deref())
                    .map(|j| (m, t, j))
            })
            .map_err(Error::Config);
        let (m, t, job) = match resolved {
            Ok(x) => x,
            Err(e) => return outcome::finish(Err(e), &out, &[]),
        };
        let r = job_run(&settings, &m, t.as_ref(), &job, started).await;
        outcome::finish(r, &out, &settings.secrets())
    }
}

/// The whole job, with an Event at its start and one at its end (and one per wait).
async fn job_run(
    s: &Settings,
    m: &MigrateSettings,
    t: Option<&ToolSettings>,
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
    let regarding = match &job.pod {
        Some((name, uid)) => Regarding {
            kind: "Pod",
            api_version: "v1",
            name: name.clone(),
            uid: uid.clone(),
        },
        None => Regarding {
            kind: "Lease",
            api_version: "coordination.k8s.io/v1",
            name: job.lease_name.clone(),
            uid: None,
        },
    };
    let (events, flush) = events::start(
        Api::namespaced(client.clone(), &ns),
        &ns,
        regarding,
        &job.identity,
        job.timing.api_timeout,
    );
    events.record(Milestone::Started(match t {
        Some(t) => format!(
            "migrating database {:?} with `{}`{} ({} seed(s) after it)",
            s.postgres.database,
            t.display().unwrap_or_default(),
            t.tool
                .map(|k| format!(" ({})", k.name()))
                .unwrap_or_default(),
            m.set.seeds.len()
        ),
        None => format!(
            "migrating database {:?} to version {} ({} migration(s) and {} seed(s) in the set)",
            s.postgres.database,
            m.set
                .target_version()
                .map_or("-".to_string(), |v| v.to_string()),
            m.set.migrations.len(),
            m.set.seeds.len()
        ),
    }));
    let r = job_body(s, m, t, job, started, client, &ns, &events).await;
    events.record(match &r {
        Ok(summary) => Milestone::Applied(summary.clone()),
        Err(e) => {
            let code = e.exit_code();
            let msg = scrub(&e.render(), s.secrets());
            Milestone::Failed(match e.failed_file() {
                Some((file, sqlstate)) => format!(
                    "{file} failed (SQLSTATE {}, exit {}): {msg}",
                    sqlstate.unwrap_or("none"),
                    code as u8
                ),
                None => format!("exit {} ({}): {msg}", code as u8, code.as_str()),
            })
        }
    });
    drop(events);
    if tokio::time::timeout(job.timing.api_timeout * 2, flush)
        .await
        .is_err()
    {
        warn!("gave up posting the last Events");
    }
    r
}

/// The job's steps. Readiness comes first, without the Lease: a Job that cannot reach its
/// database must not hold the Lease while it waits. SIGTERM/SIGINT end it with the run rolled
/// back, the status recorded and the Lease released at once.
#[allow(clippy::too_many_arguments)]
async fn job_body(
    s: &Settings,
    m: &MigrateSettings,
    t: Option<&ToolSettings>,
    job: &JobSettings,
    started: Instant,
    client: kube::Client,
    ns: &str,
    events: &Recorder,
) -> Result<String> {
    let ns = ns.to_string();
    // Listening from the start: in tool mode a signal is forwarded to the command.
    let mut signals = Listener::new();
    let on_wait = |w: &str| events.record(Milestone::WaitingForLock(format!("waiting for {w}")));
    let ctx = s.context(&job.identity, started);
    // Every PostgreSQL connection of the run closes the moment the run is abandoned (Lease
    // lost, signal), not when the process exits: an in-flight statement would otherwise keep
    // its transaction open on the server past the fence.
    let conns = ConnScope::default();
    let ready = interruptible(conns.run(ready::wait_for_dependencies(&ctx))).await?;

    let lock = LeaseLock::new(
        Api::namespaced(client.clone(), &ns),
        &job.lease_name,
        &job.identity,
        job.timing,
    )
    .with_labels(job.labels.clone());
    let status = StatusWriter::new(
        Api::namespaced(client, &ns),
        &job.status_configmap,
        job.timing.api_timeout,
    )
    .with_labels(job.labels.clone());
    info!(namespace = %ns, lease = %job.lease_name, identity = %job.identity, "taking the migration lease");
    let mut held = interruptible(async {
        lock.acquire(job.acquire_timeout, &on_wait)
            .await
            .map_err(lease_error)
    })
    .await?;
    let mut record = RunRecord::started(&job.identity, held.epoch, &s.postgres.database, &m.set);
    if let Err(e) = status.write(&record).await {
        if e.is_forbidden() {
            held.release().await;
            return Err(dependency::Error::Refused {
                dependency: "the Kubernetes API".into(),
                cause: format!("RBAC denied writing the status ConfigMap: {}", e.reason).into(),
            }
            .into());
        }
        warn!(error = %e, "could not record the start of the run; continuing");
    }

    // The deadline of the work starts now: the wait for the Lease does not use it up.
    let run_started = Instant::now();
    let ctx = s.context(&job.identity, run_started);
    let epoch = held.epoch;
    let (summary, result, lost) = match t {
        None => {
            let mut report = RunReport::new(&s.postgres.database);
            let (result, lost) = supervise(
                &mut held,
                conns.run(work(&ctx, m, ready, &mut report, &on_wait)),
                true,
            )
            .await;
            let result = result.map_err(|e| e.with_report(report.clone()));
            record.finish(&report, &result, &s.secrets(), run_started);
            (report.summary(started.elapsed()), result, lost)
        }
        Some(t) => {
            let mut report = ToolReport::new(&s.postgres.database, t.tool, t.display());
            // The flow forwards signals to the command itself, so supervise does not race it.
            let (result, lost) = supervise(
                &mut held,
                conns.run(async {
                    let ready = if ready.client.is_closed() {
                        ready::wait_for_dependencies(&ctx).await?
                    } else {
                        ready
                    };
                    tool::run::migrate(&ctx, m, t, ready, &mut report, &mut signals, &on_wait)
                        .await
                        .map_err(Error::from)
                }),
                false,
            )
            .await;
            record.finish_tool(&report, &result, &s.secrets(), run_started);
            (report.summary(started.elapsed()), result, lost)
        }
    };
    drop(conns);
    if !lost {
        if let Err(e) = status.write(&record).await {
            warn!(error = %e, "could not record the end of the run");
        }
        held.release().await;
    } else {
        // Fenced: another replica may hold the lease now; our record would race its writes.
        warn!(epoch, "lease lost: not writing status or releasing");
    }
    result.map(|()| format!("{summary} (lease epoch {epoch})"))
}

/// The protected work: the readiness connection (checked again, as the Lease may have taken a
/// while), then create/migrate/seed, recording progress in `report`.
async fn work(
    ctx: &Context<'_>,
    m: &MigrateSettings,
    ready: PgReady,
    report: &mut RunReport,
    on_wait: migrate::OnWait<'_>,
) -> Result<()> {
    let ready = if ready.client.is_closed() {
        ready::wait_for_dependencies(ctx).await?
    } else {
        ready
    };
    migrate::migrate_observed(ctx, m, ready, report, on_wait).await?;
    Ok(())
}

/// Runs `work` while renewing the lease; returns its result and whether the lease was lost.
/// On loss or signal the work future is dropped (and the caller drops its [`ConnScope`]): its
/// connections close and PostgreSQL rolls back the open transaction (a migration command's
/// process group is killed), and what it recorded in its report so far stays. `signals`:
/// whether a signal ends the work here (false when the work forwards signals itself).
async fn supervise(
    held: &mut Held,
    work: impl std::future::Future<Output = Result<()>>,
    signals: bool,
) -> (Result<()>, bool) {
    let signal = async {
        if signals {
            shutdown_signal().await
        } else {
            std::future::pending().await
        }
    };
    tokio::select! {
        r = work => (r, false),
        e = held.keep() => (Err(lease_error(e)), true),
        sig = signal => (Err(Error::Interrupted(sig)), false),
    }
}
