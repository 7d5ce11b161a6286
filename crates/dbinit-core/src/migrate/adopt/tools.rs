//! Other migration tools' history tables: finding them and reading where each tool left the
//! schema. Read-only: dbinit never writes to, alters or drops another tool's table, so the
//! old tool keeps working until it is retired.
//!
//! | tool | table | what it holds |
//! |---|---|---|
//! | Alembic | `alembic_version (version_num varchar(32))` | one row per head: the newest revision id |
//! | Flyway | `flyway_schema_history (installed_rank, version varchar(50), …, success)` | one row per applied script |
//! | golang-migrate | `schema_migrations (version bigint, dirty bool)` | one row: the current version |
//! | dbmate | `schema_migrations (version varchar(128))` | one row per applied file |
//! | sqlx | `_sqlx_migrations (version bigint, …, success, checksum bytea)` | one row per applied file |

use serde::Serialize;
use tokio_postgres::{Client, SimpleQueryMessage};

/// A migration tool whose history dbinit can take over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    /// sqlx: one row per applied file with a success flag.
    Sqlx,
}

impl Tool {
    /// Every tool, in the order the README lists them.
    pub const ALL: [Tool; 5] = [
        Self::Alembic,
        Self::Flyway,
        Self::GolangMigrate,
        Self::Dbmate,
        Self::Sqlx,
    ];

    /// The value `--from` / `DBINIT_ADOPT_FROM` takes.
    pub fn id(self) -> &'static str {
        match self {
            Self::Alembic => "alembic",
            Self::Flyway => "flyway",
            Self::GolangMigrate => "golang-migrate",
            Self::Dbmate => "dbmate",
            Self::Sqlx => "sqlx",
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
        }
    }

    /// The history table the tool creates by default.
    pub fn table(self) -> &'static str {
        match self {
            Self::Alembic => "alembic_version",
            Self::Flyway => "flyway_schema_history",
            Self::GolangMigrate | Self::Dbmate => "schema_migrations",
            Self::Sqlx => "_sqlx_migrations",
        }
    }

    /// What the tool calls a version.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Alembic => "revision",
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

/// Where another tool left the schema, as its table says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolHistory {
    /// The tool.
    pub tool: Tool,
    /// Its table.
    pub table: String,
    /// Applied versions (revision ids), oldest first, as the tool wrote them.
    pub applied: Vec<String>,
    /// The current version: Alembic's head, golang-migrate's version, else the highest.
    pub current: Option<String>,
    /// Why it cannot be adopted as it is (dirty, a failed migration, several heads).
    pub problem: Option<String>,
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
}

async fn rows(client: &Client, sql: &str) -> Result<Vec<Vec<String>>, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or_default().to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// Flyway-style version order: dotted numbers compared part by part, text last.
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split(['.', '_'])
        .map(|p| (p.parse().unwrap_or(u64::MAX), p.to_string()))
        .collect()
}

/// Finds the tools' tables on the search path and reads each; read-only.
pub async fn find(client: &Client) -> Result<Vec<ToolHistory>, tokio_postgres::Error> {
    let found = rows(
        client,
        "SELECT to_regclass('alembic_version') IS NOT NULL, to_regclass('flyway_schema_history') IS NOT NULL,
                to_regclass('schema_migrations') IS NOT NULL, to_regclass('_sqlx_migrations') IS NOT NULL,
                EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('schema_migrations') AND attname = 'dirty' AND NOT attisdropped)",
    )
    .await?;
    let Some(f) = found.first() else {
        return Ok(Vec::new());
    };
    let yes = |i: usize| f.get(i).is_some_and(|v| v == "t");
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
    let mut out = Vec::new();
    for t in tools {
        out.push(read(client, t).await?);
    }
    Ok(out)
}

/// Reads one tool's table.
async fn read(client: &Client, tool: Tool) -> Result<ToolHistory, tokio_postgres::Error> {
    let mut h = ToolHistory {
        tool,
        table: tool.table().to_string(),
        applied: Vec::new(),
        current: None,
        problem: None,
    };
    match tool {
        Tool::Alembic => {
            h.applied = rows(
                client,
                "SELECT version_num::text FROM alembic_version ORDER BY 1",
            )
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect();
            match h.applied.as_slice() {
                [] => h.problem = Some("no revision recorded".into()),
                [one] => h.current = Some(one.clone()),
                heads => {
                    h.problem = Some(format!(
                        "several heads ({}): merge them with `alembic merge` and upgrade first",
                        heads.join(", ")
                    ))
                }
            }
        }
        Tool::GolangMigrate => {
            let r = rows(client, "SELECT version::text, dirty FROM schema_migrations").await?;
            if let Some(row) = r.first() {
                let v = row.first().cloned().unwrap_or_default();
                if row.get(1).is_some_and(|d| d == "t") {
                    h.problem = Some(format!(
                        "dirty: a migration to version {v} failed halfway; fix the schema, then `migrate force` the version it really is at"
                    ));
                }
                h.applied.push(v.clone());
                h.current = Some(v);
            }
        }
        Tool::Flyway | Tool::Sqlx | Tool::Dbmate => {
            let sql = match tool {
                Tool::Flyway => {
                    "SELECT version, success FROM flyway_schema_history WHERE version IS NOT NULL ORDER BY installed_rank"
                }
                Tool::Sqlx => {
                    "SELECT version::text, success FROM _sqlx_migrations ORDER BY version"
                }
                _ => {
                    "SELECT version::text, true FROM schema_migrations ORDER BY length(version), version"
                }
            };
            for row in rows(client, sql).await? {
                let v = row.first().cloned().unwrap_or_default();
                if row.get(1).is_some_and(|s| s == "t") {
                    h.applied.push(v);
                } else if h.problem.is_none() {
                    h.problem = Some(format!(
                        "version {v} failed (success = false): repair it with {} first",
                        tool.name()
                    ));
                }
            }
            h.current = h.applied.iter().max_by_key(|v| version_key(v)).cloned();
        }
    }
    Ok(h)
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
        assert_eq!(Tool::parse("liquibase"), None);
    }

    #[test]
    fn flyway_versions_order_numerically() {
        let mut v = vec!["10", "2", "1.1", "1"];
        v.sort_by_key(|x| version_key(x));
        assert_eq!(v, vec!["1", "1.1", "2", "10"]);
    }
}
