//! From findings to verdicts: the same `CREATE INDEX` is fine on a 100-row table and an
//! outage on a 10-million-row one. A finding on a table created earlier in the same run
//! (or that does not exist yet) is always safe; a locking finding is judged by the table's
//! estimated rows and size against the thresholds; one that breaks old pods blocks on any
//! existing table; one that fails at run time always blocks; advice warns.

use dbinit_lint::{Class, FileLint, Finding, QualName, Statement, Target, rules};

use super::facts::{FactsMap, TableFacts};
use super::report::{Counts, FileReview, Judged, Review, Source, StatementRef};
use super::settings::{Level, LintSettings, human_bytes};

/// A linted file, as the review needs it.
pub struct Linted {
    /// Its name.
    pub name: String,
    /// Whether it runs in a transaction.
    pub transaction: bool,
    /// Its compatibility floor, if it declares one.
    pub compatible_from: Option<i64>,
    /// The static result.
    pub lint: FileLint,
}

/// What is known about one table at one statement.
struct Known<'a> {
    /// Created earlier in this run (or the database is new).
    new: bool,
    /// The live facts, when a database was read.
    facts: Option<&'a TableFacts>,
}

fn size_verdict(t: &TableFacts, s: &LintSettings) -> (Level, String) {
    if let Some(b) = t.bytes
        && b >= s.block_bytes
    {
        return (
            Level::Block,
            format!(
                "{} is {}, at least DBINIT_LINT_BLOCK_SIZE ({}): the lock is held for as long as the work takes",
                t.name,
                human_bytes(b),
                human_bytes(s.block_bytes)
            ),
        );
    }
    match t.rows {
        Some(r) if r >= s.block_rows => (
            Level::Block,
            format!(
                "{} has ~{r} rows, at least DBINIT_LINT_BLOCK_ROWS ({}): the lock is held for as long as the work takes",
                t.name, s.block_rows
            ),
        ),
        Some(r) if r >= s.warn_rows => (
            Level::Warn,
            format!(
                "{} has ~{r} rows, at least DBINIT_LINT_WARN_ROWS ({}) but under DBINIT_LINT_BLOCK_ROWS ({})",
                t.name, s.warn_rows, s.block_rows
            ),
        ),
        Some(r) => (
            Level::Ok,
            format!(
                "{} has ~{r} rows, under DBINIT_LINT_WARN_ROWS ({}): over quickly",
                t.name, s.warn_rows
            ),
        ),
        None => (
            Level::Warn,
            format!(
                "{} has no row estimate yet (never vacuumed or analyzed){}",
                t.name,
                t.bytes
                    .map(|b| format!("; it is {}", human_bytes(b)))
                    .unwrap_or_default()
            ),
        ),
    }
}

fn judge(
    f: &Finding,
    main: Option<(&Target, Known)>,
    floor: Option<i64>,
    s: &LintSettings,
) -> (Level, String) {
    if f.allowed {
        return (
            Level::Ok,
            format!("acknowledged with `-- dbinit:allow={}`", f.rule),
        );
    }
    match f.class {
        Class::Fails => (
            Level::Block,
            "it fails when it runs, whatever the table".into(),
        ),
        Class::Advice => (Level::Warn, "advice".into()),
        class => {
            let Some((target, known)) = main else {
                return (Level::Block, "it touches no table dbinit can name".into());
            };
            if known.new || known.facts.is_some_and(|t| !t.exists) {
                return (
                    Level::Ok,
                    format!(
                        "{} is new (created earlier in this run, or not there yet): no one uses it",
                        known
                            .facts
                            .map_or(target.name().to_string(), |t| t.name.clone())
                    ),
                );
            }
            match (class, known.facts) {
                (Class::Breaks, _) if floor.is_some() => (
                    Level::Ok,
                    format!(
                        "a declared contract step (`-- dbinit:compatible-from={0}`): releases whose migrations end below V{0} refuse to run against it",
                        floor.unwrap_or_default()
                    ),
                ),
                (Class::Breaks, _) => (
                    Level::Block,
                    "the old pods still serving during a rolling update use it".into(),
                ),
                (_, Some(t)) => size_verdict(t, s),
                (_, None) => (
                    Level::Block,
                    "no database to size the table by: assumed large (`dbinit plan`, or `dbinit lint` with a connection, judges by its size)".into(),
                ),
            }
        }
    }
}

fn statement_ref(s: &Statement) -> StatementRef {
    StatementRef {
        index: s.index,
        line: s.line,
        end_line: s.end_line,
        start: s.start,
        end: s.end,
        excerpt: s.excerpt.clone(),
    }
}

