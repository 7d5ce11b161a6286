//! Other migration tools' history tables: finding them and reading what each tool recorded.
//! Read-only: dbinit never writes to, alters or drops another tool's table, so the old tool
//! keeps working until it is retired (and, in tool mode, goes on owning it).
//!
//! | tool | table (default name) | what it holds |
//! |---|---|---|
//! | Alembic | `alembic_version (version_num varchar(32))` | one row per head: the newest revision id |
//! | Django | `django_migrations (id, app, name, applied)` | one row per applied migration module (no unique key: a race duplicates rows) |
//! | Flyway | `flyway_schema_history (installed_rank, version varchar(50), …, checksum int, success)` | one row per applied script; `success = false` for a failed non-transactional one |
//! | golang-migrate | `schema_migrations (version bigint, dirty bool)` | zero or one row: the current version; `dirty` after a failure |
//! | dbmate | `schema_migrations (version varchar)` | one row per applied file: its version digits as written |
//! | sqlx | `_sqlx_migrations (version bigint, description, installed_on, success, checksum bytea, execution_time)` | one row per applied file; checksum = SHA-384 of the file |
//! | Prisma | `_prisma_migrations (id, checksum varchar(64), finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)` | one row per attempt: applied, failed (`finished_at` NULL) or rolled back |
//!
//! Two uses share this reading. Adoption ([`super::from_tool`]) takes [`ToolHistory::applied`],
//! [`ToolHistory::current`] and [`ToolHistory::problem`]: where the tool says the schema is,
//! or why it cannot be taken over. Tool mode (`dbinit run -- CMD`) compares
//! [`ToolHistory::rows`], every row with what the tool recorded ([`ToolRow`]), with the
//! tool's files to decide whether the database is up to date, behind, ahead or failed.

use serde::Serialize;
use tokio_postgres::Client;

use crate::postgres::sql::{TableName, quote_literal};

mod rows;

pub use rows::{Checksum, RowState, ToolRow};

/// A migration tool whose history dbinit can read (and take over).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// Python's Alembic: revision ids, mapped to versions by the user.
    Alembic,
    /// Flyway: numeric versions (`1`, `1.1`).
    Flyway,
    /// golang-migrate: one current version and a dirty flag.
    GolangMigrate,
    /// dbmate: one row per applied file, usually timestamps.
    Dbmate,
    /// sqlx: one row per applied file with a success flag and the file's SHA-384.
    Sqlx,
    /// Django: one row per applied migration module, `(app, name)`.
    Django,
    /// Prisma: one row per attempt at a migration directory, by its name.
    Prisma,
}

impl Tool {
    /// Every tool, in the order the README lists them.
    pub const ALL: [Tool; 7] = [
        Self::Alembic,
        Self::Flyway,
        Self::GolangMigrate,
        Self::Dbmate,
        Self::Sqlx,
        Self::Django,
        Self::Prisma,
    ];

    /// The value `--from` / `DBINIT_ADOPT_FROM` takes.
    pub fn id(self) -> &'static str {
        match self {
            Self::Alembic => "alembic",
            Self::Flyway => "flyway",
            Self::GolangMigrate => "golang-migrate",
            Self::Dbmate => "dbmate",
            Self::Sqlx => "sqlx",
            Self::Django => "django",
            Self::Prisma => "prisma",
        }
    }

    /// The tool's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Alembic => "Alembic",
            Self::Flyway => "Flyway",
            Self::GolangMigrate => "golang-migrate",
            Self::Dbmate => "dbmate",
            Self::Sqlx => "sqlx",
            Self::Django => "Django",
            Self::Prisma => "Prisma",
        }
    }

    /// The history table the tool creates by default.
    pub fn table(self) -> &'static str {
        match self {
            Self::Alembic => "alembic_version",
            Self::Flyway => "flyway_schema_history",
            Self::GolangMigrate | Self::Dbmate => "schema_migrations",
            Self::Sqlx => "_sqlx_migrations",
            Self::Django => "django_migrations",
            Self::Prisma => "_prisma_migrations",
        }
    }

    /// What the tool calls the key of a row ([`ToolRow::key`]).
    pub fn unit(self) -> &'static str {
        match self {
            Self::Alembic => "revision",
            Self::Django | Self::Prisma => "migration",
            _ => "version",
        }
    }

    /// Parses a `--from` value.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|t| {
            t.id() == raw || (*t == Self::GolangMigrate && (raw == "migrate" || raw == "golang"))
        })
    }
}

/// What another tool's history table says: every row, and where that leaves the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolHistory {
    /// The tool.
    pub tool: Tool,
    /// Its table, as found (`_sqlx_migrations`, or the name it was read from).
    pub table: String,
    /// Keys of the rows that count as applied ([`RowState::Applied`]), oldest first, as the
    /// tool wrote them; Django's as `app.name`.
    pub applied: Vec<String>,
    /// The current version: Alembic's head, golang-migrate's version, Django's and Prisma's
    /// newest applied migration, else the highest version.
    pub current: Option<String>,
    /// Why it cannot be adopted as it is (dirty, a failed migration, several heads).
    pub problem: Option<String>,
    /// Every row, oldest first (rolled-back and failed ones too), with what the tool recorded.
    pub rows: Vec<ToolRow>,
}

