//! Databases dbinit did not build: noticing them, and deciding what to record.
//!
//! A database with no dbinit history is either fresh (nothing in it: apply from V1) or was
//! built another way — by hand, by `alembic upgrade head`, by Flyway… Applying V1 on top of
//! such a schema fails at best, so `run` refuses ([`Refusal`], exit 9) and names what it found
//! and the command or setting that adopts it. Adopting records versions as applied without
//! running them: up to a version the user names (baseline), or up to where the other tool's
//! history says the schema is (adopt). The writing happens in [`mod@baseline`].
//!
//! The room: what the user said ([`settings`]), other tools' history tables ([`tools`]),
//! this file (noticing and deciding), recording ([`mod@baseline`]), accepting an edited file
//! ([`repair`]), and where every such row came from ([`audit`]).

use serde::Serialize;
use tokio_postgres::Client;

pub mod audit;
pub mod baseline;
pub mod own;
pub mod repair;
pub mod settings;
pub mod tools;

pub use crate::migrate::error::Refusal;
pub use settings::{AdoptMap, AdoptSettings, parse_tool, parse_version};

use audit::Action;
use settings::known_versions;
use tools::{Tool, ToolHistory};

use crate::migrate::error::Result;
use crate::migrate::history::DbState;
use crate::migrate::set::MigrationSet;
use crate::migrate::settings::MigrateSettings;
use crate::postgres;

/// What a database holds that dbinit did not put there.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
    /// Tables and views outside the system schemas, not dbinit's and not a tool's history.
    pub tables: Vec<String>,
    /// Other tools' history tables.
    pub tools: Vec<ToolHistory>,
}

impl Findings {
    /// Nothing there: a fresh database.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.tools.is_empty()
    }
}

/// Looks for user tables and other tools' history tables; read-only.
pub async fn inspect(client: &Client, m: &MigrateSettings) -> Result<Findings> {
    let pg =
        |e| postgres::Error::statement("look for tables in a database without dbinit history")(e);
    let tools = tools::find(client).await.map_err(pg)?;
    let ours = [
        m.history.sql(),
        m.seeds_table.sql(),
        audit::table(&m.history).sql(),
    ];
    let theirs: Vec<&str> = tools.iter().map(|t| t.table.as_str()).collect();
    // Simple protocol with quoted literals: a named prepared statement would collide with
    // another client's behind a transaction-mode pooler (PgBouncer).
    let lit = postgres::sql::quote_literal;
    let theirs = theirs.iter().map(|t| lit(t)).collect::<Vec<_>>().join(", ");
    let rows = client
        .simple_query(&format!(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
               AND c.oid <> ALL (ARRAY[coalesce(to_regclass({})::oid, 0), coalesce(to_regclass({})::oid, 0), coalesce(to_regclass({})::oid, 0)])
               AND NOT (c.relname = ANY(ARRAY[{theirs}]::text[]) AND pg_table_is_visible(c.oid))
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
             ORDER BY 1",
            lit(&ours[0]),
            lit(&ours[1]),
            lit(&ours[2])
        ))
        .await
        .map_err(pg)?;
    Ok(Findings {
        tables: rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .map(|t| t.strip_prefix("public.").map(str::to_string).unwrap_or(t))
            .collect(),
        tools,
    })
}

/// Versions to record as applied without running them, and where each came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adoption {
    /// Baseline or adopt.
    #[serde(serialize_with = "action_str")]
    pub action: Action,
    /// The highest version recorded.
    pub version: i64,
    /// (index into the set's migrations, source) for every version up to `version`.
    #[serde(skip)]
    pub rows: Vec<(usize, String)>,
    /// What it means, for messages: "record V1..V7 from alembic_version revision …".
    pub summary: String,
}

fn action_str<S: serde::Serializer>(a: &Action, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(a.as_str())
}

