//! dbinit-lint: what a migration file will do to a live table, before it runs.
//!
//! Input: a file's SQL, whether it runs in a transaction, and the PostgreSQL version.
//! Output ([`FileLint`]): each statement with the tables it touches, the lock it takes and
//! whether it scans or rewrites ([`lock`]); and the findings of squawk's rules (the
//! `squawk-linter` crate, on `squawk-syntax`'s tree, no libpg_query) and of dbinit's own
//! ([`own`](rules::own)), each with its class and the safe recipe ([`rules`]), after
//! `-- dbinit:allow=` and `-- squawk-ignore` comments.
//!
//! Pure: no I/O, no async. Whether a finding blocks a deploy depends on the live table (its
//! size, whether it exists yet, who holds locks on it): the caller judges that.
//!
//! squawk's parser recurses: call [`lint`] on a thread with a large stack (64 MiB is ample
//! for any file under [`MAX_NESTING`], which [`lint`] checks first).

mod allow;
pub mod lock;
pub mod name;
mod own;
pub mod rules;
pub mod targets;
mod version;

use serde::Serialize;
use squawk_linter::{Linter, LinterSettings, Rule, Violation};
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{Parse, SourceFile};

pub use allow::ALLOW_PREFIX;
pub use lock::{Effect, Lock};
pub use name::{QualName, Target};
pub use rules::{Class, RULES, RuleInfo};
pub use version::PgVersion;

/// Files above this size are not linted: the syntax tree takes several times the text's
/// size in memory, and an init container's memory limit is small.
pub const MAX_BYTES: usize = 4 << 20;

/// Files with parentheses nested deeper than this are not linted: the recursive parser
/// would need an unbounded stack (PostgreSQL itself refuses such nesting).
pub const MAX_NESTING: usize = 1000;

/// At most this many syntax errors are reported per file, the last one counting the rest.
const MAX_SYNTAX_ERRORS: usize = 10;

/// One file to lint.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The file's SQL.
    pub sql: &'a str,
    /// Whether dbinit runs it in a transaction (no `-- dbinit:no-transaction` line).
    pub in_transaction: bool,
    /// The server it will run on.
    pub pg_version: PgVersion,
}

/// One statement of the file, with what it does to the tables it names.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    /// Its position in the file, from 0.
    pub index: usize,
    /// Byte offset of its first token.
    pub start: u32,
    /// Byte offset of its end.
    pub end: u32,
    /// Line of its first token, from 1.
    pub line: usize,
    /// Its last line.
    pub end_line: usize,
    /// Its first line, shortened.
    pub excerpt: String,
    /// The relations it touches, the one it acts on first.
    pub targets: Vec<Target>,
    /// The strongest table lock it takes, if any.
    pub lock: Option<Lock>,
    /// What it does to the rows meanwhile.
    pub effect: Effect,
    /// The table it creates (`CREATE TABLE`): new, so safe for the statements after it.
    pub creates: Option<QualName>,
    /// With `IF NOT EXISTS`: the table may be an old one.
    pub creates_if_missing: bool,
}

/// One rule's finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The rule's name (`require-concurrent-index-creation`).
    pub rule: String,
    /// `squawk` or `dbinit`.
    pub source: &'static str,
    /// How bad it is by nature.
    pub class: Class,
    /// What is wrong.
    pub message: String,
    /// The safe way: dbinit's recipe, else squawk's help.
    pub recipe: Option<String>,
    /// The statement it is about (an index into [`FileLint::statements`]); `None` for a
    /// comment between statements.
    pub statement: Option<usize>,
    /// Byte offset where the offending part starts.
    pub start: u32,
    /// Where it ends.
    pub end: u32,
    /// Its line, from 1.
    pub line: usize,
    /// Acknowledged by a `-- dbinit:allow=` comment: reported, never a reason to stop.
    pub allowed: bool,
}

/// The result for one file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileLint {
    /// Every statement, in order.
    pub statements: Vec<Statement>,
    /// Every finding, in order of position.
    pub findings: Vec<Finding>,
}

