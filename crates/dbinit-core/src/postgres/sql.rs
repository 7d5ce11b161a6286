//! Writing SQL text safely: identifiers and literals quoted, table names restricted to plain
//! identifiers. Every statement dbinit builds from a name goes through here.

use crate::setting::ConfigError;

/// A table name, optionally schema-qualified, restricted to plain identifiers so it can be
/// used in SQL text and in messages without surprises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    parts: Vec<String>,
}

impl TableName {
    /// Parses `table` or `schema.table`; letters, digits and `_`, not starting with a digit.
    pub fn parse(label: &str, raw: &str) -> Result<Self, ConfigError> {
        let parts: Vec<String> = raw.split('.').map(str::to_string).collect();
        let ok = parts.len() <= 2
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.len() <= 63
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !p.starts_with(|c: char| c.is_ascii_digit())
            });
        if !ok {
            return Err(ConfigError(format!(
                "invalid {label}: {raw:?} is not a table name (table or schema.table; each part letters, digits and _, not starting with a digit, at most 63 bytes)"
            )));
        }
        Ok(Self { parts })
    }

    /// The name quoted for SQL: `"schema"."table"`.
    pub fn sql(&self) -> String {
        self.parts
            .iter()
            .map(|p| quote_ident(p))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The name as written, for messages and `to_regclass`.
    pub fn plain(&self) -> String {
        self.parts.join(".")
    }
}

/// Quotes an identifier for SQL: wrapped in `"`, inner quotes doubled. Any string, including
/// ones with `;`, spaces or unicode, becomes exactly one identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a string literal for SQL (standard_conforming_strings, on since PostgreSQL 9.1).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(
            quote_ident("a\"b; DROP TABLE x"),
            "\"a\"\"b; DROP TABLE x\""
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
        let t = TableName::parse("X", "app.schema_history").expect("ok");
        assert_eq!(t.sql(), "\"app\".\"schema_history\"");
        for bad in ["", "a.b.c", "x;y", "1abc", "a b"] {
            assert!(TableName::parse("X", bad).is_err(), "{bad}");
        }
    }
}
