//! Every rule dbinit reports, squawk's and its own: how bad a finding is by nature (its
//! [`Class`]) and the safe recipe. squawk's `Rule` enum is closed, so a rule is known here
//! by its kebab-case name, the name `-- dbinit:allow=` and `-- squawk-ignore` use.

use serde::Serialize;

/// Why a finding matters, which decides its verdict once the table is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Holds a lock that blocks the application for as long as the table takes to scan,
    /// build or rewrite: harmless on a small or new table, an outage on a large one.
    Locks,
    /// Breaks the old pods that still serve during a rolling update (a dropped or renamed
    /// column or table), whatever the table's size: expand/contract across releases.
    Breaks,
    /// Fails when it runs (CONCURRENTLY inside a transaction), whatever the table.
    Fails,
    /// Advice: worth a look, never a reason to stop a deploy.
    Advice,
}

/// dbinit's own rules, written on squawk's syntax tree where squawk has none.
pub mod own {
    /// `VACUUM FULL`: squawk's prefer-repack only speaks for PostgreSQL 19 and later.
    pub const VACUUM_FULL: &str = "vacuum-full";
    /// `CLUSTER`: likewise.
    pub const CLUSTER: &str = "cluster";
    /// `ADD COLUMN ... serial`: fills every row from a sequence, a rewrite.
    pub const ADDING_SERIAL_COLUMN: &str = "adding-serial-column";
    /// An `UPDATE`/`DELETE` in a file with DDL: row locks and table locks held together.
    pub const BACKFILL_WITH_DDL: &str = "backfill-with-ddl";
    /// A statement that cannot run in a transaction block, in a file that runs in one
    /// (squawk misses a file whose only statement it is).
    pub const CONCURRENTLY_IN_TRANSACTION: &str = "concurrently-in-transaction";
    /// squawk's parser did not understand part of the file (PostgreSQL decides at run time).
    pub const SYNTAX_ERROR: &str = "syntax-error";
    /// A `-- dbinit:allow=` names no rule.
    pub const UNKNOWN_RULE: &str = "unknown-rule";
    /// The file was not linted (too large, or nested too deeply to parse safely).
    pub const NOT_LINTED: &str = "not-linted";
    /// The caller's rule: another session holds a lock the statement must wait for.
    pub const HELD_LOCK: &str = "held-lock";
}

const EXPAND_CONTRACT: &str = "expand/contract: first release code that no longer uses it and let the rollout finish, then drop or rename it in a later release (for a rename: add the new name, write both, backfill, switch reads, drop the old); mark that contract file `-- dbinit:compatible-from=N` (N: the first version of the release that stopped using it) so older releases refuse to run against it";
const NOT_VALID: &str = "add it with NOT VALID (no scan, brief lock), then `ALTER TABLE ... VALIDATE CONSTRAINT` in the next file (a scan that lets reads and writes go on)";
const CONCURRENT_INDEX: &str = "`CREATE INDEX CONCURRENTLY IF NOT EXISTS` in its own file starting with `-- dbinit:no-transaction` (an interrupted build leaves an INVALID index: see DBINIT_REPAIR_INVALID_INDEXES)";
const REPACK: &str = "pg_repack or pg_squeeze rewrite without the long lock; plain VACUUM reclaims space for reuse without one; PostgreSQL 19: REPACK CONCURRENTLY";
const USING_INDEX: &str = "`CREATE UNIQUE INDEX CONCURRENTLY` in a `-- dbinit:no-transaction` file, then `ADD CONSTRAINT ... USING INDEX` in the next (a brief lock)";

/// What dbinit knows about one rule.
#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    /// The rule's name.
    pub name: &'static str,
    /// How bad it is by nature.
    pub class: Class,
    /// The safe way to do the same thing.
    pub recipe: &'static str,
}

