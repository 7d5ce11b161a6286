//! `dbinit repair --version V`: accept the current file of one applied version as the truth.
//!
//! When an applied migration's file was changed on purpose (a comment, whitespace, a fix that
//! was also applied by hand), every run stops with "edited" (exit 6). Repair updates that one
//! history row's checksum (and name) to the file's and writes an audit record with who, when
//! and both checksums. It never runs automatically, touches no other version, runs no SQL
//! from the file, and refuses a version that is not applied.

use tokio_postgres::Client;
use tracing::info;

use super::audit::{self, Action, Row};
use crate::migrate::error::Result;
use crate::migrate::history;
use crate::migrate::lock;
use crate::migrate::settings::MigrateSettings;
use crate::postgres;
use crate::ready::Context;
use crate::setting::ConfigError;

/// Waits for PostgreSQL, takes the migration lock, and repairs version `v`.
pub async fn command(ctx: &Context<'_>, m: &MigrateSettings, v: i64) -> Result<String> {
    lock::exclusive(ctx, m, "nothing to repair", async |client| {
        locked(client, m, v).await
    })
    .await
}

async fn locked(client: &Client, m: &MigrateSettings, v: i64) -> Result<String> {
    let state = history::read_state(client, &m.history, &m.seeds_table, false)
        .await
        .map_err(postgres::Error::statement("read the history table"))?;
    let applied: Vec<String> = state
        .migrations
        .iter()
        .map(|a| a.version.to_string())
        .collect();
    let Some(row) = state.migrations.iter().find(|a| a.version == v) else {
        return Err(ConfigError(format!(
            "invalid --version: version {v} is not applied, so there is nothing to repair (applied: {})",
            if applied.is_empty() { "none".to_string() } else { applied.join(", ") }
        ))
        .into());
    };
    let Some(file) = m.set.migrations.iter().find(|f| f.version() == v) else {
        return Err(ConfigError(format!(
            "invalid --version: the migration set has no file with version {v} (V{v}__{} is applied); restore the file first",
            row.name
        ))
        .into());
    };
    let (old, new) = (row.checksum.to_string(), file.checksum().to_string());
    if old == new && row.name == file.name() {
        return Ok(format!("{file} matches its history row; nothing to repair"));
    }
    let source = format!("file {file}.sql");
    let repaired = Row {
        action: Action::Repair,
        file,
        source: &source,
        replaces: Some(&old),
    };
    audit::write(client, &m.history, &[repaired])
        .await
        .map_err(postgres::Error::statement("repair the history row"))?;
    info!(version = v, old_checksum = %old, new_checksum = %new, "accepted the current file as applied");
    Ok(format!(
        "repaired version {v}: history now records {file} with checksum {new} (was {old}); audit record written"
    ))
}
