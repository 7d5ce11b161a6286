//! The table lock each statement takes and what it does to the table while holding it, from
//! PostgreSQL's documentation (ALTER TABLE, CREATE INDEX, REINDEX, explicit locking). squawk
//! keeps its own lock mapping private, so this is dbinit's.

use serde::Serialize;
use squawk_syntax::ast::{self, AstNode};

use crate::own::is_serial;

/// PostgreSQL's table lock modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Lock {
    /// SELECT.
    AccessShare,
    /// SELECT FOR UPDATE/SHARE.
    RowShare,
    /// INSERT, UPDATE, DELETE.
    RowExclusive,
    /// VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY, VALIDATE CONSTRAINT.
    ShareUpdateExclusive,
    /// CREATE INDEX.
    Share,
    /// CREATE TRIGGER, ADD FOREIGN KEY.
    ShareRowExclusive,
    /// REFRESH MATERIALIZED VIEW CONCURRENTLY.
    Exclusive,
    /// Most ALTER TABLE forms, DROP, TRUNCATE, VACUUM FULL, CLUSTER.
    AccessExclusive,
}

const ALL: [Lock; 8] = [
    Lock::AccessShare,
    Lock::RowShare,
    Lock::RowExclusive,
    Lock::ShareUpdateExclusive,
    Lock::Share,
    Lock::ShareRowExclusive,
    Lock::Exclusive,
    Lock::AccessExclusive,
];

impl Lock {
    /// The mode as PostgreSQL's documentation writes it (`ACCESS EXCLUSIVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessShare => "ACCESS SHARE",
            Self::RowShare => "ROW SHARE",
            Self::RowExclusive => "ROW EXCLUSIVE",
            Self::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            Self::Share => "SHARE",
            Self::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            Self::Exclusive => "EXCLUSIVE",
            Self::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// What the application feels while the lock is held.
    pub fn blocks(self) -> &'static str {
        match self {
            Self::AccessShare | Self::RowShare | Self::RowExclusive => "blocks no reads or writes",
            Self::ShareUpdateExclusive => "blocks only other schema changes and VACUUM",
            Self::Share | Self::ShareRowExclusive | Self::Exclusive => "blocks writes, reads go on",
            Self::AccessExclusive => "blocks reads and writes",
        }
    }

    /// The mode from `pg_locks.mode` (`AccessShareLock`).
    pub fn from_pg_mode(mode: &str) -> Option<Self> {
        ALL.into_iter()
            .find(|l| format!("{}Lock", l.as_str().replace(' ', "")).eq_ignore_ascii_case(mode))
    }

    /// Whether a session asking for `self` must wait for one that holds `held`, PostgreSQL's
    /// conflict table.
    pub fn conflicts_with(self, held: Lock) -> bool {
        use Lock::*;
        let (a, b) = if self <= held {
            (self, held)
        } else {
            (held, self)
        };
        match a {
            AccessShare => b == AccessExclusive,
            RowShare => b >= Exclusive,
            RowExclusive => b >= Share,
            ShareUpdateExclusive | Share => b != Share || a != Share,
            ShareRowExclusive | Exclusive | AccessExclusive => true,
        }
    }
}

/// What a statement does to the table's rows while it holds its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Catalog only: quick once it has the lock.
    None,
    /// Writes rows (DML): row locks until commit, WAL and bloat.
    RowWrites,
    /// Reads every row to validate (a constraint, NOT NULL).
    Scan,
    /// Reads and sorts every row to build an index.
    IndexBuild,
    /// Writes a new copy of the table and its indexes.
    Rewrite,
}

impl Effect {
    /// In words, for people.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "catalog only",
            Self::RowWrites => "writes rows",
            Self::Scan => "scans the table",
            Self::IndexBuild => "builds an index (full scan and sort)",
            Self::Rewrite => "rewrites the table",
        }
    }

    /// Whether the time under the lock grows with the table's size.
    pub fn grows_with_table(self) -> bool {
        !matches!(self, Self::None)
    }
}

