//! The relations a statement names, as PostgreSQL would read them: unquoted names folded to
//! lower case, quoted ones taken as written, the schema only when the statement gives one
//! (the caller resolves the rest through `search_path`, e.g. with `to_regclass`).

use serde::Serialize;
use squawk_syntax::ast;

/// A relation name as written in the statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct QualName {
    /// The schema, when the statement names one.
    pub schema: Option<String>,
    /// The relation.
    pub name: String,
}

impl QualName {
    /// From squawk's `qualifier? . segment` reference (`App.Users`, `"App"."Users"`).
    pub(crate) fn from_path_ref(p: &ast::PathRef) -> Option<Self> {
        let name = p.segment()?.text();
        let schema = p.qualifier().and_then(|q| q.segment()).map(|s| s.text());
        Some(Self { schema, name })
    }

    /// From a definition's path (`CREATE TABLE app.t`).
    pub(crate) fn from_path(p: &ast::Path) -> Option<Self> {
        let name = p.segment()?.text();
        let schema = p.qualifier().and_then(|q| q.segment()).map(|s| s.text());
        Some(Self { schema, name })
    }

    /// The name as `regclass` input (`"app"."users"`), quoted so that case and odd characters
    /// survive: what `to_regclass($1)` needs to find exactly this relation.
    pub fn regclass_text(&self) -> String {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        match &self.schema {
            Some(s) => format!("{}.{}", q(s), q(&self.name)),
            None => q(&self.name),
        }
    }

    /// Whether two names may be the same relation: equal names, and equal schemas when both
    /// give one (an unqualified name may be in any schema of the search path).
    pub fn may_be(&self, other: &QualName) -> bool {
        self.name == other.name
            && match (&self.schema, &other.schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for QualName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What a statement names: a table, or an index (whose table the caller looks up in
/// `pg_index`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    /// A table (or another relation that holds rows: a materialized view, a partition).
    Table {
        /// Its name.
        #[serde(flatten)]
        name: QualName,
    },
    /// An index, by its own name.
    Index {
        /// Its name.
        #[serde(flatten)]
        name: QualName,
    },
}

impl Target {
    /// The name, table or index.
    pub fn name(&self) -> &QualName {
        match self {
            Self::Table { name } | Self::Index { name } => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regclass_text_quotes_and_may_be_matches_unqualified() {
        let q = QualName {
            schema: Some("App".into()),
            name: "we\"ird".into(),
        };
        assert_eq!(q.regclass_text(), "\"App\".\"we\"\"ird\"");
        let bare = QualName {
            schema: None,
            name: "we\"ird".into(),
        };
        assert!(q.may_be(&bare) && bare.may_be(&q));
        let other = QualName {
            schema: Some("public".into()),
            name: "we\"ird".into(),
        };
        assert!(!q.may_be(&other));
        assert_eq!(bare.to_string(), "we\"ird");
    }
}
