//! dbinit's own rules, on squawk's syntax tree, for what squawk 2.68 does not say: VACUUM
//! FULL and CLUSTER before PostgreSQL 19, a serial column added to an existing table, a
//! backfill in a file with DDL, and a statement that cannot run in a transaction block in a
//! file that runs in one.

use squawk_linter::analyze::possibly_slow_stmt;
use squawk_syntax::ast::{self, AstNode};

use crate::PgVersion;
use crate::rules::own;

/// A finding of one of dbinit's own rules, before statements and ignores are applied.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub rule: &'static str,
    pub start: u32,
    pub end: u32,
    pub message: String,
}

fn raw(rule: &'static str, node: &impl AstNode, message: impl Into<String>) -> Raw {
    let r = node.syntax().text_range();
    // Like squawk, from the first token that is not trivia.
    let start = node
        .syntax()
        .children_with_tokens()
        .find(|x| !x.kind().is_trivia())
        .map_or(r.start(), |x| x.text_range().start());
    Raw {
        rule,
        start: start.into(),
        end: r.end().into(),
        message: message.into(),
    }
}

/// Whether `ty` is one of the serial pseudo-types (a sequence default on every row).
pub(crate) fn is_serial(ty: &ast::Type) -> bool {
    if let ast::Type::PathType(p) = ty
        && let Some(seg) = p.path_ref().and_then(|p| p.segment())
    {
        return matches!(
            seg.text().as_str(),
            "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8"
        );
    }
    false
}

/// What cannot run inside a transaction block, for the message; `None` when `stmt` can.
fn needs_no_transaction(stmt: &ast::Stmt) -> Option<&'static str> {
    match stmt {
        ast::Stmt::CreateIndex(s) if s.concurrently_token().is_some() => {
            Some("CREATE INDEX CONCURRENTLY")
        }
        ast::Stmt::DropIndex(s) if s.concurrently_token().is_some() => {
            Some("DROP INDEX CONCURRENTLY")
        }
        ast::Stmt::Reindex(s) if s.is_concurrently() => Some("REINDEX CONCURRENTLY"),
        ast::Stmt::Vacuum(_) => Some("VACUUM"),
        ast::Stmt::CreateDatabase(_) => Some("CREATE DATABASE"),
        ast::Stmt::DropDatabase(_) => Some("DROP DATABASE"),
        ast::Stmt::AlterSystem(_) => Some("ALTER SYSTEM"),
        ast::Stmt::AlterTable(at) => at.actions().find_map(|a| match a {
            ast::AlterTableAction::DetachPartition(d)
                if d.syntax()
                    .descendants_with_tokens()
                    .filter_map(|e| e.into_token())
                    .any(|t| t.text().eq_ignore_ascii_case("concurrently")) =>
            {
                Some("DETACH PARTITION CONCURRENTLY")
            }
            _ => None,
        }),
        _ => None,
    }
}

/// dbinit's rules over the file's statements.
pub(crate) fn check(stmts: &[ast::Stmt], in_transaction: bool, pg: PgVersion) -> Vec<Raw> {
    let mut out = Vec::new();
    // In a no-transaction file each statement commits on its own: nothing is held together.
    let has_ddl = in_transaction && stmts.iter().any(possibly_slow_stmt);
    // From 19 on squawk's prefer-repack says it.
    let before_repack = pg.major < 19;
    for stmt in stmts {
        if in_transaction && let Some(what) = needs_no_transaction(stmt) {
            out.push(raw(
                own::CONCURRENTLY_IN_TRANSACTION,
                stmt,
                format!("{what} cannot run inside a transaction block, and this file runs in one: it fails with SQLSTATE 25001."),
            ));
        }
        match stmt {
            ast::Stmt::Vacuum(v) if v.is_full() && before_repack => out.push(raw(
                own::VACUUM_FULL,
                v,
                "VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock: no reads or writes until it is done.",
            )),
            ast::Stmt::Cluster(c) if before_repack => out.push(raw(
                own::CLUSTER,
                c,
                "CLUSTER rewrites the table under an ACCESS EXCLUSIVE lock: no reads or writes until it is done.",
            )),
            ast::Stmt::AlterTable(at) => {
                for a in at.actions() {
                    if let ast::AlterTableAction::AddColumn(add) = &a
                        && add.ty().is_some_and(|t| is_serial(&t))
                    {
                        out.push(raw(
                            own::ADDING_SERIAL_COLUMN,
                            add,
                            "Adding a serial column fills every existing row from nextval(): the table is rewritten under an ACCESS EXCLUSIVE lock.",
                        ));
                    }
                }
            }
            ast::Stmt::Update(u) if has_ddl => {
                let unbounded = u.where_clause_or_current_of().is_none();
                out.push(raw(
                    own::BACKFILL_WITH_DDL,
                    u,
                    format!(
                        "UPDATE{} in a file with DDL: its row locks and the DDL's table locks are held together until the file commits.",
                        if unbounded { " without WHERE" } else { "" }
                    ),
                ));
            }
            ast::Stmt::Delete(d) if has_ddl => out.push(raw(
                own::BACKFILL_WITH_DDL,
                d,
                "DELETE in a file with DDL: its row locks and the DDL's table locks are held together until the file commits.",
            )),
            _ => {}
        }
    }
    out
}
