//! The `dbinit` command line: parse, resolve configuration, dispatch, finish.

use clap::{Parser, Subcommand};
use tokio::time::Instant;

use crate::config::{self, ConnArgs, Settings};
use crate::error::{Error, ExitCode, Result};
use crate::outcome::{self, OutcomeArgs};
use crate::run::{self, MigrateArgs, MigrateSettings};
use crate::{postgres, ready, telemetry};

/// dbinit: make PostgreSQL and Redis ready for an application before it starts.
///
/// Exit codes: 0 ok, 1 other failure, 2 bad configuration, 3 timed out waiting,
/// 4 authentication or permission refused, 5 a migration or seed failed,
/// 6 migrations diverge from the database, 7 lock not acquired or lost, 8 interrupted.
#[derive(Debug, Parser)]
#[command(name = "dbinit", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command, `dbinit` is `dbinit run`.
    #[command(flatten)]
    run: MigrateCmd,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Wait for PostgreSQL and Redis, create the database if missing, apply pending
    /// migrations and seeds under an advisory lock (the default)
    Run(MigrateCmd),
    /// Wait for PostgreSQL and Redis, then until another runner (a Job) has applied every
    /// migration and seed this binary knows; applies nothing
    Wait(MigrateCmd),
    /// Print applied and pending migrations and seeds; changes nothing
    Status(StatusCmd),
    /// Wait until PostgreSQL (and Redis, when configured) authenticate us and answer a query
    WaitDeps(CommonArgs),
}

/// The options every `dbinit` command takes.
#[derive(Debug, clap::Args)]
struct CommonArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    outcome: OutcomeArgs,
}

#[derive(Debug, clap::Args)]
struct MigrateCmd {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    migrate: MigrateArgs,
}

#[derive(Debug, clap::Args)]
struct StatusCmd {
    #[command(flatten)]
    cmd: MigrateCmd,
    /// Output format: text or json
    #[arg(long, short, default_value = "text", value_parser = ["text", "json"])]
    output: String,
}

/// Who we are in `pg_stat_activity` and in logs: the pod name when there is one.
pub fn identity() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("pid-{}", std::process::id()))
}

/// Resolves configuration and initialises logging; a bad configuration ends the process
/// here with exit 2, after logging and writing the termination message.
pub fn settings_or_exit(
    conn: ConnArgs,
    out: &OutcomeArgs,
) -> std::result::Result<Settings, ExitCode> {
    match config::resolve(conn) {
        Ok(s) => {
            telemetry::init(s.log_format);
            Ok(s)
        }
        Err(e) => {
            telemetry::init(telemetry::early_format());
            Err(outcome::finish(Err(Error::Config(e)), out, &[]))
        }
    }
}

/// Resolves when SIGTERM or SIGINT arrives, naming it.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the default disposition (terminate) still applies.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Runs `work` until it finishes or a signal arrives. Dropping `work` on a signal closes its
/// connections, so PostgreSQL rolls back whatever transaction was open.
pub async fn interruptible<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        r = work => r,
        sig = shutdown_signal() => Err(Error::Interrupted(sig)),
    }
}

impl Cli {
    /// Parses the command line and runs it to an exit code.
    pub async fn parse_and_run() -> ExitCode {
        let started = Instant::now();
        let cli = Cli::parse();
        match cli.command {
            None => migrate_cmd(cli.run, started, Mode::Run).await,
            Some(Command::Run(c)) => migrate_cmd(c, started, Mode::Run).await,
            Some(Command::Wait(c)) => migrate_cmd(c, started, Mode::Wait).await,
            Some(Command::Status(c)) => status_cmd(c, started).await,
            Some(Command::WaitDeps(a)) => {
                let settings = match settings_or_exit(a.conn, &a.outcome) {
                    Ok(s) => s,
                    Err(code) => return code,
                };
                let deadline = started + settings.wait.timeout;
                let app = postgres::application_name(&identity());
                let r = interruptible(async {
                    ready::wait_for_dependencies(&settings, &app, deadline).await?;
                    Ok(format!(
                        "dependencies ready after {} ms",
                        started.elapsed().as_millis()
                    ))
                })
                .await;
                outcome::finish(r, &a.outcome, &settings.secrets())
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Run,
    Wait,
}

fn resolve_all(
    c: MigrateCmd,
) -> std::result::Result<(Settings, MigrateSettings, OutcomeArgs), ExitCode> {
    let outcome = c.common.outcome;
    let settings = settings_or_exit(c.common.conn, &outcome)?;
    match c.migrate.resolve() {
        Ok(m) => Ok((settings, m, outcome)),
        Err(e) => Err(outcome::finish(Err(Error::Config(e)), &outcome, &[])),
    }
}

async fn migrate_cmd(c: MigrateCmd, started: Instant, mode: Mode) -> ExitCode {
    let (settings, m, out) = match resolve_all(c) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let deadline = started + settings.wait.timeout;
    let app = postgres::application_name(&identity());
    let r = interruptible(async {
        let report = match mode {
            Mode::Run => run::run(&settings, &m, &app, deadline).await?,
            Mode::Wait => run::wait(&settings, &m, &app, deadline).await?,
        };
        Ok(report.summary(started.elapsed()))
    })
    .await;
    outcome::finish(r, &out, &settings.secrets())
}

async fn status_cmd(c: StatusCmd, started: Instant) -> ExitCode {
    let json = c.output == "json";
    let (settings, m, out) = match resolve_all(c.cmd) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let deadline = started + settings.wait.timeout;
    let app = postgres::application_name(&identity());
    match interruptible(run::status(&settings, &m, &app, deadline)).await {
        Ok(report) => {
            let text = if json {
                serde_json::to_string_pretty(&report).unwrap_or_default()
            } else {
                report.text()
            };
            println!("{}", text.trim_end());
            ExitCode::Ok
        }
        Err(e) => outcome::finish(Err(e), &out, &settings.secrets()),
    }
}
