//! One row of another tool's history table, with what that tool records: the key as the
//! tool wrote it (a string: dbmate's `001` is not `1`), whether the row means applied,
//! failed or rolled back, and the tool's checksum of the file where it keeps one.

use serde::Serialize;
use sha2::{Digest, Sha256, Sha384};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::Tool;

/// What a row says about its migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowState {
    /// Applied (every Alembic, Django and dbmate row; sqlx and Flyway `success`; a clean
    /// golang-migrate row; Prisma `finished_at` set and not rolled back).
    Applied,
    /// Failed or half-applied: sqlx or Flyway `success = false`, golang-migrate `dirty`,
    /// Prisma `finished_at` NULL and not rolled back. The tool refuses to go on until it is
    /// repaired (`migrate force`, `prisma migrate resolve`, `flyway repair`).
    Failed,
    /// Prisma `rolled_back_at` set (`prisma migrate resolve --rolled-back`): ignored by the
    /// tool, which applies that migration again under a new row.
    RolledBack,
}

/// A tool's checksum of a migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// sqlx: SHA-384 of the file's bytes (48 bytes).
    Sha384(Vec<u8>),
    /// Prisma: SHA-256 of `migration.sql` as lowercase hex, as stored (old rows lack the
    /// zero padding of each byte).
    Sha256Hex(String),
    /// Flyway: its CRC32 over the script's lines (not recomputed by dbinit).
    Crc32(i32),
}

impl Checksum {
    /// Whether `file` (the file's whole text, as the tool reads it) has this checksum, as
    /// the tool itself compares: sqlx byte for byte; Prisma also with LF/CRLF swapped and
    /// unpadded hex. `None` for Flyway's, which dbinit does not compute.
    pub fn matches(&self, file: &str) -> Option<bool> {
        match self {
            Self::Sha384(want) => Some(Sha384::digest(file.as_bytes()).as_slice() == want),
            Self::Sha256Hex(want) => {
                let padded = want.len() == 64;
                let variants = [
                    file.to_string(),
                    file.replace("\r\n", "\n"),
                    file.replace('\n', "\r\n"),
                ];
                Some(variants.iter().any(|v| {
                    let d = Sha256::digest(v.as_bytes());
                    let hex: String = d
                        .iter()
                        .map(|b| {
                            if padded {
                                format!("{b:02x}")
                            } else {
                                format!("{b:x}")
                            }
                        })
                        .collect();
                    hex == *want
                }))
            }
            Self::Crc32(_) => None,
        }
    }

    /// The checksum as the tool shows it: hex for the hashes, the signed integer for CRC32.
    pub fn display(&self) -> String {
        match self {
            Self::Sha384(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
            Self::Sha256Hex(h) => h.clone(),
            Self::Crc32(c) => c.to_string(),
        }
    }

    /// sqlx's checksum of a file, for messages that show what it would record.
    pub fn sqlx_of(file: &str) -> Self {
        Self::Sha384(Sha384::digest(file.as_bytes()).to_vec())
    }
}

impl Serialize for Checksum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.display())
    }
}

/// One row of a tool's history table. Fields a tool does not record are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ToolRow {
    /// The key as the tool wrote it: Alembic's revision id; Django's `app.name`; the version
    /// of Flyway (`1.1`), golang-migrate, dbmate (digits as written: `001`) and sqlx;
    /// Prisma's `migration_name` (the directory name).
    pub key: String,
    /// Applied, failed or rolled back.
    pub state: RowState,
    /// Django's app label.
    pub app: Option<String>,
    /// Django's migration name (`0002_add_price`); sqlx's and Flyway's description.
    pub name: Option<String>,
    /// The tool's checksum of the file: sqlx, Prisma, Flyway.
    pub checksum: Option<Checksum>,
    /// When it was applied (Django `applied`, sqlx and Flyway `installed_on`, Prisma
    /// `finished_at`, else `started_at`), as PostgreSQL prints it.
    pub at: Option<String>,
    /// Prisma's `logs` (the database error of a failed attempt).
    pub logs: Option<String>,
    /// Flyway's `type` (`SQL`, `JDBC`, `BASELINE`, ...): a `BASELINE` row stands for every
    /// version up to its own.
    pub kind: Option<String>,
}