/// The rules that matter for a rolling update, with their recipes. squawk's other rules
/// are [`Class::Advice`] with squawk's own help.
pub const RULES: &[RuleInfo] = &[
    RuleInfo {
        name: "require-concurrent-index-creation",
        class: Class::Locks,
        recipe: CONCURRENT_INDEX,
    },
    RuleInfo {
        name: "require-concurrent-index-deletion",
        class: Class::Locks,
        recipe: "`DROP INDEX CONCURRENTLY IF EXISTS` (one index, no CASCADE) in a `-- dbinit:no-transaction` file",
    },
    RuleInfo {
        name: "require-concurrent-reindex",
        class: Class::Locks,
        recipe: "`REINDEX ... CONCURRENTLY` (PostgreSQL 12+) in a `-- dbinit:no-transaction` file",
    },
    RuleInfo {
        name: "require-concurrent-partition-detach",
        class: Class::Locks,
        recipe: "`DETACH PARTITION ... CONCURRENTLY` (PostgreSQL 14+) in a `-- dbinit:no-transaction` file",
    },
    RuleInfo {
        name: "constraint-missing-not-valid",
        class: Class::Locks,
        recipe: NOT_VALID,
    },
    RuleInfo {
        name: "adding-foreign-key-constraint",
        class: Class::Locks,
        recipe: NOT_VALID,
    },
    RuleInfo {
        name: "disallowed-unique-constraint",
        class: Class::Locks,
        recipe: USING_INDEX,
    },
    RuleInfo {
        name: "adding-serial-primary-key-field",
        class: Class::Locks,
        recipe: "`CREATE UNIQUE INDEX CONCURRENTLY` in a `-- dbinit:no-transaction` file, then `ADD CONSTRAINT ... PRIMARY KEY USING INDEX` in the next",
    },
    RuleInfo {
        name: "adding-not-nullable-field",
        class: Class::Locks,
        recipe: "`ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID`; next file: `VALIDATE CONSTRAINT c`; then `SET NOT NULL` (no scan on PostgreSQL 12+) and `DROP CONSTRAINT c`",
    },
    RuleInfo {
        name: "changing-column-type",
        class: Class::Locks,
        recipe: "add a column of the new type, backfill it in batches, switch the application to it, drop the old one (expand/contract); varchar(n) to text or to a larger n does not rewrite",
    },
    RuleInfo {
        name: "adding-field-with-default",
        class: Class::Locks,
        recipe: "add the column without a volatile default (a constant default is free on PostgreSQL 11+), then `SET DEFAULT`, then backfill old rows in batches",
    },
    RuleInfo {
        name: own::ADDING_SERIAL_COLUMN,
        class: Class::Locks,
        recipe: "add a nullable bigint column, create a sequence and `SET DEFAULT nextval(...)`, backfill old rows in batches, then NOT NULL through a validated CHECK",
    },
    RuleInfo {
        name: "prefer-repack",
        class: Class::Locks,
        recipe: REPACK,
    },
    RuleInfo {
        name: own::VACUUM_FULL,
        class: Class::Locks,
        recipe: REPACK,
    },
    RuleInfo {
        name: own::CLUSTER,
        class: Class::Locks,
        recipe: REPACK,
    },
    RuleInfo {
        name: own::BACKFILL_WITH_DDL,
        class: Class::Locks,
        recipe: "move the UPDATE to its own `-- dbinit:no-transaction` file and update in batches by key range, each batch its own statement",
    },
    RuleInfo {
        name: "adding-required-field",
        class: Class::Breaks,
        recipe: "add the column nullable (or with a constant default), backfill, then NOT NULL through a validated CHECK",
    },
    RuleInfo {
        name: "ban-drop-column",
        class: Class::Breaks,
        recipe: EXPAND_CONTRACT,
    },
    RuleInfo {
        name: "ban-drop-table",
        class: Class::Breaks,
        recipe: EXPAND_CONTRACT,
    },
    RuleInfo {
        name: "renaming-column",
        class: Class::Breaks,
        recipe: EXPAND_CONTRACT,
    },
    RuleInfo {
        name: "renaming-table",
        class: Class::Breaks,
        recipe: EXPAND_CONTRACT,
    },
    RuleInfo {
        name: "renaming-object",
        class: Class::Breaks,
        recipe: EXPAND_CONTRACT,
    },
    RuleInfo {
        name: "ban-drop-view",
        class: Class::Breaks,
        recipe: EXPAND_CONTRACT,
    },
    RuleInfo {
        name: "ban-drop-function",
        class: Class::Breaks,
        recipe: EXPAND_CONTRACT,
    },
    RuleInfo {
        name: "ban-drop-type",
        class: Class::Breaks,
        recipe: EXPAND_CONTRACT,
    },
    RuleInfo {
        name: "ban-drop-schema",
        class: Class::Breaks,
        recipe: EXPAND_CONTRACT,
    },
    RuleInfo {
        name: "ban-set-schema",
        class: Class::Breaks,
        recipe: EXPAND_CONTRACT,
    },
    RuleInfo {
        name: "ban-drop-database",
        class: Class::Breaks,
        recipe: "drop databases by hand, never from a migration",
    },
    RuleInfo {
        name: "ban-truncate-cascade",
        class: Class::Breaks,
        recipe: "truncate the tables you mean by name, never with CASCADE",
    },
    RuleInfo {
        name: "transaction-nesting",
        class: Class::Breaks,
        recipe: "leave out BEGIN/COMMIT: dbinit runs each file in its own transaction (or none, with `-- dbinit:no-transaction`)",
    },
    RuleInfo {
        name: "ban-uncommitted-transaction",
        class: Class::Breaks,
        recipe: "leave out BEGIN/COMMIT: dbinit runs each file in its own transaction",
    },
    RuleInfo {
        name: own::CONCURRENTLY_IN_TRANSACTION,
        class: Class::Fails,
        recipe: "make `-- dbinit:no-transaction` the first line of the file (and keep the file to such statements, each idempotent)",
    },
    RuleInfo {
        name: "ban-concurrent-index-creation-in-transaction",
        class: Class::Fails,
        recipe: "make `-- dbinit:no-transaction` the first line of the file (and keep the file to such statements, each idempotent)",
    },
    RuleInfo {
        name: own::HELD_LOCK,
        class: Class::Advice,
        recipe: "dbinit retries the file under its lock_timeout (DBINIT_MIGRATION_LOCK_TIMEOUT) so the application never queues behind it for long; end the long transaction, or deploy when it is over",
    },
    RuleInfo {
        name: own::SYNTAX_ERROR,
        class: Class::Advice,
        recipe: "check the statement: PostgreSQL decides when it runs; squawk's parser may lag behind new syntax",
    },
    RuleInfo {
        name: own::UNKNOWN_RULE,
        class: Class::Advice,
        recipe: "name rules as `dbinit lint` prints them (see docs/reviewing.md)",
    },
    RuleInfo {
        name: own::NOT_LINTED,
        class: Class::Advice,
        recipe: "split the file, or review it by hand",
    },
];

/// dbinit's knowledge of `name`, if the rule is one that matters for a rolling update.
pub fn info(name: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.name == name)
}

/// The class of any rule: from [`RULES`], else advice.
pub fn class_of(name: &str) -> Class {
    info(name).map_or(Class::Advice, |r| r.class)
}

/// Whether `name` is a rule dbinit reports: squawk's (as squawk spells it) or its own.
pub fn is_known(name: &str) -> bool {
    name.parse::<squawk_linter::Rule>().is_ok() || RULES.iter().any(|r| r.name == name)
}

/// squawk rules dbinit does not run, and why.
pub const EXCLUDED: &[(squawk_linter::Rule, &str)] = &[
    (
        squawk_linter::Rule::RequireLockTimeout,
        "dbinit sets lock_timeout itself (DBINIT_MIGRATION_LOCK_TIMEOUT, `-- dbinit:lock-timeout=`) and retries",
    ),
    (
        squawk_linter::Rule::RequireStatementTimeout,
        "dbinit sets statement_timeout itself (DBINIT_STATEMENT_TIMEOUT)",
    ),
];
