//! What `dbinit lint` (and `plan`, and `run`'s log) says about the files it reviewed:
//! each finding with its verdict here, the reason, the statement, the lock and what it does
//! meanwhile, the live facts of the tables it touches, and the safe recipe. Serialized as
//! the JSON `--output json` prints (its schema: `crates/dbinit-core/lint.schema.json`).

use serde::Serialize;

use super::facts::TableFacts;
use super::settings::{Level, human_bytes};
use dbinit_lint::{Class, Effect, Lock};

/// Where the facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// No database: table sizes unknown, every existing table assumed large.
    Static,
    /// The application's database, read-only.
    Live,
    /// The database does not exist yet: every table is new.
    NewDatabase,
}

/// The statement a finding is about.
#[derive(Debug, Clone, Serialize)]
pub struct StatementRef {
    /// Its position in the file, from 0.
    pub index: usize,
    /// Its first line, from 1.
    pub line: usize,
    /// Its last line.
    pub end_line: usize,
    /// Byte range in the file.
    pub start: u32,
    /// End of the byte range.
    pub end: u32,
    /// Its first line, shortened.
    pub excerpt: String,
}

/// One finding, judged.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    /// The rule (`require-concurrent-index-creation`).
    pub rule: String,
    /// `squawk` or `dbinit`.
    pub source: &'static str,
    /// How bad it is by nature.
    pub class: Class,
    /// How bad it is here.
    pub verdict: Level,
    /// Why that verdict.
    pub reason: String,
    /// What the rule says.
    pub message: String,
    /// The safe way.
    pub recipe: Option<String>,
    /// The finding's line.
    pub line: usize,
    /// Its statement, if it is about one.
    pub statement: Option<StatementRef>,
    /// The lock the statement takes.
    pub lock: Option<Lock>,
    /// What the lock blocks, in words.
    pub blocks: Option<&'static str>,
    /// What the statement does meanwhile.
    pub effect: Effect,
    /// The relations it names, as written (`app.users`, `users`).
    pub targets: Vec<String>,
    /// The tables it touches, with their facts when a database was read.
    pub tables: Vec<TableFacts>,
    /// Acknowledged with `-- dbinit:allow=`.
    pub allowed: bool,
}

/// One reviewed file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReview {
    /// `V3__orders_index` or the path given.
    pub name: String,
    /// Whether it runs in a transaction.
    pub transaction: bool,
    /// How many statements squawk found.
    pub statements: usize,
    /// Its findings, in order.
    pub findings: Vec<Judged>,
}

/// How many findings have each verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Safe here.
    pub ok: usize,
    /// Worth a look.
    pub warn: usize,
    /// Unsafe here.
    pub block: usize,
}

/// The whole review.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// The PostgreSQL version the rules assumed (`15.4`).
    pub pg_version: String,
    /// Where the table facts came from.
    pub facts: Source,
    /// Each file, in the order it would run.
    pub files: Vec<FileReview>,
    /// Findings by verdict.
    pub counts: Counts,
    /// The worst verdict (`ok` with no findings).
    pub verdict: Level,
}

impl Review {
    /// Whether the review stops a deploy gated at `gate`.
    pub fn fails(&self, gate: Option<Level>) -> bool {
        gate.is_some_and(|g| self.counts_at_least(g) > 0)
    }

    /// How many findings are at `level` or worse.
    pub fn counts_at_least(&self, level: Level) -> usize {
        match level {
            Level::Ok => self.counts.ok + self.counts.warn + self.counts.block,
            Level::Warn => self.counts.warn + self.counts.block,
            Level::Block => self.counts.block,
        }
    }

    /// One line: the counts and where the facts came from.
    pub fn summary(&self) -> String {
        let facts = match self.facts {
            Source::Static => "no database: table sizes unknown",
            Source::Live => "live facts from the database",
            Source::NewDatabase => "the database does not exist yet: every table is new",
        };
        format!(
            "lint: {} file(s), {} block, {} warn, {} ok (PostgreSQL {}; {facts})",
            self.files.len(),
            self.counts.block,
            self.counts.warn,
            self.counts.ok,
            self.pg_version
        )
    }

    /// The review for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in self.files.iter().filter(|f| !f.findings.is_empty()) {
            out.push_str(&format!(
                "{} ({}, {} statement(s))\n",
                f.name,
                if f.transaction {
                    "transaction"
                } else {
                    "no-transaction"
                },
                f.statements
            ));
            for j in &f.findings {
                out.push_str(&j.text());
            }
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }
}

/// A table and its facts in a few words: `public.deals (2000000 rows, 84 MB)`.
pub fn describe_table(t: &TableFacts) -> String {
    if !t.exists {
        return format!("{} (does not exist yet)", t.name);
    }
    let mut parts = Vec::new();
    match t.rows {
        Some(r) => parts.push(format!("~{r} rows")),
        None => parts.push("rows not estimated yet".to_string()),
    }
    if let Some(b) = t.bytes {
        parts.push(human_bytes(b));
    }
    format!("{} ({})", t.name, parts.join(", "))
}

impl Judged {
    /// The finding for people, a few indented lines.
    pub fn text(&self) -> String {
        let mut out = format!(
            "  {:<5} {} (line {}){}\n",
            self.verdict.as_str().to_uppercase(),
            self.rule,
            self.line,
            if self.allowed { " [allowed]" } else { "" }
        );
        if let Some(s) = &self.statement {
            out.push_str(&format!("        {}\n", s.excerpt));
        }
        out.push_str(&format!("        {}\n", self.message));
        if let Some(lock) = self.lock {
            let on = if self.tables.is_empty() && self.targets.is_empty() {
                String::new()
            } else if self.tables.is_empty() {
                format!(" on {}", self.targets.join(", "))
            } else {
                format!(
                    " on {}",
                    self.tables
                        .iter()
                        .map(describe_table)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            out.push_str(&format!(
                "        takes {}{on}: {}; {}\n",
                lock.as_str(),
                lock.blocks(),
                self.effect.as_str()
            ));
        }
        out.push_str(&format!("        verdict: {}\n", self.reason));
        for t in &self.tables {
            for l in &t.locks {
                out.push_str(&format!(
                    "        held now: {} on {}\n",
                    l.describe(),
                    t.name
                ));
            }
        }
        if let Some(r) = &self.recipe {
            out.push_str(&format!("        safe way: {r}\n"));
        }
        out
    }
}
