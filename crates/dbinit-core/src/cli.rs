//! The `dbinit` command line: parse, resolve configuration, dispatch, finish. Also the
//! pieces `dbinit-job` shares: [`settings_or_exit`] and [`interruptible`].

use clap::{Parser, Subcommand};
use tokio::time::Instant;
use tracing::warn;

use crate::config::{self, ConnArgs, Env, MigrateArgs, OutcomeArgs, Settings, ToolArgs, Use};
use crate::error::{Error, Result};
use crate::exit::ExitCode;
use crate::migrate::adopt::baseline::{self, Request};
use crate::migrate::adopt::{self, repair};
use crate::migrate::{self, MigrateSettings, review};
use crate::outcome;
use crate::ready;
use crate::secret::scrub;
use crate::setting::ConfigError;
use crate::signal::{Listener, shutdown_signal};
use crate::telemetry;
use crate::tool::report::ToolReport;
use crate::tool::{self, ToolSettings};

/// dbinit: make PostgreSQL and Redis ready for an application before it starts.
#[derive(Debug, Parser)]
#[command(
    name = "dbinit",
    version,
    args_conflicts_with_subcommands = true,
    after_help = ExitCode::help()
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command, `dbinit` is `dbinit run`.
    #[command(flatten)]
    run: RunCmd,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Wait for PostgreSQL and Redis, create the database if missing, apply pending
    /// migrations and seeds under an advisory lock (the default); with `-- CMD ARGS...`,
    /// run your own migration tool under that lock instead (skipped when up to date)
    Run(RunCmd),
    /// Wait for PostgreSQL and Redis, then until another runner (a Job) has applied every
    /// migration and seed this binary knows (with --tool: until the tool's table holds the
    /// head of its files in this image); applies nothing
    Wait(RunCmd),
    /// Print applied and pending migrations and seeds; changes nothing
    Status(StatusCmd),
    /// Wait until PostgreSQL (and Redis, when configured) authenticate us and answer a query
    WaitDeps(CommonArgs),
    /// Print what `run` would do (create the database, adopt, apply which files, or refuse),
    /// writing nothing and taking no lock; exits with the code `run` would refuse with
    Plan(StatusCmd),
    /// Record versions up to N as applied without running them, for a database whose
    /// schema was built another way (under the migration lock; idempotent)
    Baseline(BaselineCmd),
    /// Take over a database another tool migrated (alembic, flyway, golang-migrate, dbmate,
    /// sqlx, django, prisma): record its applied versions as dbinit history; its table is left untouched
    Adopt(AdoptCmd),
    /// Accept the current file of applied version V as the truth: update its recorded
    /// checksum and write an audit record (never automatic)
    Repair(RepairCmd),
    /// Review migrations before they run: each finding's rule, the lock its statement takes,
    /// whether it scans or rewrites the table, and the safe way. With a database
    /// (DATABASE_URL or POSTGRES_HOST set) it reviews the pending files, judged by the live
    /// tables' size and locks (read-only); without one, every file statically (a CI gate)
    Lint(LintCmd),
}

#[derive(Debug, clap::Args)]
struct LintCmd {
    #[command(flatten)]
    cmd: MigrateCmd,
    /// Output format
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Review statically even when a database is configured
    #[arg(long)]
    offline: bool,
    /// Files to review, in the order they would run, instead of the migration set's
    #[arg(value_name = "FILE")]
    files: Vec<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
struct BaselineCmd {
    #[command(flatten)]
    cmd: MigrateCmd,
    /// Highest version to record [default: DBINIT_BASELINE_VERSION]
    #[arg(long = "version", value_name = "N")]
    target: Option<String>,
}

#[derive(Debug, clap::Args)]
struct AdoptCmd {
    #[command(flatten)]
    cmd: MigrateCmd,
    /// The tool whose history to take over [default: DBINIT_ADOPT_FROM, else the only one found]
    #[arg(long = "from", value_name = "TOOL")]
    from: Option<String>,
}

#[derive(Debug, clap::Args)]
struct RepairCmd {
    #[command(flatten)]
    cmd: MigrateCmd,
    /// The applied version whose file is now the truth
    #[arg(long = "version", value_name = "V")]
    target: String,
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

/// `run` and `wait`: a migration command, with tool mode.
#[derive(Debug, clap::Args)]
struct RunCmd {
    #[command(flatten)]
    cmd: MigrateCmd,
    #[command(flatten)]
    tool: ToolArgs,
}

/// How `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    /// A table for people.
    Text,
    /// JSON for scripts.
    Json,
}

#[derive(Debug, clap::Args)]
struct StatusCmd {
    #[command(flatten)]
    cmd: MigrateCmd,
    #[command(flatten)]
    tool: ToolArgs,
    /// Output format
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Exit with a code that says what status found, for CI gates and `helm test`: 0 up to
    /// date, 10 pending, 6 diverged (edited, missing or out-of-order migration), 11 the
    /// database is ahead of this binary, 12 an INVALID index left by a no-transaction file
    #[arg(long, env = "DBINIT_STATUS_EXIT_CODE", hide_env_values = true)]
    exit_code: bool,
    /// With --exit-code: a database ahead of this set (a newer release migrated it, then the
    /// release was rolled back) exits 0 instead of 11, as `run` and `wait` tolerate it
    #[arg(long, env = "DBINIT_STATUS_ALLOW_AHEAD", hide_env_values = true)]
    allow_ahead: bool,
}

/// Resolves configuration and initialises logging; a bad configuration ends the process
/// here with exit 2, after logging and writing the termination message.
pub fn settings_or_exit(
    conn: ConnArgs,
    out: &OutcomeArgs,
) -> std::result::Result<Settings, ExitCode> {
    let env = Env::read();
    match config::resolve(conn, &env) {
        Ok(s) => {
            telemetry::init(&s.log);
            for w in &s.warnings {
                warn!("{w}");
            }
            Ok(s)
        }
        Err(e) => {
            telemetry::init(&env.early_log());
            Err(outcome::finish(Err(Error::Config(e)), out, &[]))
        }
    }
}

/// Runs `work` until it finishes or a signal arrives. Dropping `work` on a signal closes its
/// connections, so PostgreSQL rolls back whatever transaction was open.
pub async fn interruptible<T, E: Into<Error>>(
    work: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    tokio::select! {
        r = work => r.map_err(Into::into),
        sig = shutdown_signal() => Err(Error::Interrupted(sig)),
    }
}

/// Which flow a migrate command runs.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Run,
    Wait,
}

