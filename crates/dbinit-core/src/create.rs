//! Creating the application's database through the maintenance database.

use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tracing::{info, warn};

use crate::config::PostgresSettings;
use crate::error::{Error, Result};
use crate::history::quote_ident;
use crate::postgres::describe;

/// Creates `pg.database` if it does not exist, owned by `owner` when given. Returns whether
/// this call created it. A peer that creates it first (42P04, or a unique violation on
/// `pg_database`) is success; missing CREATEDB (42501) is a clear refusal (exit 4).
pub async fn ensure_database(
    maintenance: &Client,
    pg: &PostgresSettings,
    owner: Option<&str>,
    deadline: Instant,
) -> Result<bool> {
    let exists = |e: tokio_postgres::Error| Error::Postgres {
        action: format!("check whether database {:?} exists", pg.database),
        reason: describe(&e),
    };
    if maintenance
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&pg.database],
        )
        .await
        .map_err(exists)?
        .is_some()
    {
        return Ok(false);
    }
    let mut sql = format!("CREATE DATABASE {}", quote_ident(&pg.database));
    if let Some(o) = owner {
        sql.push_str(&format!(" OWNER {}", quote_ident(o)));
    }
    let mut delay = Duration::from_millis(50);
    loop {
        match maintenance.batch_execute(&sql).await {
            Ok(()) => {
                info!(database = %pg.database, owner = owner.unwrap_or(&pg.user), "created database");
                return Ok(true);
            }
            Err(e)
                if e.code() == Some(&SqlState::DUPLICATE_DATABASE)
                    || e.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
            {
                info!(database = %pg.database, "database was created by another runner");
                return Ok(false);
            }
            Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
                return Err(Error::Refused {
                    dependency: format!("PostgreSQL at {}:{}", pg.host, pg.port),
                    reason: format!(
                        "role {:?} lacks the CREATEDB privilege needed to create database {:?} ({}); grant it (ALTER ROLE {} CREATEDB) or create the database beforehand",
                        pg.user,
                        pg.database,
                        describe(&e),
                        quote_ident(&pg.user)
                    ),
                });
            }
            // "source database template1 is being accessed by other users": passes.
            Err(e) if e.code() == Some(&SqlState::OBJECT_IN_USE) && Instant::now() < deadline => {
                warn!(reason = %describe(&e), "create database: template busy, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                return Err(Error::Postgres {
                    action: format!("create database {:?}", pg.database),
                    reason: describe(&e),
                });
            }
        }
    }
}
