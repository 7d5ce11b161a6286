//! The audit table: where each history row that dbinit did not write by running a file came
//! from (a `baseline`, an `adopt` from another tool) and every `repair`, with who and when;
//! and the compatibility floors applied files set (action `compatible-from`, [`crate::migrate::floor`]).
//!
//! It is a table of its own, `dbinit_audit` beside the history table, because refinery's
//! history format has no room for a marker: `name` must match the file and `applied_on` must
//! parse as RFC 3339, or refinery-based tools (and dbinit's own divergence check) would
//! misread the row. Join it on `version` to see a row's origin.
//!
//! [`write`] is the one writer of history rows that dbinit records without running their
//! files: each goes in with its audit row, in one transaction.

use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::migrate::history::{insert_migration_sql, is_wide, update_migration_sql, widen_sql};
use crate::migrate::set::Migration;
use crate::postgres::sql::{TableName, quote_literal};

/// Where the history came from when dbinit recorded it without running the files (`dbinit
/// adopt`, `dbinit baseline` or their settings): the latest such record of `dbinit_audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdoptionRecord {
    /// `adopt` or `baseline`.
    pub action: String,
    /// Where the newest recorded version came from: `_sqlx_migrations version 20230404095503`,
    /// `alembic_version revision b8f15d3a0e96`, `baseline`.
    pub source: String,
    /// How many versions it recorded.
    pub versions: u64,
    /// The highest version it recorded.
    pub version: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Who: the database role and the connection's `application_name`
    /// (`dbinit/<version> <pod>`).
    pub actor: String,
}

impl AdoptionRecord {
    /// One line for `status`.
    pub fn text(&self) -> String {
        let what = if self.action == "baseline" {
            "baselined".to_string()
        } else {
            format!("adopted from {}", self.source)
        };
        format!(
            "{what}: {} version(s) up to {} recorded without running them, at {} by {}",
            self.versions, self.version, self.at, self.actor
        )
    }
}

/// What put an audit row there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `dbinit baseline` or `DBINIT_BASELINE_VERSION`: recorded without running.
    Baseline,
    /// `dbinit adopt` or `DBINIT_ADOPT_FROM`: recorded from another tool's history.
    Adopt,
    /// `dbinit repair`: the checksum (or name) of an applied version replaced by the file's.
    Repair,
}

impl Action {
    /// The word stored in the `action` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Adopt => "adopt",
            Self::Repair => "repair",
        }
    }
}

/// The audit table: `dbinit_audit` in the history table's schema.
pub fn table(history: &TableName) -> TableName {
    let plain = history.plain();
    let name = match plain.rsplit_once('.') {
        Some((schema, _)) => format!("{schema}.dbinit_audit"),
        None => "dbinit_audit".to_string(),
    };
    // A schema that parsed once parses again; fall back to the unqualified name regardless.
    TableName::parse("audit table", &name)
        .or_else(|_| TableName::parse("audit table", "dbinit_audit"))
        .unwrap_or_else(|_| history.clone())
}

/// Creates the audit table if missing (under the migration lock).
pub(crate) fn create_sql(audit: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            action text NOT NULL,
            version bigint NOT NULL,
            name text NOT NULL,
            source text NOT NULL,
            old_checksum text,
            new_checksum text,
            actor text NOT NULL
        )",
        audit.sql()
    )
}

/// One history row that dbinit writes without running its file: the file's version, name and
/// current checksum, and where the row came from.
pub struct Row<'a> {
    /// What happened.
    pub action: Action,
    /// The migration the row records.
    pub file: &'a Migration,
    /// Where the row came from ("baseline", "alembic_version revision b8f15d3a0e96", ...).
    pub source: &'a str,
    /// The checksum the row had before, when it replaces an applied row's (repair); `None`
    /// inserts a new row.
    pub replaces: Option<&'a str>,
}

/// The statement that writes `r`'s audit row; `actor` is the database role and the
/// connection's `application_name` (`dbinit/<version> <pod>`), so the record says who without
/// trusting the client.
fn insert_sql(audit: &TableName, r: &Row<'_>) -> String {
    format!(
        "INSERT INTO {} (action, version, name, source, old_checksum, new_checksum, actor) VALUES ({}, {}, {}, {}, {}, {}, current_user || coalesce(' (' || nullif(current_setting('application_name', true), '') || ')', ''))",
        audit.sql(),
        quote_literal(r.action.as_str()),
        r.file.version(),
        quote_literal(r.file.name()),
        quote_literal(r.source),
        r.replaces.map_or("NULL".to_string(), quote_literal),
        quote_literal(&r.file.checksum().to_string())
    )
}