mod report;

impl Cli {
    /// Parses the command line and runs it to an exit code.
    pub async fn parse_and_run() -> ExitCode {
        let started = Instant::now();
        let cli = Cli::parse();
        match cli.command {
            None => run_cmd(cli.run, started, Mode::Run).await,
            Some(Command::Run(c)) => run_cmd(c, started, Mode::Run).await,
            Some(Command::Wait(c)) => run_cmd(c, started, Mode::Wait).await,
            Some(Command::Status(c)) => report::status_cmd(c, started).await,
            Some(Command::Plan(c)) => report::plan_cmd(c, started).await,
            Some(Command::Baseline(c)) => {
                adopt_cmd(c.cmd, started, |m| {
                    let raw = c.target.as_deref().map(|t| (t, "--version"));
                    let n = match (raw, m.adopt.baseline) {
                        (Some((t, label)), _) => adopt::parse_version(label, t, &m.set)?,
                        (None, Some(n)) => n,
                        (None, None) => {
                            return Err(ConfigError(
                                "dbinit baseline needs --version N (or DBINIT_BASELINE_VERSION): the highest version the schema already holds".into(),
                            ));
                        }
                    };
                    Ok(Request::Baseline(n))
                })
                .await
            }
            Some(Command::Adopt(c)) => {
                adopt_cmd(c.cmd, started, |m| {
                    let tool = match c.from.as_deref() {
                        Some(f) => Some(adopt::parse_tool("--from", f)?),
                        None => m.adopt.from,
                    };
                    Ok(Request::Adopt(tool))
                })
                .await
            }
            Some(Command::Repair(c)) => repair_cmd(c, started).await,
            Some(Command::Lint(c)) => lint_cmd(c, started).await,
            Some(Command::WaitDeps(a)) => {
                let settings = match settings_or_exit(a.conn, &a.outcome) {
                    Ok(s) => s,
                    Err(code) => return code,
                };
                let ctx = settings.context(&settings.identity(), started);
                let r = interruptible(async {
                    ready::wait_for_dependencies(&ctx).await?;
                    Ok::<_, Error>(format!(
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

fn resolve_all(
    c: MigrateCmd,
) -> std::result::Result<(Settings, MigrateSettings, OutcomeArgs), ExitCode> {
    let outcome = c.common.outcome;
    let settings = settings_or_exit(c.common.conn, &outcome)?;
    match config::resolve_migrate(c.migrate) {
        Ok(m) => Ok((settings, m, outcome)),
        Err(e) => Err(outcome::finish(Err(Error::Config(e)), &outcome, &[])),
    }
}

/// Resolves a command that may be in tool mode: the migration settings (seeds only in tool
/// mode) and the tool settings, if any.
fn resolve_mode(
    c: MigrateCmd,
    tool: ToolArgs,
    usage: Use,
) -> std::result::Result<(Settings, MigrateSettings, Option<ToolSettings>, OutcomeArgs), ExitCode> {
    let outcome = c.common.outcome;
    let settings = settings_or_exit(c.common.conn, &outcome)?;
    let resolved = config::resolve_tool(tool, &Env::read(), usage).and_then(|t| {
        let m = match &t {
            Some(_) => config::resolve_migrate_tool(c.migrate)?,
            None => config::resolve_migrate(c.migrate)?,
        };
        Ok((m, t))
    });
    match resolved {
        Ok((m, t)) => Ok((settings, m, t, outcome)),
        Err(e) => Err(outcome::finish(Err(Error::Config(e)), &outcome, &[])),
    }
}

async fn run_cmd(c: RunCmd, started: Instant, mode: Mode) -> ExitCode {
    let usage = match mode {
        Mode::Run => Use::Run,
        Mode::Wait => Use::Read,
    };
    let (settings, m, t, out) = match resolve_mode(c.cmd, c.tool, usage) {
        Ok(x) => x,
        Err(code) => return code,
    };
    match t {
        Some(t) => tool_cmd(&settings, &m, &t, &out, started, mode).await,
        None => migrate_cmd(&settings, &m, &out, started, mode).await,
    }
}

/// `run -- CMD` and `wait --tool T`.
async fn tool_cmd(
    settings: &Settings,
    m: &MigrateSettings,
    t: &ToolSettings,
    out: &OutcomeArgs,
    started: Instant,
    mode: Mode,
) -> ExitCode {
    let ctx = settings.context(&settings.identity(), started);
    let r = match mode {
        Mode::Run => {
            // Signals are the flow's own: forwarded to the command while it runs.
            let mut signals = Listener::new();
            let mut report = ToolReport::new(&ctx.postgres.database, t.tool, t.display());
            tool::run::run(&ctx, m, t, &mut report, &mut signals)
                .await
                .map(|()| report.summary(started.elapsed()))
                .map_err(Error::from)
        }
        Mode::Wait => interruptible(tool::observe::wait(&ctx, m, t))
            .await
            .map(|s| {
                format!(
                    "database {:?}: {} ({} ms)",
                    ctx.postgres.database,
                    s.describe(),
                    started.elapsed().as_millis()
                )
            }),
    };
    outcome::finish(r, out, &settings.secrets())
}

async fn migrate_cmd(
    settings: &Settings,
    m: &MigrateSettings,
    out: &OutcomeArgs,
    started: Instant,
    mode: Mode,
) -> ExitCode {
    let ctx = settings.context(&settings.identity(), started);
    let r = interruptible(async {
        let report = match mode {
            Mode::Run => migrate::run(&ctx, m).await?,
            Mode::Wait => migrate::wait(&ctx, m).await?,
        };
        Ok::<_, Error>(report.summary(started.elapsed()))
    })
    .await;
    outcome::finish(r, out, &settings.secrets())
}

/// `baseline` and `adopt`: `request` reads the command's own flags against the settings.
async fn adopt_cmd(
    c: MigrateCmd,
    started: Instant,
    request: impl FnOnce(&MigrateSettings) -> std::result::Result<Request, ConfigError>,
) -> ExitCode {
    let (settings, m, out) = match resolve_all(c) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let req = match request(&m) {
        Ok(r) => r,
        Err(e) => return outcome::finish(Err(Error::Config(e)), &out, &[]),
    };
    let ctx = settings.context(&settings.identity(), started);
    let r = interruptible(baseline::command(&ctx, &m, req)).await;
    outcome::finish(r, &out, &settings.secrets())
}

async fn repair_cmd(c: RepairCmd, started: Instant) -> ExitCode {
    let (settings, m, out) = match resolve_all(c.cmd) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let v = match c.target.trim().parse::<i64>() {
        Ok(v) => v,
        Err(_) => {
            let e = ConfigError(format!(
                "invalid --version: {:?} is not a migration version (a number from 0 to {}, e.g. 3)",
                c.target,
                i64::MAX
            ));
            return outcome::finish(Err(Error::Config(e)), &out, &[]);
        }
    };
    let ctx = settings.context(&settings.identity(), started);
    let r = interruptible(repair::command(&ctx, &m, v)).await;
    outcome::finish(r, &out, &settings.secrets())
}

async fn lint_cmd(c: LintCmd, started: Instant) -> ExitCode {
    let live = !c.offline && config::lint::names_a_server(&c.cmd.common.conn);
    let (settings, m, out) = match resolve_all(c.cmd) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let ctx = settings.context(&settings.identity(), started);
    match interruptible(review::lint(live.then_some(&ctx), &m, &c.files)).await {
        Ok(r) => {
            let text = match c.output {
                Output::Json => serde_json::to_string_pretty(&r).unwrap_or_default(),
                Output::Text => r.text(),
            };
            println!("{}", scrub(text.trim_end(), settings.secrets()));
            match review::gate(&r, m.lint.fail_on) {
                None => ExitCode::Ok,
                Some(e) => outcome::finish(Err(Error::Migrate(e)), &out, &settings.secrets()),
            }
        }
        Err(e) => outcome::finish(Err(e), &out, &settings.secrets()),
    }
}
