//! The audit table: where each history row that dbinit did not write by running a file came
//! from (a `baseline`, an `adopt` from another tool) and every `repair`, with who and when.
//!
//! It is a table of its own, `dbinit_audit` beside the history table, because refinery's
//! history format has no room for a marker: `name` must match the file and `applied_on` must
//! parse as RFC 3339, or refinery-based tools (and dbinit's own divergence check) would
//! misread the row. Join it on `version` to see a row's origin.

use crate::postgres::sql::{TableName, quote_literal};

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
pub fn create_sql(audit: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            action text NOT NULL,
            version int4 NOT NULL,
            name text NOT NULL,
            source text NOT NULL,
            old_checksum text,
            new_checksum text,
            actor text NOT NULL
        )",
        audit.sql()
    )
}

/// One audit row; `actor` is the database role and the connection's `application_name`
/// (`dbinit/<version> <pod>`), so the record says who without trusting the client.
pub struct Record<'a> {
    /// What happened.
    pub action: Action,
    /// Which version.
    pub version: i32,
    /// The migration's name.
    pub name: &'a str,
    /// Where the row came from ("baseline", "alembic_version revision b8f15d3a0e96", ...).
    pub source: &'a str,
    /// The checksum before (repair only).
    pub old_checksum: Option<&'a str>,
    /// The checksum recorded.
    pub new_checksum: &'a str,
}

/// The statement that writes `r`.
pub fn insert_sql(audit: &TableName, r: &Record<'_>) -> String {
    format!(
        "INSERT INTO {} (action, version, name, source, old_checksum, new_checksum, actor) VALUES ({}, {}, {}, {}, {}, {}, current_user || coalesce(' (' || nullif(current_setting('application_name', true), '') || ')', ''))",
        audit.sql(),
        quote_literal(r.action.as_str()),
        r.version,
        quote_literal(r.name),
        quote_literal(r.source),
        r.old_checksum.map_or("NULL".to_string(), quote_literal),
        quote_literal(r.new_checksum)
    )
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
}