/// Writes `rows` into the history table, each with its audit row, in one transaction
/// (creating the audit table first); on failure the transaction is rolled back whole and
/// the session left usable.
pub async fn write(
    client: &Client,
    history: &TableName,
    rows: &[Row<'_>],
) -> Result<(), tokio_postgres::Error> {
    let written = client.batch_execute(&write_sql(history, rows)).await;
    if written.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    written
}

/// The one message [`write`] sends.
fn write_sql(history: &TableName, rows: &[Row<'_>]) -> String {
    let audit = table(history);
    let mut sql = format!("{};\nBEGIN;\n", create_sql(&audit));
    // An audit table made by an older dbinit has an int4 version: widen it with the history
    // row that needs it (insert_migration_sql widens the history table itself).
    if rows.iter().any(|r| is_wide(r.file.version())) {
        sql.push_str(&widen_sql(&audit));
        sql.push_str(";\n");
    }
    for r in rows {
        sql.push_str(&match r.replaces {
            None => insert_migration_sql(history, r.file),
            Some(_) => update_migration_sql(history, r.file),
        });
        sql.push_str(";\n");
        sql.push_str(&insert_sql(&audit, r));
        sql.push_str(";\n");
    }
    sql.push_str("COMMIT");
    sql
}

/// The latest adoption or baseline recorded in `history`'s audit table, for `status`;
/// `None` when there is none (or no audit table, or a role that may not read it).
pub async fn adoption(
    client: &Client,
    history: &TableName,
) -> Result<Option<AdoptionRecord>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT action, count(*), max(version)::text, to_char(max(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                (array_agg(source ORDER BY version DESC, id DESC))[1], (array_agg(actor ORDER BY id DESC))[1]
         FROM {} WHERE action IN ('adopt', 'baseline') GROUP BY action ORDER BY max(id) DESC LIMIT 1",
        table(history).sql()
    );
    let rows = match client.simple_query(&sql).await {
        Ok(r) => r,
        Err(e)
            if e.code() == Some(&SqlState::UNDEFINED_TABLE)
                || e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    Ok(rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => {
            let col = |i: usize| r.get(i).unwrap_or_default().to_string();
            Some(AdoptionRecord {
                action: col(0),
                versions: col(1).parse().unwrap_or_default(),
                version: col(2).parse().unwrap_or_default(),
                at: col(3),
                source: col(4),
                actor: col(5),
            })
        }
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lives_beside_the_history_table() {
        let h = TableName::parse("t", "app.schema_history").expect("ok");
        assert_eq!(table(&h).plain(), "app.dbinit_audit");
        let h = TableName::parse("t", "refinery_schema_history").expect("ok");
        assert_eq!(table(&h).plain(), "dbinit_audit");
    }

    #[test]
    fn each_history_row_goes_in_with_its_audit_row_in_one_transaction() {
        let h = TableName::parse("t", "refinery_schema_history").expect("ok");
        let v1 = Migration::dbinit("V1__a", "SELECT 1").expect("ok");
        let v2 = Migration::dbinit("V2__b", "SELECT 2").expect("ok");
        let baseline = |file| Row {
            action: Action::Baseline,
            file,
            source: "baseline",
            replaces: None,
        };
        let sql = write_sql(&h, &[baseline(&v1), baseline(&v2)]);
        assert!(
            sql.starts_with("CREATE TABLE IF NOT EXISTS \"dbinit_audit\""),
            "{sql}"
        );
        assert!(sql.ends_with("COMMIT"), "{sql}");
        assert_eq!(sql.matches("BEGIN;").count(), 1, "{sql}");
        assert_eq!(
            sql.matches("INSERT INTO \"refinery_schema_history\"")
                .count(),
            2
        );
        assert_eq!(sql.matches("INSERT INTO \"dbinit_audit\"").count(), 2);

        let repaired = Row {
            action: Action::Repair,
            file: &v2,
            source: "file V2__b.sql",
            replaces: Some("42"),
        };
        let sql = write_sql(&h, &[repaired]);
        let checksum = v2.checksum().to_string();
        assert!(
            sql.contains(&format!(
                "UPDATE \"refinery_schema_history\" SET checksum = '{checksum}', name = 'b' WHERE version = 2"
            )),
            "{sql}"
        );
        assert!(
            sql.contains(&format!(
                "'repair', 2, 'b', 'file V2__b.sql', '42', '{checksum}'"
            )),
            "{sql}"
        );
    }
}
