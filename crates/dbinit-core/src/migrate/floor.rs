//! The compatibility floor. A contract step (a dropped column, a renamed table) breaks the
//! code of every release before it: its file declares `-- dbinit:compatible-from=N`, and once
//! it is applied, a release whose migration set ends below N must not run against the
//! database. `run`, `wait` and `status --exit-code` of such a release exit 13 naming the file,
//! so its pods never start on a schema that breaks them (a `helm rollback` past a contract
//! step fails fast instead).
//!
//! The floor is recorded in the audit table (`dbinit_audit`, see [`super::adopt::audit`]), in
//! the transaction that applies the file: one row with action `compatible-from`, the file's
//! version and name, and N in `source`. The history table keeps refinery's format, so older
//! dbinit versions and refinery-based tools read it as before; the audit table is read only by
//! people and by this module. It is read only when the database is ahead of the set (nothing
//! else can be below a floor), so an up-to-date run still costs one round trip.

use tokio_postgres::{Client, SimpleQueryMessage};

use super::adopt::audit;
use super::header;
use super::history::{is_wide, widen_sql};
use super::set::Migration;
use crate::postgres::sql::{TableName, quote_literal};

/// The audit table's action word of a floor row.
pub const ACTION: &str = "compatible-from";

/// Why this release may not run against the database (exit 13).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "database requires a release with migrations >= V{from} ({migration} is incompatible with this image, which ends at V{ends_at})"
)]
pub struct Incompatible {
    /// The floor: the lowest last version a release's set may have.
    pub from: i64,
    /// The applied migration that declared it ("V14__drop_legacy_price").
    pub migration: String,
    /// Where this release's set ends.
    pub ends_at: i64,
}

/// The floor `m` declares, checked against its own version: a file cannot exclude the release
/// that brings it.
pub fn declared(m: &Migration) -> Result<Option<i64>, String> {
    let sql = m.sql();
    let h = header::header(sql)?;
    match h.compatible_from {
        Some(n) if n > m.version() => Err(format!(
            "`{}{n}` is above the file's own version {}: the floor names the first version of the \
             releases that still work (at most V{})",
            header::COMPATIBLE_FROM_DIRECTIVE,
            m.version(),
            m.version()
        )),
        Some(_) if m.no_transaction() => Err(format!(
            "`{}` needs a transactional file: the floor is recorded in the file's own transaction",
            header::COMPATIBLE_FROM_DIRECTIVE
        )),
        n => Ok(n),
    }
}

/// `record` (the statement recording `m` in the history), followed by the statements that
/// record `m`'s floor when it declares one: the same transaction commits both or neither.
pub fn with_record(history: &TableName, m: &Migration, record: String) -> String {
    let Ok(Some(from)) = declared(m) else {
        return record;
    };
    let table = audit::table(history);
    // An audit table an older dbinit made has an int4 version.
    let widen = if is_wide(m.version()) {
        format!("{};\n", widen_sql(&table))
    } else {
        String::new()
    };
    format!(
        "{record};\n{};\n{widen}INSERT INTO {} (action, version, name, source, new_checksum, actor) VALUES ({}, {}, {}, {}, {}, current_user || coalesce(' (' || nullif(current_setting('application_name', true), '') || ')', ''))",
        audit::create_sql(&table),
        table.sql(),
        quote_literal(ACTION),
        m.version(),
        quote_literal(m.name()),
        quote_literal(&from.to_string()),
        quote_literal(&m.checksum().to_string())
    )
}

/// The highest floor recorded in the database, with the file that set it; `None` without
/// floors (or without an audit table).
pub async fn read(
    client: &Client,
    history: &TableName,
) -> Result<Option<(i64, String)>, tokio_postgres::Error> {
    let table = audit::table(history);
    // Simple protocol, quoted literals: nothing for a transaction-mode pooler to mix up.
    let exists = client
        .simple_query(&format!(
            "SELECT to_regclass({}) IS NOT NULL",
            quote_literal(&table.sql())
        ))
        .await?;
    if first(&exists).as_deref() != Some("t") {
        return Ok(None);
    }
    let rows = client
        .simple_query(&format!(
            "SELECT source || ' V' || version || '__' || name FROM {} WHERE action = {} \
             AND source ~ '^[0-9]+$' ORDER BY source::bigint DESC, version DESC LIMIT 1",
            table.sql(),
            quote_literal(ACTION)
        ))
        .await?;
    Ok(first(&rows).and_then(|r| {
        let (from, migration) = r.split_once(' ')?;
        Some((from.parse().ok()?, migration.to_string()))
    }))
}

fn first(messages: &[SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    })
}

/// Whether a set ending at `ends_at` may run under `floor` (from [`read`]).
pub fn check(ends_at: Option<i64>, floor: Option<(i64, String)>) -> Result<(), Incompatible> {
    match floor {
        Some((from, migration)) if ends_at.unwrap_or(0) < from => Err(Incompatible {
            from,
            migration,
            ends_at: ends_at.unwrap_or(0),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mig(name: &str, sql: &str) -> Migration {
        Migration::dbinit(name, sql).expect("migration")
    }

    #[test]
    fn the_message_names_the_floor_the_file_and_where_the_set_ends() {
        let e = check(Some(11), Some((12, "V14__drop_legacy_price".into()))).expect_err("below");
        assert_eq!(
            e.to_string(),
            "database requires a release with migrations >= V12 (V14__drop_legacy_price is \
             incompatible with this image, which ends at V11)"
        );
        assert!(check(Some(12), Some((12, "V14__x".into()))).is_ok());
        assert!(check(Some(3), None).is_ok());
    }

    #[test]
    fn a_floor_is_declared_in_the_header_and_recorded_with_the_history_row() {
        let m = mig(
            "V14__drop",
            "-- dbinit:compatible-from=12\nALTER TABLE t DROP COLUMN c;",
        );
        assert_eq!(declared(&m), Ok(Some(12)));
        let h = TableName::parse("t", "refinery_schema_history").expect("ok");
        let sql = with_record(&h, &m, "INSERT INTO history".into());
        assert!(
            sql.starts_with("INSERT INTO history;\nCREATE TABLE IF NOT EXISTS"),
            "{sql}"
        );
        assert!(sql.contains("'compatible-from', 14, 'drop', '12'"), "{sql}");
        let plain = mig("V3__add", "ALTER TABLE t ADD COLUMN c int;");
        assert_eq!(with_record(&h, &plain, "X".into()), "X");
    }

    #[test]
    fn a_floor_above_its_own_file_or_outside_a_transaction_is_refused() {
        let e = declared(&mig("V5__x", "-- dbinit:compatible-from=6\nSELECT 1;")).expect_err("");
        assert!(e.contains("above the file's own version 5"), "{e}");
        let e = declared(&mig(
            "V5__x",
            "-- dbinit:no-transaction\n-- dbinit:compatible-from=5\nSELECT 1;",
        ))
        .expect_err("");
        assert!(e.contains("transactional"), "{e}");
        let e = declared(&mig("V5__x", "-- dbinit:compatible-from=x\nSELECT 1;")).expect_err("");
        assert!(e.contains("positive integer"), "{e}");
    }
}