impl ToolHistory {
    /// "Alembic's history table alembic_version at revision b8f15d3a0e96".
    pub fn describe(&self) -> String {
        let at = match &self.current {
            Some(c) => format!("at {} {c}", self.tool.unit()),
            None => "with nothing applied".to_string(),
        };
        let problem = self
            .problem
            .as_ref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        format!(
            "{}'s history table {} {at}{problem}",
            self.tool.name(),
            self.table
        )
    }

    /// The rows with this key (Prisma may hold several: a failed or rolled-back attempt, then
    /// the one that applied; Django duplicates rows after a race).
    pub fn rows_for<'a>(
        &'a self,
        key: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a ToolRow> + 'a {
        self.rows.iter().filter(move |r| r.key == key)
    }
}

/// Flyway-style version order: dotted numbers compared part by part, text last.
pub(crate) fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split(['.', '_'])
        .map(|p| (p.parse().unwrap_or(u64::MAX), p.to_string()))
        .collect()
}

/// Finds the tools' tables on the search path and reads each; read-only. A
/// `schema_migrations` table is golang-migrate's when it has a `dirty` column, else dbmate's
/// (Rails writes the same shape).
pub async fn find(client: &Client) -> Result<Vec<ToolHistory>, tokio_postgres::Error> {
    let found = rows::select(
        client,
        "SELECT to_regclass('alembic_version') IS NOT NULL, to_regclass('flyway_schema_history') IS NOT NULL,
                to_regclass('schema_migrations') IS NOT NULL, to_regclass('_sqlx_migrations') IS NOT NULL,
                EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('schema_migrations') AND attname = 'dirty' AND NOT attisdropped),
                to_regclass('django_migrations') IS NOT NULL, to_regclass('_prisma_migrations') IS NOT NULL",
    )
    .await?;
    let Some(f) = found.first() else {
        return Ok(Vec::new());
    };
    let yes = |i: usize| f.get(i).is_some_and(|v| v.as_deref() == Some("t"));
    let mut tools = Vec::new();
    if yes(0) {
        tools.push(Tool::Alembic);
    }
    if yes(1) {
        tools.push(Tool::Flyway);
    }
    if yes(2) {
        tools.push(if yes(4) {
            Tool::GolangMigrate
        } else {
            Tool::Dbmate
        });
    }
    if yes(3) {
        tools.push(Tool::Sqlx);
    }
    if yes(5) {
        tools.push(Tool::Django);
    }
    if yes(6) {
        tools.push(Tool::Prisma);
    }
    let mut out = Vec::new();
    for t in tools {
        if let Some(table) = default_table(t) {
            out.push(read_table(client, t, &table).await?);
        }
    }
    Ok(out)
}

/// Reads `tool`'s table under its default name on the search path; `None` when there is
/// no such table (the tool never ran there).
pub async fn read(
    client: &Client,
    tool: Tool,
) -> Result<Option<ToolHistory>, tokio_postgres::Error> {
    match default_table(tool) {
        Some(t) => read_in(client, tool, &t).await,
        None => Ok(None),
    }
}

/// The tool's default table as a [`TableName`] (every default name parses).
fn default_table(tool: Tool) -> Option<TableName> {
    TableName::parse("history table", tool.table()).ok()
}

/// Reads `tool`'s table under another name (dbmate's `DBMATE_MIGRATIONS_TABLE`,
/// golang-migrate's `x-migrations-table`, a schema-qualified one); `None` when it does not
/// exist.
pub async fn read_in(
    client: &Client,
    tool: Tool,
    table: &TableName,
) -> Result<Option<ToolHistory>, tokio_postgres::Error> {
    let exists = rows::select(
        client,
        &format!(
            "SELECT to_regclass({}) IS NOT NULL",
            quote_literal(&table.sql())
        ),
    )
    .await?;
    let found = exists
        .first()
        .and_then(|r| r.first())
        .is_some_and(|v| v.as_deref() == Some("t"));
    if !found {
        return Ok(None);
    }
    read_table(client, tool, table).await.map(Some)
}

/// Reads one tool's table.
async fn read_table(
    client: &Client,
    tool: Tool,
    table: &TableName,
) -> Result<ToolHistory, tokio_postgres::Error> {
    let rows = rows::read(client, tool, &table.sql()).await?;
    let mut h = ToolHistory {
        tool,
        table: table.plain(),
        applied: rows
            .iter()
            .filter(|r| r.state == RowState::Applied)
            .map(|r| r.key.clone())
            .collect(),
        current: None,
        problem: None,
        rows,
    };
    judge(&mut h);
    Ok(h)
}