/// The deepest nesting of parentheses outside quotes and comments (roughly: dollar quotes
/// are not skipped, which only over-counts).
fn nesting(sql: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

fn not_linted(message: String) -> FileLint {
    FileLint {
        statements: Vec::new(),
        findings: vec![Finding {
            rule: rules::own::NOT_LINTED.into(),
            source: "dbinit",
            class: Class::Advice,
            message,
            recipe: rules::info(rules::own::NOT_LINTED).map(|r| r.recipe.to_string()),
            statement: None,
            start: 0,
            end: 0,
            line: 1,
            allowed: false,
        }],
    }
}

/// The statement's range from its first token (leading comments are not part of it).
fn stmt_range(stmt: &ast::Stmt) -> (u32, u32) {
    let r = stmt.syntax().text_range();
    let start = stmt
        .syntax()
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .find(|t| !t.kind().is_trivia())
        .map_or(r.start(), |t| t.text_range().start());
    (start.into(), r.end().into())
}

fn squawk_violations(parse: &Parse<SourceFile>, input: &Input) -> Vec<Violation> {
    let mut exclude: Vec<Rule> = rules::EXCLUDED.iter().map(|(r, _)| *r).collect();
    // In a transaction a failed file is rolled back whole: IF NOT EXISTS buys nothing.
    if input.in_transaction {
        exclude.push(Rule::PreferRobustStmts);
    }
    // One linter per file: it never forgets the findings of an earlier file.
    let mut linter = Linter::with_rules(&[], &exclude);
    linter.settings = LinterSettings {
        pg_version: input.pg_version.squawk(),
        assume_in_transaction: input.in_transaction,
    };
    let mut vs = linter.lint(parse, input.sql);
    // A foreign key fires both rules; an added UNIQUE or PRIMARY KEY gets "use NOT VALID",
    // which PostgreSQL does not accept there: the specific rule says it better.
    let specific = |v: &Violation| {
        matches!(
            v.code,
            Rule::AddingForeignKeyConstraint
                | Rule::DisallowedUniqueConstraint
                | Rule::AddingSerialPrimaryKeyField
        )
    };
    let covered: Vec<_> = vs
        .iter()
        .filter(|v| specific(v))
        .map(|v| v.text_range)
        .collect();
    vs.retain(|v| {
        v.code != Rule::ConstraintMissingNotValid
            || !covered
                .iter()
                .any(|r| r.intersect(v.text_range).is_some_and(|i| !i.is_empty()))
    });
    // An ignore comment naming one of dbinit's rules is not unknown to dbinit.
    vs.retain(|v| {
        v.code != Rule::UnusedIgnore
            || !input
                .sql
                .get(usize::from(v.text_range.start())..usize::from(v.text_range.end()))
                .is_some_and(|n| rules::RULES.iter().any(|r| r.name == n.trim()))
    });
    vs
}

/// Lints one file. Never fails: what squawk cannot parse becomes a `syntax-error` finding.
pub fn lint(input: &Input) -> FileLint {
    if input.sql.len() > MAX_BYTES {
        return not_linted(format!(
            "not linted: {} bytes, above the {} MiB dbinit lints",
            input.sql.len(),
            MAX_BYTES >> 20
        ));
    }
    let depth = nesting(input.sql);
    if depth > MAX_NESTING {
        return not_linted(format!(
            "not linted: parentheses nested {depth} deep, above the {MAX_NESTING} dbinit parses"
        ));
    }
    let text = input.sql;
    let parse = SourceFile::parse(text);
    let stmts: Vec<ast::Stmt> = parse.tree().stmts().collect();
    let ranges: Vec<(u32, u32)> = stmts.iter().map(stmt_range).collect();
    let statement_at = |offset: u32| ranges.iter().position(|&(s, e)| s <= offset && offset < e);

    let lines = allow::Lines::new(text);
    let violations = squawk_violations(&parse, input);
    let own = own::check(&stmts, input.in_transaction, input.pg_version);
    let (allows, ignores) = allow::read(&parse.syntax_node(), text, &ranges);

    let mut findings: Vec<Finding> = Vec::new();
    for v in &violations {
        let name = v.code.to_string();
        let info = rules::info(&name);
        findings.push(Finding {
            class: rules::class_of(&name),
            recipe: info
                .map(|i| i.recipe.to_string())
                .or_else(|| v.help.clone()),
            rule: name,
            source: "squawk",
            message: v.message.clone(),
            statement: statement_at(v.text_range.start().into()),
            start: v.text_range.start().into(),
            end: v.text_range.end().into(),
            line: lines.of(v.text_range.start().into()),
            allowed: false,
        });
    }
    for r in own {
        let line = lines.of(r.start);
        let statement = statement_at(r.start);
        if ignores.covers(r.rule, line)
            || (r.rule == rules::own::CONCURRENTLY_IN_TRANSACTION
                && findings.iter().any(|f| {
                    f.statement == statement
                        && f.rule == "ban-concurrent-index-creation-in-transaction"
                }))
        {
            continue;
        }
        findings.push(Finding {
            rule: r.rule.into(),
            source: "dbinit",
            class: rules::class_of(r.rule),
            message: r.message,
            recipe: rules::info(r.rule).map(|i| i.recipe.to_string()),
            statement,
            start: r.start,
            end: r.end,
            line,
            allowed: false,
        });
    }
    let errors = parse.errors();
    let extra = errors.len().saturating_sub(MAX_SYNTAX_ERRORS);
    for (i, e) in errors.iter().take(MAX_SYNTAX_ERRORS).enumerate() {
        let start = u32::from(e.range().start());
        let more = if i + 1 == MAX_SYNTAX_ERRORS && extra > 0 {
            format!(" (and {extra} more syntax errors in this file)")
        } else {
            String::new()
        };
        findings.push(Finding {
            rule: rules::own::SYNTAX_ERROR.into(),
            source: "dbinit",
            class: Class::Advice,
            message: format!("squawk could not parse this: {e}{more}"),
            recipe: rules::info(rules::own::SYNTAX_ERROR).map(|i| i.recipe.to_string()),
            statement: statement_at(start),
            start,
            end: e.range().end().into(),
            line: lines.of(start),
            allowed: false,
        });
    }
    for f in &mut findings {
        f.allowed = allows.iter().any(|a| {
            (a.statement.is_none() || a.statement == f.statement) && a.rules.contains(&f.rule)
        });
    }
    for a in &allows {
        for name in a.rules.iter().filter(|n| !rules::is_known(n)) {
            findings.push(Finding {
                rule: rules::own::UNKNOWN_RULE.into(),
                source: "dbinit",
                class: Class::Advice,
                message: format!("`-- {ALLOW_PREFIX}{name}` names no rule dbinit knows"),
                recipe: rules::info(rules::own::UNKNOWN_RULE).map(|i| i.recipe.to_string()),
                statement: None,
                start: a.start,
                end: a.end,
                line: lines.of(a.start),
                allowed: false,
            });
        }
    }
    findings.sort_by_key(|f| (f.start, f.rule.clone()));

    let statements = stmts
        .iter()
        .zip(&ranges)
        .enumerate()
        .map(|(index, (stmt, &(start, end)))| {
            let (lock, mut effect) =
                lock::classify(stmt).map_or((None, Effect::None), |(l, e)| (Some(l), e));
            // Only squawk's rule knows which defaults are volatile.
            if findings
                .iter()
                .any(|f| f.statement == Some(index) && f.rule == "adding-field-with-default")
            {
                effect = effect.max(Effect::Rewrite);
            }
            Statement {
                index,
                start,
                end,
                line: lines.of(start),
                end_line: lines.of(end),
                excerpt: targets::excerpt(stmt, 80),
                targets: targets::targets(stmt),
                lock,
                effect,
                creates: targets::creates(stmt),
                creates_if_missing: targets::creates_if_missing(stmt),
            }
        })
        .collect();
    FileLint {
        statements,
        findings,
    }
}

/// Every rule name dbinit can report, for documentation and for checking names.
pub fn rule_names() -> Vec<String> {
    let excluded: Vec<Rule> = rules::EXCLUDED.iter().map(|(r, _)| *r).collect();
    let squawk = Linter::with_rules(&[], &excluded).rules;
    let mut names: Vec<String> = squawk.iter().map(ToString::to_string).collect();
    names.extend(RULES.iter().map(|r| r.name.to_string()));
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests;