fn rows_up_to(set: &MigrationSet, n: i64, source: impl Fn(i64) -> String) -> Vec<(usize, String)> {
    set.migrations
        .iter()
        .enumerate()
        .filter(|(_, m)| m.version() <= n)
        .map(|(i, m)| (i, source(m.version())))
        .collect()
}

fn span(set: &MigrationSet, n: i64) -> String {
    let label = |m: Option<&crate::migrate::set::Migration>| {
        m.map_or_else(|| format!("V{n}"), ToString::to_string)
    };
    let (first, last) = (set.migrations.first(), set.find(n));
    if first.is_none_or(|f| f.version() == n) {
        label(last)
    } else {
        format!("{}..{}", label(first), label(last))
    }
}

/// Records every version up to `n` as applied, as a baseline.
pub fn baseline(set: &MigrationSet, n: i64) -> Adoption {
    Adoption {
        action: Action::Baseline,
        version: n,
        rows: rows_up_to(set, n, |_| "baseline".to_string()),
        summary: format!(
            "record {} as applied without running them (baseline)",
            span(set, n)
        ),
    }
}

/// Records what another tool's history says is applied, mapped to dbinit versions.
pub fn from_tool(
    set: &MigrationSet,
    h: &ToolHistory,
    map: Option<&AdoptMap>,
) -> Result<Adoption, Refusal> {
    let what = h.describe();
    if let Some(p) = &h.problem {
        return Err(Refusal(format!("cannot adopt {what}: {p}")));
    }
    if map.is_none() && own::reads_own_files(h.tool, set.layout) {
        return own::adopt(set, h);
    }
    // Django's rows span every app (contrib ones too): the schema is at the newest row the
    // map names, not at the newest row.
    let current = match (h.tool, map) {
        (Tool::Django, Some(m)) => h
            .applied
            .iter()
            .filter_map(|a| m.get(a).map(|v| (v, a)))
            .max()
            .map(|(_, a)| a)
            .or(h.current.as_ref()),
        _ => h.current.as_ref(),
    };
    let Some(current) = current else {
        return Err(Refusal(format!(
            "cannot adopt {what}: it records nothing applied"
        )));
    };
    let to_ours = |theirs: &str| match map {
        Some(m) => m.get(theirs),
        None => theirs.parse::<i64>().ok(),
    };
    let n = to_ours(current).ok_or_else(|| {
        Refusal(match map {
            Some(m) => format!(
                "cannot adopt {what}: {} {current} is not in DBINIT_ADOPT_MAP ({}); add `{current} = N` with the dbinit version N it corresponds to",
                h.tool.unit(),
                m.path.display()
            ),
            None => format!(
                "cannot adopt {what}: {} {current} is not a dbinit version number; give DBINIT_ADOPT_MAP (--adopt-map), a file of `{current} = N` lines mapping {}'s versions to dbinit's",
                h.tool.unit(),
                h.tool.name()
            ),
        })
    })?;
    if !set.migrations.iter().any(|m| m.version() == n) {
        return Err(Refusal(format!(
            "cannot adopt {what}: it maps to version {n}, which the migration set does not have (versions {}){}",
            known_versions(set),
            if map.is_none() {
                format!(
                    "; if {}'s versions are not dbinit's, give DBINIT_ADOPT_MAP (--adopt-map), a file of `{current} = N` lines",
                    h.tool.name()
                )
            } else {
                String::new()
            }
        )));
    }
    let exact: Vec<(i64, &String)> = h
        .applied
        .iter()
        .filter_map(|a| to_ours(a).map(|v| (v, a)))
        .collect();
    let rows = rows_up_to(set, n, |v| match exact.iter().find(|(o, _)| *o == v) {
        Some((_, theirs)) => format!("{} {} {theirs}", h.table, h.tool.unit()),
        None => format!("{} at {} {current}", h.table, h.tool.unit()),
    });
    Ok(Adoption {
        action: Action::Adopt,
        version: n,
        rows,
        summary: format!(
            "record {} as applied without running them, from {}",
            span(set, n),
            what
        ),
    })
}

