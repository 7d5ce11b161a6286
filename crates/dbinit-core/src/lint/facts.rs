//! What the live database says about the tables a migration touches: whether each exists
//! yet, its schema-qualified name, estimated rows and size (`pg_class`), and the sessions
//! holding locks on it (`pg_locks`, `pg_stat_activity`). Read-only catalog queries in
//! autocommit, so a `CONNECT`+`SELECT` role can ask and no transaction id is taken. Simple
//! protocol: no named prepared statement for a transaction-mode pooler to mix up.

use std::collections::BTreeMap;

use dbinit_lint::{Lock, PgVersion, Target};
use serde::Serialize;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::Error;
use crate::postgres::sql::quote_literal;

/// A lock another session holds on a table now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldLock {
    /// Its server process.
    pub pid: i32,
    /// The mode (`ACCESS SHARE`).
    pub mode: String,
    /// `application_name`, when visible to this role.
    pub application: Option<String>,
    /// The session's role, when visible.
    pub user: Option<String>,
    /// `active`, `idle in transaction`, ..., when visible.
    pub state: Option<String>,
    /// How long its transaction has been open, in seconds, when visible.
    pub transaction_seconds: Option<i64>,
    /// The mode as a [`Lock`], for the conflict table.
    #[serde(skip)]
    pub lock: Option<Lock>,
}

impl HeldLock {
    /// One line for people, without the query text (it may hold the application's data).
    pub fn describe(&self) -> String {
        format!(
            "pid {} (app: {}, user: {}, {}{}) holds {}",
            self.pid,
            self.application
                .as_deref()
                .filter(|a| !a.is_empty())
                .unwrap_or("-"),
            self.user.as_deref().unwrap_or("?"),
            self.state.as_deref().unwrap_or("state not visible"),
            self.transaction_seconds
                .map(|s| format!(" for {s}s"))
                .unwrap_or_default(),
            self.mode
        )
    }
}

/// One relation as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableFacts {
    /// `schema.table` as resolved (for an index: its table), or the name as written when it
    /// does not exist.
    pub name: String,
    /// Whether it exists now. A table a pending file creates does not: always safe.
    pub exists: bool,
    /// Estimated rows (`pg_class.reltuples`); `None` when never vacuumed or analyzed.
    pub rows: Option<u64>,
    /// Size with indexes and TOAST (`pg_total_relation_size`).
    pub bytes: Option<u64>,
    /// Locks other sessions hold on it now (granted).
    pub locks: Vec<HeldLock>,
}

/// The facts of every relation asked about, by its `regclass` text.
pub type FactsMap = BTreeMap<String, TableFacts>;

fn rows(msgs: Vec<SimpleQueryMessage>) -> Vec<tokio_postgres::SimpleQueryRow> {
    msgs.into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// The server's version, as squawk's rules compare it.
pub async fn server_version(client: &Client) -> Result<PgVersion, Error> {
    let action = "read server_version_num";
    let r = client
        .simple_query("SHOW server_version_num")
        .await
        .map_err(|source| Error::Query {
            action: action.into(),
            source,
        })?;
    let n = rows(r)
        .first()
        .and_then(|r| r.get(0).and_then(|v| v.parse::<u32>().ok()))
        .ok_or_else(|| Error::Answer(format!("{action}: no number in the answer")))?;
    Ok(PgVersion::from_server_version_num(n))
}

/// Reads the facts of `targets` (tables, or indexes: then their table's). Two queries,
/// whatever the number of targets.
pub async fn gather(client: &Client, targets: &[Target]) -> Result<FactsMap, Error> {
    let mut names: Vec<(String, &Target)> = targets
        .iter()
        .map(|t| (t.name().regclass_text(), t))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    names.dedup_by(|a, b| a.0 == b.0);
    let mut out = FactsMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let list = names
        .iter()
        .map(|(n, _)| quote_literal(n))
        .collect::<Vec<_>>()
        .join(", ");
    // to_regclass: NULL, not an error, for what does not exist (yet); an index resolves to
    // its table through pg_index.
    let relations = format!(
        "WITH t AS (SELECT u.name, to_regclass(u.name) AS rel FROM unnest(ARRAY[{list}]::text[]) AS u(name)),
              r AS (SELECT t.name, coalesce(i.indrelid, t.rel) AS oid FROM t LEFT JOIN pg_index i ON i.indexrelid = t.rel)
         SELECT r.name, r.oid::int8::text, n.nspname || '.' || c.relname, c.reltuples::int8::text,
                pg_total_relation_size(c.oid)::text
         FROM r LEFT JOIN pg_class c ON c.oid = r.oid LEFT JOIN pg_namespace n ON n.oid = c.relnamespace"
    );
    let found = client
        .simple_query(&relations)
        .await
        .map_err(|source| Error::Query {
            action: "read the size of the tables the migrations touch (pg_class)".into(),
            source,
        })?;
    let mut oids: BTreeMap<String, String> = BTreeMap::new();
    for r in rows(found) {
        let Some(name) = r.get(0).map(str::to_string) else {
            continue;
        };
        let written = names
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(name.clone(), |(_, t)| t.name().to_string());
        let oid = r.get(1).map(str::to_string);
        let facts = TableFacts {
            name: r.get(2).map_or(written, str::to_string),
            exists: oid.is_some(),
            rows: r
                .get(3)
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(|v| u64::try_from(v).ok()),
            bytes: r.get(4).and_then(|v| v.parse().ok()),
            locks: Vec::new(),
        };
        if let Some(oid) = oid {
            oids.insert(name.clone(), oid);
        }
        out.insert(name, facts);
    }
    if oids.is_empty() {
        return Ok(out);
    }
    let oid_list = oids.values().cloned().collect::<Vec<_>>().join(", ");
    let locks = format!(
        "SELECT l.relation::int8::text, l.pid::text, l.mode, a.application_name, a.usename::text, a.state,
                extract(epoch FROM clock_timestamp() - a.xact_start)::int8::text
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
           AND l.relation::int8 IN ({oid_list})
         ORDER BY l.pid, l.mode"
    );
    let held = client
        .simple_query(&locks)
        .await
        .map_err(|source| Error::Query {
            action: "read the locks held on the tables the migrations touch (pg_locks)".into(),
            source,
        })?;
    for r in rows(held) {
        let (Some(oid), Some(pid)) = (r.get(0), r.get(1).and_then(|p| p.parse().ok())) else {
            continue;
        };
        let mode = r.get(2).unwrap_or("?");
        let lock = Lock::from_pg_mode(mode);
        let held = HeldLock {
            pid,
            mode: lock.map_or(mode.to_string(), |l| l.as_str().to_string()),
            application: r.get(3).map(str::to_string),
            user: r.get(4).map(str::to_string),
            state: r.get(5).map(str::to_string),
            transaction_seconds: r.get(6).and_then(|s| s.parse().ok()),
            lock,
        };
        for (name, _) in oids.iter().filter(|(_, o)| o.as_str() == oid) {
            if let Some(f) = out.get_mut(name) {
                f.locks.push(held.clone());
            }
        }
    }
    Ok(out)
}