impl ToolRow {
    /// A row with only a key and a state.
    pub fn new(key: &str, state: RowState) -> Self {
        Self {
            key: key.to_string(),
            state,
            app: None,
            name: None,
            checksum: None,
            at: None,
            logs: None,
            kind: None,
        }
    }
}

/// The rows of a simple-protocol query, NULL as `None`. Simple protocol: no named prepared
/// statement for a transaction-mode pooler to mix up.
pub(super) async fn select(
    client: &Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

/// The query that reads `tool`'s table (`table` is SQL), oldest row first.
fn query(tool: Tool, table: &str) -> String {
    match tool {
        Tool::Alembic => format!("SELECT version_num::text FROM {table} ORDER BY 1"),
        Tool::Django => {
            format!("SELECT app::text, name::text, applied::text FROM {table} ORDER BY id")
        }
        Tool::Flyway => format!(
            "SELECT version::text, success, description::text, checksum::text, installed_on::text, type::text FROM {table} WHERE version IS NOT NULL ORDER BY installed_rank"
        ),
        Tool::GolangMigrate => format!("SELECT version::text, dirty FROM {table}"),
        Tool::Dbmate => {
            format!("SELECT version::text FROM {table} ORDER BY length(version::text), version")
        }
        Tool::Sqlx => format!(
            "SELECT version::text, success, description, encode(checksum, 'hex'), installed_on::text FROM {table} ORDER BY version"
        ),
        Tool::Prisma => format!(
            "SELECT migration_name::text, checksum::text, finished_at::text, rolled_back_at::text, started_at::text, logs FROM {table} ORDER BY started_at, id"
        ),
    }
}

fn hex_bytes(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

/// One row of `tool`'s query as a [`ToolRow`].
fn row(tool: Tool, r: &[Option<String>]) -> ToolRow {
    let col = |i: usize| r.get(i).cloned().flatten();
    let yes = |i: usize| col(i).as_deref() == Some("t");
    let key = col(0).unwrap_or_default();
    let mut out = ToolRow::new(&key, RowState::Applied);
    match tool {
        Tool::Alembic | Tool::Dbmate => {}
        Tool::Django => {
            let name = col(1).unwrap_or_default();
            out.key = format!("{key}.{name}");
            out.app = Some(key);
            out.name = Some(name);
            out.at = col(2);
        }
        Tool::Flyway => {
            out.state = if yes(1) {
                RowState::Applied
            } else {
                RowState::Failed
            };
            out.name = col(2);
            out.checksum = col(3).and_then(|c| c.parse().ok()).map(Checksum::Crc32);
            out.at = col(4);
            out.kind = col(5);
        }
        Tool::GolangMigrate => {
            if yes(1) {
                out.state = RowState::Failed;
            }
        }
        Tool::Sqlx => {
            out.state = if yes(1) {
                RowState::Applied
            } else {
                RowState::Failed
            };
            out.name = col(2);
            out.checksum = col(3).as_deref().and_then(hex_bytes).map(Checksum::Sha384);
            out.at = col(4);
        }
        Tool::Prisma => {
            out.checksum = col(1).map(Checksum::Sha256Hex);
            out.state = match (col(2).is_some(), col(3).is_some()) {
                (_, true) => RowState::RolledBack,
                (true, false) => RowState::Applied,
                (false, false) => RowState::Failed,
            };
            out.at = col(2).or(col(4));
            out.logs = col(5).filter(|l| !l.is_empty());
        }
    }
    out
}

/// Every row of `tool`'s table `table` (SQL), oldest first.
pub(super) async fn read(
    client: &Client,
    tool: Tool,
    table: &str,
) -> Result<Vec<ToolRow>, tokio_postgres::Error> {
    Ok(select(client, &query(tool, table))
        .await?
        .iter()
        .map(|r| row(tool, r))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|c| c.map(str::to_string)).collect()
    }

    #[test]
    fn sqlx_checksum_is_sha384_of_the_file() {
        // From tools.md: sha384sum of a real sqlx migration equals its recorded checksum.
        let file = "CREATE TABLE users (id bigserial PRIMARY KEY);\n";
        let hex = Checksum::sqlx_of(file).display();
        let r = row(
            Tool::Sqlx,
            &cols(&[
                Some("20261205115834"),
                Some("t"),
                Some("create users"),
                Some(&hex),
                None,
            ]),
        );
        assert_eq!(r.key, "20261205115834");
        assert_eq!(r.state, RowState::Applied);
        assert_eq!(r.name.as_deref(), Some("create users"));
        let c = r.checksum.expect("checksum");
        assert_eq!(c.matches(file), Some(true));
        assert_eq!(c.matches("CREATE TABLE users (id int);\n"), Some(false));
        assert_eq!(hex.len(), 96);
        let failed = row(Tool::Sqlx, &cols(&[Some("3"), Some("f"), None, None, None]));
        assert_eq!(failed.state, RowState::Failed);
    }

    #[test]
    fn prisma_rows_and_checksums_follow_the_engine() {
        let file = "CREATE TABLE a (id int);\n";
        let sum: String = Sha256::digest(file.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let applied = row(
            Tool::Prisma,
            &cols(&[
                Some("20240101_init"),
                Some(&sum),
                Some("2024-01-01 00:00:01+00"),
                None,
                Some("2024-01-01 00:00:00+00"),
                Some(""),
            ]),
        );
        assert_eq!(applied.state, RowState::Applied);
        assert_eq!(applied.at.as_deref(), Some("2024-01-01 00:00:01+00"));
        assert_eq!(applied.logs, None);
        let c = applied.checksum.expect("checksum");
        assert_eq!(c.matches(file), Some(true));
        // Checked out with CRLF line endings: Prisma still accepts it.
        assert_eq!(c.matches(&file.replace('\n', "\r\n")), Some(true));
        assert_eq!(c.matches("CREATE TABLE b (id int);\n"), Some(false));
        // Old engines wrote each byte without zero padding.
        let old: String = Sha256::digest(file.as_bytes())
            .iter()
            .map(|b| format!("{b:x}"))
            .collect();
        assert_eq!(Checksum::Sha256Hex(old).matches(file), Some(true));
        let failed = row(
            Tool::Prisma,
            &cols(&[
                Some("x"),
                Some(&sum),
                None,
                None,
                Some("t0"),
                Some("relation \"nope\" does not exist"),
            ]),
        );
        assert_eq!(failed.state, RowState::Failed);
        assert_eq!(failed.at.as_deref(), Some("t0"));
        assert!(failed.logs.is_some());
        let rolled = row(
            Tool::Prisma,
            &cols(&[Some("x"), Some(&sum), None, Some("t1"), Some("t0"), None]),
        );
        assert_eq!(rolled.state, RowState::RolledBack);
    }

    #[test]
    fn django_golang_migrate_and_flyway_rows() {
        let d = row(
            Tool::Django,
            &cols(&[
                Some("shop"),
                Some("0002_add_price"),
                Some("2026-12-05 11:00:00+00"),
            ]),
        );
        assert_eq!(d.key, "shop.0002_add_price");
        assert_eq!(d.app.as_deref(), Some("shop"));
        assert_eq!(d.name.as_deref(), Some("0002_add_price"));
        let g = row(
            Tool::GolangMigrate,
            &cols(&[Some("20240101120000"), Some("t")]),
        );
        assert_eq!(g.state, RowState::Failed);
        let f = row(
            Tool::Flyway,
            &cols(&[
                Some("1.1"),
                Some("f"),
                Some("add index"),
                Some("-123"),
                None,
                Some("BASELINE"),
            ]),
        );
        assert_eq!((f.key.as_str(), f.state), ("1.1", RowState::Failed));
        assert_eq!(f.kind.as_deref(), Some("BASELINE"));
        assert_eq!(f.checksum, Some(Checksum::Crc32(-123)));
        assert_eq!(f.checksum.and_then(|c| c.matches("x")), None);
        let m = row(Tool::Dbmate, &cols(&[Some("001")]));
        assert_eq!(m.key, "001");
    }
}
