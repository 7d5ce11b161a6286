//! From a statement to the relations it touches: the ones whose size and current locks
//! decide whether it is safe on a live database, and the tables it creates (which are new,
//! so always safe for the statements after it).

use squawk_syntax::ast::{self, AstNode};

use crate::name::{QualName, Target};

fn table(r: Option<ast::TableNameRef>) -> Option<Target> {
    r.and_then(|t| t.path_ref())
        .and_then(|p| QualName::from_path_ref(&p))
        .map(|name| Target::Table { name })
}

fn table_rel(r: Option<ast::TableRelationName>) -> Option<Target> {
    table(r.and_then(|t| t.table_name_ref()))
}

fn relation(r: Option<ast::RelationName>) -> Option<Target> {
    r.and_then(|r| r.relation_name_ref())
        .and_then(|r| r.path_ref())
        .and_then(|p| QualName::from_path_ref(&p))
        .map(|name| Target::Table { name })
}

fn index(r: ast::IndexRef) -> Option<Target> {
    r.path_ref()
        .and_then(|p| QualName::from_path_ref(&p))
        .map(|name| Target::Index { name })
}

/// Tables an `ALTER TABLE` reaches beyond its own: the referenced table of each foreign key
/// it adds (locked SHARE ROW EXCLUSIVE and scanned too).
fn referenced(at: &ast::AlterTable) -> Vec<Target> {
    at.actions()
        .filter_map(|a| match a {
            ast::AlterTableAction::AddConstraint(c) => match c.constraint() {
                Some(ast::Constraint::ForeignKeyConstraint(fk)) => table(fk.table_name_ref()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The relations `stmt` touches, first the one it acts on. Empty for statements on no
/// table or on every table (a bare `VACUUM`, `REINDEX DATABASE`).
pub fn targets(stmt: &ast::Stmt) -> Vec<Target> {
    use ast::Stmt as S;
    let mut out: Vec<Target> = match stmt {
        S::AlterTable(s) => {
            let mut v: Vec<Target> = table_rel(s.table_relation_name()).into_iter().collect();
            v.extend(referenced(s));
            v
        }
        S::CreateIndex(s) => table_rel(s.table_relation_name()).into_iter().collect(),
        S::DropIndex(s) => s.index_refs().filter_map(index).collect(),
        S::Reindex(s) => match s.reindex_target() {
            Some(ast::ReindexTarget::ReindexTargetTable(t)) => {
                table(t.table_name_ref()).into_iter().collect()
            }
            Some(ast::ReindexTarget::ReindexTargetIndex(t)) => {
                t.index_ref().and_then(index).into_iter().collect()
            }
            _ => Vec::new(),
        },
        S::Vacuum(s) => s
            .table_and_columns_list()
            .map(|l| {
                l.table_and_columnss()
                    .filter_map(|t| table_rel(t.table_relation_name()))
                    .collect()
            })
            .unwrap_or_default(),
        S::Cluster(s) => match s.cluster_legacy() {
            Some(l) => table(l.on_path().and_then(|o| o.table_name_ref()))
                .into_iter()
                .collect(),
            None => table(s.table_name_ref()).into_iter().collect(),
        },
        S::DropTable(s) => s.table_name_refs().filter_map(|t| table(Some(t))).collect(),
        S::Truncate(s) => s
            .table_list()
            .map(|l| {
                l.table_relation_names()
                    .filter_map(|t| table_rel(Some(t)))
                    .collect()
            })
            .unwrap_or_default(),
        S::Lock(s) => s
            .relation_list()
            .map(|l| {
                l.relation_names()
                    .filter_map(|r| relation(Some(r)))
                    .collect()
            })
            .unwrap_or_default(),
        S::Update(s) => relation(s.relation_name()).into_iter().collect(),
        S::Delete(s) => relation(s.relation_name()).into_iter().collect(),
        S::Insert(s) => s
            .relation_name_ref()
            .and_then(|r| r.path_ref())
            .and_then(|p| QualName::from_path_ref(&p))
            .map(|name| Target::Table { name })
            .into_iter()
            .collect(),
        S::CreateTable(_) | S::CreateTableAs(_) => creates(stmt)
            .map(|name| Target::Table { name })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    out.dedup();
    out
}

/// The table `stmt` creates, if it is a `CREATE TABLE` (with or without `AS`). With
/// `IF NOT EXISTS` it may already exist: the caller decides with the live database.
pub fn creates(stmt: &ast::Stmt) -> Option<QualName> {
    match stmt {
        ast::Stmt::CreateTable(s) => s.table_name().and_then(|t| t.path()),
        ast::Stmt::CreateTableAs(s) => s.table_name().and_then(|t| t.path()),
        _ => None,
    }
    .and_then(|p| QualName::from_path(&p))
}

/// Whether `stmt` is `CREATE TABLE IF NOT EXISTS` (or `CREATE TABLE ... AS` with it): the
/// table it names may be an old one.
pub fn creates_if_missing(stmt: &ast::Stmt) -> bool {
    match stmt {
        ast::Stmt::CreateTable(s) => s.if_not_exists().is_some(),
        ast::Stmt::CreateTableAs(s) => s.if_not_exists().is_some(),
        _ => false,
    }
}

/// The statement's text, for messages: its first line, at most `max` characters.
pub fn excerpt(stmt: &ast::Stmt, max: usize) -> String {
    let text = stmt.syntax().text().to_string();
    let first = text.trim_start().lines().next().unwrap_or("").trim_end();
    if first.chars().count() > max {
        format!("{}…", first.chars().take(max).collect::<String>())
    } else {
        first.to_string()
    }
}