fn detach_concurrently(d: &ast::DetachPartition) -> bool {
    d.syntax()
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .any(|t| t.text().eq_ignore_ascii_case("concurrently"))
}

fn alter_action(a: &ast::AlterTableAction) -> (Lock, Effect) {
    use Effect::{IndexBuild, Rewrite, Scan};
    use Lock::*;
    use ast::AlterTableAction as A;
    use ast::Constraint as C;
    match a {
        // A volatile default also rewrites: the caller upgrades the effect when squawk says
        // so, since only its rule knows which functions are volatile.
        A::AddColumn(add) => {
            let mut effect = if add.ty().is_some_and(|t| is_serial(&t)) {
                Rewrite
            } else {
                Effect::None
            };
            for c in add.constraints() {
                effect = effect.max(match c {
                    C::PrimaryKeyConstraint(_) | C::UniqueConstraint(_) => IndexBuild,
                    // Identity, or a stored expression: every row gets its value.
                    C::GeneratedConstraint(_) => Rewrite,
                    _ => Effect::None,
                });
            }
            (AccessExclusive, effect)
        }
        A::AddConstraint(c) => match c.constraint() {
            Some(k @ C::ForeignKeyConstraint(_)) => (
                ShareRowExclusive,
                if k.is_not_valid() { Effect::None } else { Scan },
            ),
            Some(k @ C::CheckConstraint(_)) => (
                AccessExclusive,
                if k.is_not_valid() { Effect::None } else { Scan },
            ),
            Some(C::UniqueConstraint(k)) if k.using_index().is_some() => {
                (AccessExclusive, Effect::None)
            }
            // NOT NULL of the key's columns is checked by a scan.
            Some(C::PrimaryKeyConstraint(k)) if k.using_index().is_some() => {
                (AccessExclusive, Scan)
            }
            Some(C::UniqueConstraint(_) | C::PrimaryKeyConstraint(_) | C::ExcludeConstraint(_)) => {
                (AccessExclusive, IndexBuild)
            }
            _ => (AccessExclusive, Effect::None),
        },
        // For a foreign key also ROW SHARE on the referenced table; reads and writes go on.
        A::ValidateConstraint(_) => (ShareUpdateExclusive, Scan),
        A::AlterColumn(c) => match c.option() {
            // No rewrite when binary-coercible (varchar(n) to text or a larger n): only the
            // catalog knows the current type.
            Some(ast::AlterColumnOption::SetType(_)) => (AccessExclusive, Rewrite),
            // Skipped when a valid CHECK (col IS NOT NULL) exists (PostgreSQL 12+).
            Some(ast::AlterColumnOption::SetNotNull(_)) => (AccessExclusive, Scan),
            Some(
                ast::AlterColumnOption::SetStatistics(_)
                | ast::AlterColumnOption::SetOptions(_)
                | ast::AlterColumnOption::ResetOptions(_),
            ) => (ShareUpdateExclusive, Effect::None),
            _ => (AccessExclusive, Effect::None),
        },
        A::SetLogged(_) | A::SetUnlogged(_) | A::SetTablespace(_) | A::SetAccessMethod(_) => {
            (AccessExclusive, Rewrite)
        }
        // On the parent; ACCESS EXCLUSIVE on the partition, scanned unless a CHECK implies
        // the bound.
        A::AttachPartition(_) => (ShareUpdateExclusive, Scan),
        A::DetachPartition(d) => (
            if detach_concurrently(d) {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            },
            Effect::None,
        ),
        A::EnableTrigger(_)
        | A::DisableTrigger(_)
        | A::EnableAlwaysTrigger(_)
        | A::EnableReplicaTrigger(_) => (ShareRowExclusive, Effect::None),
        A::ClusterOn(_) | A::SetWithoutCluster(_) | A::SetOptions(_) | A::ResetOptions(_) => {
            (ShareUpdateExclusive, Effect::None)
        }
        _ => (AccessExclusive, Effect::None),
    }
}

