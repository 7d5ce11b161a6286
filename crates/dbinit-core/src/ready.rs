//! Waiting until PostgreSQL and Redis are usable, not merely listening.

use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::Client;
use tracing::info;

use crate::backoff::{Attempt, GaveUp, retry_until};
use crate::config::{PostgresSettings, RedisSettings, Settings};
use crate::error::{Error, Result};
use crate::postgres::{self, Class, ConnectError};

/// A ready PostgreSQL: an authenticated connection that answered `SELECT 1`.
pub struct PgReady {
    /// The open connection, reused by what comes next so a run pays one handshake.
    pub client: Client,
    /// Whether `client` is connected to the application's database (`false`: it is
    /// connected to the maintenance database because the application's does not exist yet).
    pub on_target: bool,
}

/// One failed attempt: how to treat it and what to tell a person.
#[derive(Debug)]
struct Failure {
    class: Class,
    reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

fn pg_label(pg: &PostgresSettings, db: &str) -> String {
    format!(
        "PostgreSQL at {}:{} (database {db:?}, user {:?})",
        pg.host, pg.port, pg.user
    )
}

/// Maps a [`GaveUp`] to the library error, with the dependency named.
fn gave_up(dependency: String, started: Instant, g: GaveUp<Failure>) -> Error {
    match g {
        GaveUp::Deadline { last, attempts } => Error::DependencyTimeout {
            dependency,
            waited: started.elapsed(),
            attempts,
            last: last.reason,
        },
        GaveUp::Permanent(Failure {
            class: Class::Other,
            reason,
        }) => Error::Unusable { dependency, reason },
        GaveUp::Permanent(Failure { reason, .. }) => Error::Refused { dependency, reason },
    }
}

/// Waits until PostgreSQL accepts us and answers a query: on the application's database when
/// it exists (the common case, and the connection a run goes on to use), otherwise on the
/// maintenance database. Connection refused, DNS failures and "starting up" are retried with
/// backoff until `deadline`; a bad password or a missing maintenance database fail at once.
pub async fn wait_for_postgres(
    pg: &PostgresSettings,
    connect_timeout: Duration,
    backoff: crate::backoff::Backoff,
    deadline: Instant,
    app: &str,
) -> Result<PgReady> {
    let started = Instant::now();
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
                reason: format!(
                    "neither the database {:?} nor the maintenance database {:?} exists; set POSTGRES_MAINTENANCE_DB to a database the user may connect to",
                    pg.database, pg.maintenance_database
                ),
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
        Err(g) => Err(gave_up(label, started, g)),
    }
}

fn attempt(e: ConnectError) -> Attempt<Failure> {
    classified(e.class(), e.to_string())
}

fn classified(class: Class, reason: String) -> Attempt<Failure> {
    let f = Failure { class, reason };
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
    let client = postgres::connect(pg, db, app, limit).await?;
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
    backoff: crate::backoff::Backoff,
    deadline: Instant,
) -> Result<()> {
    let started = Instant::now();
    let label = format!("Redis at {}:{} (db {})", r.host, r.port, r.db);
    let res = retry_until("redis", deadline, backoff, |left| async move {
        crate::redis::ping(r, connect_timeout.min(left))
            .await
            .map_err(|e| classified(crate::redis::classify(&e), redis_reason(&e, r)))
    })
    .await;
    match res {
        Ok(()) => {
            info!(host = %r.host, port = r.port, "redis is ready");
            Ok(())
        }
        Err(g) => Err(gave_up(label, started, g)),
    }
}

fn redis_reason(e: &redis::RedisError, r: &RedisSettings) -> String {
    match e.code() {
        Some("NOAUTH") => "the server requires a password and none is configured (set REDIS_PASSWORD or REDIS_PASSWORD_FILE)".into(),
        Some("WRONGPASS") => format!(
            "authentication failed for user {:?}: wrong password",
            r.username.as_deref().unwrap_or("default")
        ),
        _ if e.kind() == redis::ErrorKind::AuthenticationFailed => format!(
            "authentication failed for user {:?}: {e}",
            r.username.as_deref().unwrap_or("default")
        ),
        _ => e.to_string(),
    }
}

/// Waits for PostgreSQL and, when configured, Redis, concurrently, under one deadline.
/// Returns the PostgreSQL connection for the next step.
pub async fn wait_for_dependencies(s: &Settings, app: &str, deadline: Instant) -> Result<PgReady> {
    let pg = wait_for_postgres(
        &s.postgres,
        s.wait.connect_timeout,
        s.wait.backoff,
        deadline,
        app,
    );
    match &s.redis {
        None => pg.await,
        Some(r) => {
            let redis = wait_for_redis(r, s.wait.connect_timeout, s.wait.backoff, deadline);
            // try_join: the first permanent failure ends the wait for both.
            let (pg, ()) = tokio::try_join!(pg, redis)?;
            Ok(pg)
        }
    }
}
