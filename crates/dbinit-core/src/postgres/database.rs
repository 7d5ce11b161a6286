//! Creating the application's database through the maintenance database.

use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tracing::{info, warn};

use super::sql::{quote_ident, quote_literal};
use super::{Error, PgError, PostgresSettings, Result};
use crate::dependency;
use crate::retry::{Backoff, Pace, PollError, Step, poll};

/// Pause while `template1` is busy (another session is copying it right now).
const TEMPLATE_BUSY: Backoff = Backoff {
    initial: Duration::from_millis(50),
    max: Duration::from_secs(1),
};

/// Creates `pg.database` if it does not exist, owned by `owner` when given. Returns whether
/// this call created it. A peer that creates it first (42P04, or a unique violation on
/// `pg_database`) is success; missing CREATEDB (42501) is a clear refusal (exit 4).
pub async fn ensure_database(
    maintenance: &Client,
    pg: &PostgresSettings,
    owner: Option<&str>,
    deadline: Instant,
) -> Result<bool> {
    // Simple protocol with a quoted literal: no named prepared statement, which a
    // transaction-mode pooler would let collide with another client's.
    let exists = maintenance
        .simple_query(&format!(
            "SELECT 1 FROM pg_database WHERE datname = {}",
            quote_literal(&pg.database)
        ))
        .await
        .map_err(|e| Error::Statement {
            action: format!("check whether database {:?} exists", pg.database),
            source: PgError(e),
        })?;
    if exists
        .iter()
        .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
    {
        return Ok(false);
    }
    let mut sql = format!("CREATE DATABASE {}", quote_ident(&pg.database));
    if let Some(o) = owner {
        sql.push_str(&format!(" OWNER {}", quote_ident(o)));
    }
    let sql = &sql;
    let pace = Pace {
        deadline,
        backoff: TEMPLATE_BUSY,
        report_every: Duration::ZERO,
    };
    let step = move |_| async move {
        match maintenance.batch_execute(sql).await {
            Ok(()) => {
                info!(database = %pg.database, owner = owner.unwrap_or(&pg.user), "created database");
                Step::Done(true)
            }
            Err(e)
                if e.code() == Some(&SqlState::DUPLICATE_DATABASE)
                    || e.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
            {
                info!(database = %pg.database, "database was created by another runner");
                Step::Done(false)
            }
            Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
                Step::Fail(Error::Dependency(dependency::Error::Refused {
                    dependency: format!("PostgreSQL at {}:{}", pg.host, pg.port),
                    cause: format!(
                        "role {:?} lacks the CREATEDB privilege needed to create database {:?} ({}); grant it (ALTER ROLE {} CREATEDB) or create the database beforehand",
                        pg.user,
                        pg.database,
                        PgError(e),
                        quote_ident(&pg.user)
                    )
                    .into(),
                }))
            }
            // "source database template1 is being accessed by other users": passes.
            Err(e) if e.code() == Some(&SqlState::OBJECT_IN_USE) => Step::Wait(PgError(e)),
            Err(e) => Step::Fail(Error::Statement {
                action: format!("create database {:?}", pg.database),
                source: PgError(e),
            }),
        }
    };
    poll(pace, step, |p| {
        warn!(reason = %p.awaited, "create database: template busy, retrying");
    })
    .await
    .map_err(|e| match e {
        PollError::Failed(e) => e,
        PollError::Deadline { last, .. } => Error::Statement {
            action: format!("create database {:?}", pg.database),
            source: last,
        },
    })
}