/// The strongest table lock `stmt` takes on the table it acts on, and what it does
/// meanwhile; `None` for statements that lock no table (or only catalogs).
pub fn classify(stmt: &ast::Stmt) -> Option<(Lock, Effect)> {
    use Effect::{IndexBuild, Rewrite, RowWrites, Scan};
    use Lock::*;
    use ast::Stmt as S;
    Some(match stmt {
        S::AlterTable(s) => s
            .actions()
            .map(|a| alter_action(&a))
            .reduce(|(l0, e0), (l, e)| (l0.max(l), e0.max(e)))?,
        S::CreateIndex(s) => (
            if s.concurrently_token().is_some() {
                ShareUpdateExclusive
            } else {
                Share
            },
            IndexBuild,
        ),
        S::DropIndex(s) => (
            if s.concurrently_token().is_some() {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            },
            Effect::None,
        ),
        // Not concurrently: SHARE on the table and ACCESS EXCLUSIVE on each index, which
        // blocks every query planned to use it.
        S::Reindex(s) => (
            if s.is_concurrently() {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            },
            IndexBuild,
        ),
        S::Vacuum(s) if s.is_full() => (AccessExclusive, Rewrite),
        S::Vacuum(_) | S::Analyze(_) => (ShareUpdateExclusive, Scan),
        S::Cluster(_) => (AccessExclusive, Rewrite),
        S::Truncate(_) | S::DropTable(_) => (AccessExclusive, Effect::None),
        S::Update(_) | S::Delete(_) | S::Insert(_) | S::Merge(_) => (RowExclusive, RowWrites),
        S::Refresh(s) => (
            if s.concurrently_token().is_some() {
                Exclusive
            } else {
                AccessExclusive
            },
            Rewrite,
        ),
        S::CreateTrigger(_) => (ShareRowExclusive, Effect::None),
        // A new table; a REFERENCES clause takes SHARE ROW EXCLUSIVE on the referenced one.
        S::CreateTable(_) => (AccessExclusive, Effect::None),
        S::CommentOn(_) => (ShareUpdateExclusive, Effect::None),
        S::Lock(_) => (AccessExclusive, Effect::None),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_table_is_postgresqls() {
        use Lock::*;
        // Rows of the documentation's table 13.2: the modes each one conflicts with.
        let table: [(Lock, &[Lock]); 8] = [
            (AccessShare, &[AccessExclusive]),
            (RowShare, &[Exclusive, AccessExclusive]),
            (
                RowExclusive,
                &[Share, ShareRowExclusive, Exclusive, AccessExclusive],
            ),
            (
                ShareUpdateExclusive,
                &[
                    ShareUpdateExclusive,
                    Share,
                    ShareRowExclusive,
                    Exclusive,
                    AccessExclusive,
                ],
            ),
            (
                Share,
                &[
                    RowExclusive,
                    ShareUpdateExclusive,
                    ShareRowExclusive,
                    Exclusive,
                    AccessExclusive,
                ],
            ),
            (
                ShareRowExclusive,
                &[
                    RowExclusive,
                    ShareUpdateExclusive,
                    Share,
                    ShareRowExclusive,
                    Exclusive,
                    AccessExclusive,
                ],
            ),
            (
                Exclusive,
                &[
                    RowShare,
                    RowExclusive,
                    ShareUpdateExclusive,
                    Share,
                    ShareRowExclusive,
                    Exclusive,
                    AccessExclusive,
                ],
            ),
            (AccessExclusive, &ALL),
        ];
        for (a, conflicting) in table {
            for b in ALL {
                assert_eq!(
                    a.conflicts_with(b),
                    conflicting.contains(&b),
                    "{} vs {}",
                    a.as_str(),
                    b.as_str()
                );
            }
        }
    }

    #[test]
    fn pg_lock_mode_names() {
        assert_eq!(
            Lock::from_pg_mode("AccessShareLock"),
            Some(Lock::AccessShare)
        );
        assert_eq!(
            Lock::from_pg_mode("ShareUpdateExclusiveLock"),
            Some(Lock::ShareUpdateExclusive)
        );
        assert_eq!(Lock::from_pg_mode("SIReadLock"), None);
    }
}
