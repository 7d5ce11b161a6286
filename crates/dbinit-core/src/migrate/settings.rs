//! The checked options of every migration command, resolved once by the configuration room
//! and read by each flow.

use std::time::Duration;

use super::adopt::settings::AdoptSettings;
use super::session::SessionSettings;
use super::set::MigrationSet;
use crate::lint::LintSettings;
use crate::postgres::sql::TableName;

/// Checked migration options.
#[derive(Debug, Clone)]
pub struct MigrateSettings {
    /// The migrations and seeds.
    pub set: MigrationSet,
    /// History table.
    pub history: TableName,
    /// Seed history table.
    pub seeds_table: TableName,
    /// How long to wait for the migration lock held by another runner.
    pub lock_timeout: Duration,
    /// The timeouts migrations run under (`lock_timeout`, `statement_timeout`).
    pub session: SessionSettings,
    /// Owner for a created database.
    pub db_owner: Option<String>,
    /// Drop invalid indexes before re-running a no-transaction file.
    pub repair_invalid_indexes: bool,
    /// What to do with a database that has no dbinit history but is not empty.
    pub adopt: AdoptSettings,
    /// How `lint`, `plan` and `run` judge what the files will do (`DBINIT_LINT_*`).
    pub lint: LintSettings,
}