/// Sets [`ToolHistory::current`] and [`ToolHistory::problem`] from the rows.
fn judge(h: &mut ToolHistory) {
    let tool = h.tool;
    match tool {
        Tool::Alembic => match h.applied.as_slice() {
            [] => h.problem = Some("no revision recorded".into()),
            [one] => h.current = Some(one.clone()),
            heads => {
                h.problem = Some(format!(
                    "several heads ({}): merge them with `alembic merge` and upgrade first",
                    heads.join(", ")
                ))
            }
        },
        Tool::GolangMigrate => {
            if let Some(r) = h.rows.first() {
                if r.state == RowState::Failed {
                    h.problem = Some(format!(
                        "dirty: a migration to version {} failed halfway; fix the schema, then `migrate force` the version it really is at",
                        r.key
                    ));
                }
                h.current = Some(r.key.clone());
                h.applied = vec![r.key.clone()];
            }
        }
        Tool::Django => h.current = h.applied.last().cloned(),
        Tool::Prisma => {
            if let Some(r) = h.rows.iter().find(|r| {
                r.state == RowState::Failed
                    && !h
                        .rows
                        .iter()
                        .any(|o| o.key == r.key && o.state == RowState::Applied)
            }) {
                h.problem = Some(format!(
                    "migration {} failed (finished_at is NULL): mark it with `prisma migrate resolve --rolled-back {0}` (or `--applied {0}` if you finished it by hand) first",
                    r.key
                ));
            }
            h.applied.sort();
            h.applied.dedup();
            h.current = h.applied.last().cloned();
        }
        Tool::Flyway | Tool::Sqlx | Tool::Dbmate => {
            if let Some(r) = h.rows.iter().find(|r| r.state == RowState::Failed) {
                h.problem = Some(format!(
                    "version {} failed (success = false): repair it with {} first",
                    r.key,
                    tool.name()
                ));
            }
            h.current = h.applied.iter().max_by_key(|v| version_key(v)).cloned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tool_names() {
        for t in Tool::ALL {
            assert_eq!(Tool::parse(t.id()), Some(t));
        }
        assert_eq!(Tool::parse("Flyway"), Some(Tool::Flyway));
        assert_eq!(Tool::parse("Django"), Some(Tool::Django));
        assert_eq!(Tool::parse("liquibase"), None);
    }

    #[test]
    fn flyway_versions_order_numerically() {
        let mut v = vec!["10", "2", "1.1", "1"];
        v.sort_by_key(|x| version_key(x));
        assert_eq!(v, vec!["1", "1.1", "2", "10"]);
    }

    fn history(tool: Tool, rows: Vec<ToolRow>) -> ToolHistory {
        let mut h = ToolHistory {
            tool,
            table: tool.table().into(),
            applied: rows
                .iter()
                .filter(|r| r.state == RowState::Applied)
                .map(|r| r.key.clone())
                .collect(),
            current: None,
            problem: None,
            rows,
        };
        judge(&mut h);
        h
    }

    #[test]
    fn prisma_failed_attempts_block_until_resolved_and_rolled_back_ones_do_not_count() {
        let row = |k: &str, s| ToolRow::new(k, s);
        let h = history(
            Tool::Prisma,
            vec![
                row("20240101000000_init", RowState::Applied),
                row("20240102000000_add", RowState::Failed),
            ],
        );
        assert!(
            h.problem
                .as_deref()
                .is_some_and(|p| p.contains("--rolled-back 20240102000000_add")),
            "{h:?}"
        );
        assert_eq!(h.current.as_deref(), Some("20240101000000_init"));
        // Rolled back, then applied again: fine, and counted once.
        let h = history(
            Tool::Prisma,
            vec![
                row("20240101000000_init", RowState::Applied),
                row("20240102000000_add", RowState::RolledBack),
                row("20240102000000_add", RowState::Applied),
            ],
        );
        assert_eq!(h.problem, None);
        assert_eq!(h.applied, vec!["20240101000000_init", "20240102000000_add"]);
        assert_eq!(h.rows_for("20240102000000_add").count(), 2);
    }

    #[test]
    fn golang_migrate_dirty_and_sqlx_failed_rows_are_problems() {
        let h = history(
            Tool::GolangMigrate,
            vec![ToolRow::new("7", RowState::Failed)],
        );
        assert!(h.problem.as_deref().is_some_and(|p| p.contains("dirty")));
        assert_eq!(h.current.as_deref(), Some("7"));
        let h = history(
            Tool::Sqlx,
            vec![
                ToolRow::new("1", RowState::Applied),
                ToolRow::new("20", RowState::Applied),
                ToolRow::new("3", RowState::Failed),
            ],
        );
        assert_eq!(h.current.as_deref(), Some("20"));
        assert!(
            h.problem
                .as_deref()
                .is_some_and(|p| p.contains("version 3 failed"))
        );
    }
}