/// Picks the tool to adopt from: the one asked for, else the only one found.
pub fn pick(found: &Findings, tool: Option<Tool>) -> Result<&ToolHistory, Refusal> {
    match tool {
        Some(t) => found.tools.iter().find(|h| h.tool == t).ok_or_else(|| {
            Refusal(format!(
                "cannot adopt from {}: its history table {} was not found{}",
                t.name(),
                t.table(),
                found
                    .tools
                    .first()
                    .map(|h| format!(" (found {})", h.describe()))
                    .unwrap_or_default()
            ))
        }),
        None => match found.tools.as_slice() {
            [one] => Ok(one),
            [] => Err(Refusal(
                "no other tool's history table found (alembic_version, flyway_schema_history, schema_migrations, _sqlx_migrations, django_migrations, _prisma_migrations); record what the schema holds with `dbinit baseline --version N` instead".into(),
            )),
            many => Err(Refusal(format!(
                "several tools' history tables found ({}): say which with --from (DBINIT_ADOPT_FROM)",
                many.iter().map(|h| h.table.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        },
    }
}

/// For `run` (and `plan`): on a database with no dbinit history that is not empty, what the
/// settings say to record, or the refusal. `None`: nothing to adopt (history exists, or the
/// database is empty and a run starts from V1).
pub async fn decide(
    client: &Client,
    m: &MigrateSettings,
    state: &DbState,
    database: &str,
) -> Result<Option<Adoption>> {
    if !state.migrations.is_empty() || m.set.migrations.is_empty() {
        return Ok(None);
    }
    let found = inspect(client, m).await?;
    // An empty history table that an earlier run created, beside tables but no other tool's
    // history, is dbinit's own unfinished start when V1 runs outside a transaction: such a
    // file runs again from the start (it is idempotent), so this is not a foreign schema.
    let our_first_file_was_interrupted = state.initialized
        && found.tools.is_empty()
        && m.set.migrations.first().is_some_and(|f| f.no_transaction());
    if found.is_empty() || our_first_file_was_interrupted {
        return Ok(None);
    }
    if let Some(n) = m.adopt.baseline {
        return Ok(Some(baseline(&m.set, n)));
    }
    if m.adopt.from.is_some() {
        let h = pick(&found, m.adopt.from)?;
        return Ok(Some(from_tool(&m.set, h, m.adopt.map.as_ref())?));
    }
    Err(refusal(database, m, &found).into())
}

/// The message of a blind run: what is there, and the exact ways to adopt it.
pub fn refusal(database: &str, m: &MigrateSettings, found: &Findings) -> Refusal {
    let mut what = Vec::new();
    for h in &found.tools {
        what.push(h.describe());
    }
    if !found.tables.is_empty() {
        const SHOWN: usize = 8;
        let more = found.tables.len().saturating_sub(SHOWN);
        what.push(format!(
            "{} table(s): {}{}",
            found.tables.len(),
            found.tables[..found.tables.len().min(SHOWN)].join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    let first = m
        .set
        .migrations
        .first()
        .map(|m| m.to_string())
        .unwrap_or_default();
    let how = match found.tools.as_slice() {
        [h] => {
            let own = own::reads_own_files(h.tool, m.set.layout);
            let map = if !own && (matches!(h.tool, Tool::Alembic | Tool::Django) || h.current.as_deref().is_some_and(|c| c.parse::<i64>().is_err())) {
                format!(
                    " with DBINIT_ADOPT_MAP (--adopt-map) naming a file of `{} = N` lines that map {}'s {}s to dbinit versions",
                    h.current.as_deref().unwrap_or("theirs"),
                    h.tool.name(),
                    h.tool.unit()
                )
            } else {
                String::new()
            };
            format!(
                "adopt its history with `dbinit adopt --from {id}`{map}, or set DBINIT_ADOPT_FROM={id} on this container; or record what the schema holds with `dbinit baseline --version N` (DBINIT_BASELINE_VERSION=N)",
                id = h.tool.id()
            )
        }
        [] => "record the version the schema corresponds to with `dbinit baseline --version N`, or set DBINIT_BASELINE_VERSION=N on this container".to_string(),
        _ => "adopt one tool's history with `dbinit adopt --from TOOL` (DBINIT_ADOPT_FROM=TOOL), or record a version with `dbinit baseline --version N` (DBINIT_BASELINE_VERSION=N)".to_string(),
    };
    Refusal(format!(
        "database {database:?} has no dbinit history ({}) but is not empty: found {}; dbinit will not apply {first} on top of it. To switch to dbinit, {how}; `dbinit plan` shows what that would do (docs/adopting.md)",
        m.history.plain(),
        what.join("; and ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> (tempfile::TempDir, MigrationSet) {
        let d = tempfile::tempdir().expect("tmp");
        for (n, s) in [("V1__a.sql", "a"), ("V2__b.sql", "b"), ("V3__c.sql", "c")] {
            std::fs::write(d.path().join(n), s).expect("write");
        }
        let s = MigrationSet::from_dir(d.path(), None, None).expect("set");
        (d, s)
    }

    fn history(tool: Tool, applied: &[&str], current: &str) -> ToolHistory {
        ToolHistory {
            tool,
            table: tool.table().into(),
            applied: applied.iter().map(|s| s.to_string()).collect(),
            current: Some(current.into()),
            problem: None,
            rows: Vec::new(),
        }
    }

    #[test]
    fn numeric_tools_map_by_number_and_name_each_row() {
        let (_d, s) = set();
        let a = from_tool(&s, &history(Tool::Sqlx, &["1", "2"], "2"), None).expect("ok");
        assert_eq!(a.version, 2);
        assert_eq!(
            a.rows,
            vec![
                (0, "_sqlx_migrations version 1".to_string()),
                (1, "_sqlx_migrations version 2".to_string())
            ]
        );
        let e = from_tool(&s, &history(Tool::Dbmate, &["20240101"], "20240101"), None)
            .expect_err("timestamps need a map");
        assert!(e.0.contains("DBINIT_ADOPT_MAP"), "{}", e.0);
        let e = from_tool(&s, &history(Tool::Flyway, &["7"], "7"), None).expect_err("no V7");
        assert!(e.0.contains("does not have"), "{}", e.0);
    }

    #[test]
    fn alembic_heads_map_through_the_file() {
        let (_d, s) = set();
        let map = AdoptMap::parse("r1 = 1\nr3 = 3\n", std::path::Path::new("m"), &s).expect("ok");
        let a = from_tool(&s, &history(Tool::Alembic, &["r3"], "r3"), Some(&map)).expect("ok");
        assert_eq!(a.version, 3);
        assert_eq!(a.rows[0].1, "alembic_version at revision r3");
        assert_eq!(a.rows[2].1, "alembic_version revision r3");
        // Django: contrib apps' rows come after the project's; the newest mapped row counts.
        let map = AdoptMap::parse(
            "shop.0001_initial = 1\nshop.0002_b = 2\n",
            std::path::Path::new("m"),
            &s,
        )
        .expect("ok");
        let django = history(
            Tool::Django,
            &[
                "auth.0001_initial",
                "shop.0001_initial",
                "shop.0002_b",
                "sessions.0001_initial",
            ],
            "sessions.0001_initial",
        );
        let a = from_tool(&s, &django, Some(&map)).expect("ok");
        assert_eq!(a.version, 2);
        assert_eq!(a.rows[1].1, "django_migrations migration shop.0002_b");
        let mut dirty = history(Tool::GolangMigrate, &["2"], "2");
        dirty.problem = Some("dirty".into());
        assert!(from_tool(&s, &dirty, None).is_err());
    }
}