fn judged(
    f: &Finding,
    stmt: Option<&Statement>,
    facts: Vec<TableFacts>,
    v: (Level, String),
) -> Judged {
    Judged {
        rule: f.rule.clone(),
        source: f.source,
        class: f.class,
        verdict: v.0,
        reason: v.1,
        message: f.message.clone(),
        recipe: f.recipe.clone(),
        line: f.line,
        statement: stmt.map(statement_ref),
        lock: stmt.and_then(|s| s.lock),
        blocks: stmt.and_then(|s| s.lock).map(|l| l.blocks()),
        effect: stmt.map_or(dbinit_lint::Effect::None, |s| s.effect),
        targets: stmt.map_or_else(Vec::new, |s| {
            s.targets.iter().map(|t| t.name().to_string()).collect()
        }),
        tables: facts,
        allowed: f.allowed,
    }
}

/// Findings of another session's locks that `stmt` would wait for.
fn held_locks(stmt: &Statement, facts: &[TableFacts]) -> Vec<Judged> {
    let Some(lock) = stmt.lock else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in facts {
        for h in t
            .locks
            .iter()
            .filter(|h| h.lock.is_some_and(|l| lock.conflicts_with(l)))
        {
            let f = Finding {
                rule: rules::own::HELD_LOCK.into(),
                source: "dbinit",
                class: Class::Advice,
                message: format!(
                    "{} on {}: this statement needs {} and waits behind it, and every query after it waits too",
                    h.describe(),
                    t.name,
                    lock.as_str()
                ),
                recipe: rules::info(rules::own::HELD_LOCK).map(|r| r.recipe.to_string()),
                statement: Some(stmt.index),
                start: stmt.start,
                end: stmt.end,
                line: stmt.line,
                allowed: false,
            };
            out.push(judged(
                &f,
                Some(stmt),
                facts.to_vec(),
                (
                    Level::Warn,
                    "another session holds a conflicting lock now".into(),
                ),
            ));
        }
    }
    out
}

/// Judges every finding of `files`, in run order.
pub fn review(
    files: Vec<Linted>,
    facts: Option<&FactsMap>,
    source: Source,
    pg_version: String,
    s: &LintSettings,
) -> Review {
    let mut created: Vec<QualName> = Vec::new();
    let mut counts = Counts::default();
    let mut out = Vec::new();
    for file in files {
        let lint = &file.lint;
        let mut findings = Vec::new();
        let facts_of = |stmt: &Statement| -> Vec<TableFacts> {
            stmt.targets
                .iter()
                .filter_map(|t| {
                    facts
                        .and_then(|m| m.get(&t.name().regclass_text()))
                        .cloned()
                })
                .collect()
        };
        for f in lint.findings.iter().filter(|f| f.statement.is_none()) {
            findings.push(judged(
                f,
                None,
                Vec::new(),
                judge(f, None, file.compatible_from, s),
            ));
        }
        for stmt in &lint.statements {
            let table_facts = facts_of(stmt);
            let target = stmt.targets.first();
            let live = target.and_then(|t| facts.and_then(|m| m.get(&t.name().regclass_text())));
            let new = target.is_some_and(|t| {
                source == Source::NewDatabase || created.iter().any(|c| c.may_be(t.name()))
            });
            let is_new = new || live.is_some_and(|t| !t.exists);
            for f in lint
                .findings
                .iter()
                .filter(|f| f.statement == Some(stmt.index))
            {
                let main = target.map(|t| (t, Known { new, facts: live }));
                findings.push(judged(
                    f,
                    Some(stmt),
                    table_facts.clone(),
                    judge(f, main, file.compatible_from, s),
                ));
            }
            if !is_new {
                findings.extend(held_locks(stmt, &table_facts));
            }
            if let Some(c) = &stmt.creates {
                let exists_now = facts
                    .and_then(|m| m.get(&c.regclass_text()))
                    .is_some_and(|t| t.exists);
                if !(stmt.creates_if_missing && exists_now) {
                    created.push(c.clone());
                }
            }
        }
        findings.sort_by_key(|j| j.line);
        for j in &findings {
            match j.verdict {
                Level::Ok => counts.ok += 1,
                Level::Warn => counts.warn += 1,
                Level::Block => counts.block += 1,
            }
        }
        out.push(FileReview {
            name: file.name,
            transaction: file.transaction,
            statements: lint.statements.len(),
            findings,
        });
    }
    let verdict = if counts.block > 0 {
        Level::Block
    } else if counts.warn > 0 {
        Level::Warn
    } else {
        Level::Ok
    };
    Review {
        pg_version,
        facts: source,
        files: out,
        counts,
        verdict,
    }
}
