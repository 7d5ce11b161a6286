//! What a tool's history table holds, as tool mode compares it with the files: read by the
//! adopt room's reader of other tools' tables ([`tools::read_in`]), with what each tool
//! records beside the version: sqlx's checksum and success, golang-migrate's dirty flag,
//! Prisma's finished, rolled-back and failed rows, Flyway's success and baseline. A missing
//! table is a database the tool has not migrated yet.

use std::collections::BTreeSet;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::kind::Tool;
use crate::migrate::adopt::tools::{self, Checksum, RowState, ToolRow};
use crate::postgres::sql::TableName;

/// One `_sqlx_migrations` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlxRow {
    /// Version.
    pub version: i64,
    /// `success` (never false on PostgreSQL with sqlx 0.9, but handled).
    pub success: bool,
    /// SHA-384 of the file it applied.
    pub checksum: Vec<u8>,
}

/// One `_prisma_migrations` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrismaRow {
    /// The migration's folder name.
    pub name: String,
    /// `finished_at IS NOT NULL`: applied.
    pub finished: bool,
    /// `rolled_back_at IS NOT NULL`: marked with `migrate resolve --rolled-back`, ignored.
    pub rolled_back: bool,
    /// `logs` holds the database error: the migration failed (a row without finished_at and
    /// without logs may still be running).
    pub has_logs: bool,
}

/// One `flyway_schema_history` row with a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlywayRow {
    /// Version, as written.
    pub version: String,
    /// `success`.
    pub success: bool,
    /// `type = 'BASELINE'`: versions up to it count as applied.
    pub baseline: bool,
}

/// The rows, by tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The table does not exist: nothing applied yet.
    Missing,
    /// `alembic_version`: one row per head.
    Alembic(BTreeSet<String>),
    /// `django_migrations`: (app, name), duplicates merged.
    Django(BTreeSet<(String, String)>),
    /// `_sqlx_migrations`.
    Sqlx(Vec<SqlxRow>),
    /// dbmate's `schema_migrations`: version strings.
    Dbmate(BTreeSet<String>),
    /// golang-migrate's `schema_migrations`: zero or one (version, dirty).
    GolangMigrate(Option<(i64, bool)>),
    /// `_prisma_migrations`.
    Prisma(Vec<PrismaRow>),
    /// `flyway_schema_history` rows with a version.
    Flyway(Vec<FlywayRow>),
}

/// Why the table could not be read as the tool's.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The table exists but is not the tool's shape (dbmate's `schema_migrations` read as
    /// golang-migrate's, say).
    #[error("{table} is not {tool}'s table: {detail}")]
    Shape {
        /// The table.
        table: String,
        /// The tool.
        tool: &'static str,
        /// The server's words.
        detail: String,
    },
    /// Any other failure.
    #[error(transparent)]
    Pg(#[from] tokio_postgres::Error),
}

/// Reads `tool`'s table (named `table`) on `client`, through the adopt room's reader of
/// other tools' tables, into what tool mode compares.
pub async fn read(client: &Client, tool: Tool, table: &TableName) -> Result<Recorded, ReadError> {
    let history = match tools::read_in(client, tool, table).await {
        Ok(Some(h)) => h,
        Ok(None) => return Ok(Recorded::Missing),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_COLUMN) => {
            return Err(ReadError::Shape {
                table: table.plain(),
                tool: tool.name(),
                detail: e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_default(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    Ok(from_rows(tool, &history.rows))
}

/// The rows as tool mode compares them.
pub fn from_rows(tool: Tool, rows: &[ToolRow]) -> Recorded {
    let applied = |r: &ToolRow| r.state == RowState::Applied;
    match tool {
        Tool::Alembic => Recorded::Alembic(rows.iter().map(|r| r.key.clone()).collect()),
        Tool::Django => Recorded::Django(
            rows.iter()
                .map(|r| {
                    (
                        r.app.clone().unwrap_or_default(),
                        r.name.clone().unwrap_or_default(),
                    )
                })
                .collect(),
        ),
        Tool::Sqlx => Recorded::Sqlx(
            rows.iter()
                .map(|r| SqlxRow {
                    version: r.key.parse().unwrap_or_default(),
                    success: applied(r),
                    checksum: match &r.checksum {
                        Some(Checksum::Sha384(b)) => b.clone(),
                        _ => Vec::new(),
                    },
                })
                .collect(),
        ),
        Tool::Dbmate => Recorded::Dbmate(rows.iter().map(|r| r.key.clone()).collect()),
        Tool::GolangMigrate => Recorded::GolangMigrate(rows.first().map(|r| {
            (
                r.key.parse().unwrap_or_default(),
                r.state == RowState::Failed,
            )
        })),
        Tool::Prisma => Recorded::Prisma(
            rows.iter()
                .map(|r| PrismaRow {
                    name: r.key.clone(),
                    finished: applied(r),
                    rolled_back: r.state == RowState::RolledBack,
                    has_logs: r.logs.is_some(),
                })
                .collect(),
        ),
        Tool::Flyway => Recorded::Flyway(
            rows.iter()
                .map(|r| FlywayRow {
                    version: r.key.clone(),
                    success: applied(r),
                    baseline: r.kind.as_deref() == Some("BASELINE"),
                })
                .collect(),
        ),
    }
}
