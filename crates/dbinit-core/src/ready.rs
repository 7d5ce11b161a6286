//! Waiting until PostgreSQL and Redis are usable, not merely listening.

use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::Client;
use tracing::info;

use crate::dependency::{Cause, Error, Result};
use crate::postgres::connect::{ConnectError, connect};
use crate::postgres::{self, PostgresSettings};
use crate::redis::RedisSettings;
use crate::retry::{Attempt, Backoff, Class, PollError, retry_until};

/// Deadline and retry policy for dependency waits.
#[derive(Debug, Clone, Copy)]
pub struct WaitSettings {
    /// Overall deadline, from process start.
    pub timeout: Duration,
    /// Limit of one connection attempt.
    pub connect_timeout: Duration,
    /// Delays between attempts.
    pub backoff: Backoff,
}

/// One command's fixed inputs: the dependencies and how to wait for them, who we are to
/// PostgreSQL (`application_name`), and when waiting for dependencies gives up. It holds the
/// settings it needs rather than the whole configuration, so readiness does not depend on
/// the room that reads the configuration.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The PostgreSQL target.
    pub postgres: &'a PostgresSettings,
    /// The Redis target, if configured.
    pub redis: Option<&'a RedisSettings>,
    /// Deadline and backoff.
    pub wait: WaitSettings,
    /// `application_name` of every connection.
    pub app: String,
    /// Deadline of the dependency wait: the process start + `DBINIT_TIMEOUT`.
    pub deadline: Instant,
}

impl<'a> Context<'a> {
    /// The context of a command that started at `started`, as `identity`.
    pub fn new(
        postgres: &'a PostgresSettings,
        redis: Option<&'a RedisSettings>,
        wait: WaitSettings,
        identity: &str,
        started: Instant,
    ) -> Self {
        Self {
            postgres,
            redis,
            wait,
            app: postgres::application_name(identity),
            deadline: started + wait.timeout,
        }
    }
}

/// A ready PostgreSQL: an authenticated connection that answered `SELECT 1`.
pub struct PgReady {
    /// The open connection, reused by what comes next so a run pays one handshake.
    pub client: Client,
    /// Whether `client` is connected to the application's database (`false`: it is
    /// connected to the maintenance database because the application's does not exist yet).
    pub on_target: bool,
}

/// One failed attempt: how to treat it and why it failed.
#[derive(Debug)]
struct Failure {
    class: Class,
    cause: Cause,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.cause.fmt(f)
    }
}

fn pg_label(pg: &PostgresSettings, db: &str) -> String {
    format!(
        "PostgreSQL at {}:{} (database {db:?}, user {:?})",
        pg.host, pg.port, pg.user
    )
}

/// Maps why the wait stopped to the library error, with the dependency named.
fn gave_up(dependency: String, g: PollError<Failure, Failure>) -> Error {
    match g {
        PollError::Deadline {
            last,
            attempts,
            waited,
        } => Error::Timeout {
            dependency,
            waited,
            attempts,
            last: last.cause,
        },
        PollError::Failed(Failure {
            class: Class::Other,
            cause,
        }) => Error::Unusable { dependency, cause },
        PollError::Failed(Failure { cause, .. }) => Error::Refused { dependency, cause },
    }
}

/// Waits until PostgreSQL accepts us and answers a query: on the application's database when
/// it exists (the common case, and the connection a run goes on to use), otherwise on the
/// maintenance database. Connection refused, DNS failures and "starting up" are retried with
/// backoff until `deadline`; a bad password or a missing maintenance database fail at once.
pub async fn wait_for_postgres(
    pg: &PostgresSettings,
    connect_timeout: Duration,
    backoff: Backoff,
    deadline: Instant,
    app: &str,
) -> Result<PgReady> {
    let label = pg_label(pg, &pg.database);
    let r = retry_until("postgres", deadline, backoff, |left| async move {
        let limit = connect_timeout.min(left);
        match query_ok(pg, &pg.database, app, limit).await {
            Ok(client) => return Ok((client, true)),
            Err(e) if e.class() == Class::MissingDatabase => {}
            Err(e) => return Err(attempt(e)),
        }
        match query_ok(pg, &pg.maintenance_database, app, limit).await {
            Ok(client) => Ok((client, false)),
            Err(e) if e.class() == Class::MissingDatabase => Err(Attempt::Permanent(Failure {
                class: Class::Refused,
                cause: format!(
                    "neither the database {:?} nor the maintenance database {:?} exists; set POSTGRES_MAINTENANCE_DB to a database the user may connect to",
                    pg.database, pg.maintenance_database
                )
                .into(),
            })),
            Err(e) => Err(attempt(e)),
        }
    })
    .await;
    match r {
        Ok((client, on_target)) => {
            info!(
                host = %pg.host,
                port = pg.port,
                database = if on_target { &pg.database } else { &pg.maintenance_database },
                "postgres is ready"
            );
            Ok(PgReady { client, on_target })
        }
        Err(g) => Err(gave_up(label, g)),
    }
}

fn attempt(e: ConnectError) -> Attempt<Failure> {
    classified(e.class(), Box::new(e))
}

fn classified(class: Class, cause: Cause) -> Attempt<Failure> {
    let f = Failure { class, cause };
    if class == Class::Transient {
        Attempt::Transient(f)
    } else {
        Attempt::Permanent(f)
    }
}

/// Connects and runs `SELECT 1`; a query that does not answer within `limit` counts as a
/// transient failure, like a refused connection.
async fn query_ok(
    pg: &PostgresSettings,
    db: &str,
    app: &str,
    limit: Duration,
) -> std::result::Result<Client, ConnectError> {
    let client = connect(pg, db, app, limit).await?;
    match tokio::time::timeout(
        limit.max(Duration::from_millis(10)),
        client.simple_query("SELECT 1"),
    )
    .await
    {
        Ok(r) => {
            r?;
            Ok(client)
        }
        Err(_) => Err(ConnectError::Unresponsive(limit)),
    }
}

/// Waits until Redis answers PING after AUTH; WRONGPASS/NOAUTH fail at once.
pub async fn wait_for_redis(
    r: &RedisSettings,
    connect_timeout: Duration,
    backoff: Backoff,
    deadline: Instant,
) -> Result<()> {
    let label = format!("Redis at {} (db {})", r.address(), r.db);
    let res = retry_until("redis", deadline, backoff, |left| async move {
        crate::redis::ping(r, connect_timeout.min(left))
            .await
            .map_err(|e| {
                classified(
                    crate::redis::classify(&e),
                    crate::redis::reason(&e, r).into(),
                )
            })
    })
    .await;
    match res {
        Ok(()) => {
            info!(address = %r.address(), "redis is ready");
            Ok(())
        }
        Err(g) => Err(gave_up(label, g)),
    }
}

/// Waits for PostgreSQL and, when configured, Redis, concurrently, under one deadline.
/// Returns the PostgreSQL connection for the next step.
pub async fn wait_for_dependencies(ctx: &Context<'_>) -> Result<PgReady> {
    let (wait, deadline) = (ctx.wait, ctx.deadline);
    let pg = wait_for_postgres(
        ctx.postgres,
        wait.connect_timeout,
        wait.backoff,
        deadline,
        &ctx.app,
    );
    match ctx.redis {
        None => pg.await,
        Some(r) => {
            let redis = wait_for_redis(r, wait.connect_timeout, wait.backoff, deadline);
            // try_join: the first permanent failure ends the wait for both.
            let (pg, ()) = tokio::try_join!(pg, redis)?;
            Ok(pg)
        }
    }
}
