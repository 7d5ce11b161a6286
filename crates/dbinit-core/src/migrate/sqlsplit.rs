//! Splitting a SQL file into statements the way psql does, for migrations that must run
//! outside a transaction: each statement is sent on its own, because a multi-statement query
//! is an implicit transaction, where `CREATE INDEX CONCURRENTLY` fails.
//!
//! Understood: `'strings'` with `''`, `E'escape strings'` with backslashes, `"quoted
//! identifiers"`, dollar quotes (`$$ … $$`, `$fn$ … $fn$`), `-- line comments` and nested
//! `/* block /* comments */ */`. A `;` inside any of them does not end a statement, nor does
//! one inside parentheses (`CREATE RULE … DO ALSO (INSERT …; UPDATE …)`), nor one inside a
//! SQL-standard routine body (`CREATE FUNCTION … BEGIN ATOMIC …; … END`, PostgreSQL 14+),
//! where psql's own rule is followed: in a statement that starts `CREATE [OR REPLACE]
//! FUNCTION|PROCEDURE`, `BEGIN` opens a block, `CASE` inside one opens another, `END` closes.
//! Checked against the real PostgreSQL parser on PostgreSQL 15's regression SQL
//! (tests/splitter.rs). Not understood, as in any server-side SQL: psql's backslash commands
//! and `:variables`, and `standard_conforming_strings = off`.

/// One statement of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement's text, without the terminating `;`, trimmed.
    pub text: &'a str,
    /// 1-based line of the file where it starts.
    pub line: usize,
}

/// Splits `sql` at the semicolons that end a statement. Statements that are only blanks and
/// comments are dropped. An unterminated quote or comment runs to the end of the file, as in
/// psql.
pub fn split<'a>(sql: &'a str) -> Vec<Statement<'a>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut has_code = false;
    let mut depth = Depth::default();
    // Lines are counted once, from where the previous statement started.
    let mut counted = (0, 1);
    let mut push = |out: &mut Vec<Statement<'a>>, from: usize, to: usize, code: bool| {
        if code {
            let raw = &sql[from..to];
            let at = from + (raw.len() - raw.trim_start().len());
            counted = (at, counted.1 + sql[counted.0..at].matches('\n').count());
            out.push(Statement {
                text: raw.trim(),
                line: counted.1,
            });
        }
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(b.len(), |n| i + n + 1);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(b, i + 2);
                continue;
            }
            b'\'' => {
                i = skip_quoted(b, i + 1, b'\'', false);
                has_code = true;
                continue;
            }
            b'"' => {
                i = skip_quoted(b, i + 1, b'"', false);
                has_code = true;
                continue;
            }
            b'$' => {
                if let Some(tag_end) = dollar_tag_end(b, i) {
                    let tag = &sql[i..=tag_end];
                    i = sql[tag_end + 1..]
                        .find(tag)
                        .map_or(b.len(), |n| tag_end + 1 + n + tag.len());
                    has_code = true;
                    continue;
                }
            }
            c if is_ident_start(c) || c.is_ascii_digit() => {
                let word_end = i + b[i..].iter().take_while(|&&c| is_ident(c)).count();
                has_code = true;
                if matches!(c, b'E' | b'e') && word_end == i + 1 && b.get(word_end) == Some(&b'\'')
                {
                    // E'...': backslash escapes.
                    i = skip_quoted(b, word_end + 1, b'\'', true);
                    continue;
                }
                if !c.is_ascii_digit() {
                    depth.word(&sql[i..word_end]);
                }
                i = word_end;
                continue;
            }
            b'(' => depth.parens += 1,
            b')' => depth.parens = depth.parens.saturating_sub(1),
            b';' if depth.parens == 0 && depth.begin == 0 => {
                push(&mut out, start, i, has_code);
                has_code = false;
                depth = Depth::default();
                start = i + 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        if !c.is_ascii_whitespace() {
            has_code = true;
        }
        i += 1;
    }
    push(&mut out, start, b.len(), has_code);
    out
}

/// What psql tracks within one statement to tell whether a `;` ends it: open parentheses, and
/// open `BEGIN`/`CASE` blocks of a SQL-standard routine body.
#[derive(Default)]
struct Depth {
    parens: usize,
    begin: usize,
    /// Words seen so far in the statement.
    words: usize,
    /// First letters of the leading words among CREATE, OR, REPLACE, FUNCTION, PROCEDURE.
    lead: [u8; 4],
}

impl Depth {
    /// psql's rule (src/fe_utils/psqlscan.l), word for word: only in a statement that starts
    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, outside parentheses.
    fn word(&mut self, w: &str) {
        let is = |k: &str| w.eq_ignore_ascii_case(k);
        if self.words < self.lead.len()
            && ["create", "or", "replace", "function", "procedure"]
                .iter()
                .any(|k| is(k))
        {
            self.lead[self.words] = w.as_bytes()[0].to_ascii_lowercase();
        }
        self.words += 1;
        let routine = matches!(
            self.lead,
            [b'c', b'f' | b'p', ..] | [b'c', b'o', b'r', b'f' | b'p']
        );
        if !routine || self.parens > 0 {
            return;
        }
        // CASE also ends with END; it only matters inside a BEGIN.
        if is("begin") || (is("case") && self.begin > 0) {
            self.begin += 1;
        } else if is("end") {
            self.begin = self.begin.saturating_sub(1);
        }
    }
}

/// Index just past a `/* … */` comment whose body starts at `i`; comments nest.
fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < b.len() && depth > 0 {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    i
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Index just past the closing quote; a doubled quote is an escaped one.
fn skip_quoted(b: &[u8], mut i: usize, q: u8, backslash: bool) -> usize {
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
        } else if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// For `$tag$` starting at `i`, the index of its closing `$`; `None` if this `$` is not a
/// dollar quote (a parameter like `$1`).
fn dollar_tag_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if b.get(j).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    while j < b.len() && b[j] != b'$' && is_ident(b[j]) {
        j += 1;
    }
    (b.get(j) == Some(&b'$')).then_some(j)
}

/// The name of the index a `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON …`
/// statement builds, unquoted; `None` for other statements or an unnamed index.
pub fn concurrent_index_name(stmt: &str) -> Option<String> {
    let mut words = Words { s: stmt, i: 0 };
    let mut w = || words.next();
    if !w()?.eq_ignore_ascii_case("create") {
        return None;
    }
    let mut t = w()?;
    if t.eq_ignore_ascii_case("unique") {
        t = w()?;
    }
    if !t.eq_ignore_ascii_case("index") || !w()?.eq_ignore_ascii_case("concurrently") {
        return None;
    }
    let mut t = w()?;
    if t.eq_ignore_ascii_case("if") {
        w()?; // NOT
        w()?; // EXISTS
        t = w()?;
    }
    if t.eq_ignore_ascii_case("on") {
        return None;
    }
    Some(
        match t.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
            Some(q) => q.replace("\"\"", "\""),
            None => t.to_ascii_lowercase(),
        },
    )
}

/// Words of a statement: quoted identifiers whole, comments skipped.
struct Words<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let b = self.s.as_bytes();
        loop {
            while self.i < b.len() && b[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
            if self.s[self.i..].starts_with("--") {
                self.i = self.s[self.i..].find('\n').map_or(b.len(), |n| self.i + n);
            } else if self.s[self.i..].starts_with("/*") {
                self.i = self.s[self.i..]
                    .find("*/")
                    .map_or(b.len(), |n| self.i + n + 2);
            } else {
                break;
            }
        }
        if self.i >= b.len() {
            return None;
        }
        let start = self.i;
        if b[start] == b'"' {
            self.i = skip_quoted(b, start + 1, b'"', false);
        } else {
            while self.i < b.len() && is_ident(b[self.i]) {
                self.i += 1;
            }
            if self.i == start {
                self.i += 1;
            }
        }
        Some(&self.s[start..self.i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<&str> {
        split(sql).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn plain_statements_and_lines() {
        let s = split("CREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1);\n");
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].text, s[0].line), ("CREATE TABLE a (id int)", 1));
        assert_eq!((s[1].text, s[1].line), ("INSERT INTO a VALUES (1)", 3));
    }

    #[test]
    fn semicolons_in_dollar_quoted_function_bodies() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $$ BEGIN PERFORM 1; RETURN 2; END $$ LANGUAGE plpgsql;\n\
                   CREATE FUNCTION g() RETURNS text AS $fn$ SELECT 'a;b' || $$;$$; $fn$ LANGUAGE sql;\n\
                   SELECT 1";
        let t = texts(sql);
        assert_eq!(t.len(), 3, "{t:?}");
        assert!(t[0].ends_with("LANGUAGE plpgsql"));
        assert!(t[1].contains("$fn$ SELECT 'a;b' || $$;$$; $fn$"));
        assert_eq!(t[2], "SELECT 1");
    }

    #[test]
    fn positional_parameters_are_not_dollar_quotes() {
        assert_eq!(texts("PREPARE p AS SELECT $1; SELECT 2").len(), 2);
    }

    #[test]
    fn nested_block_and_line_comments() {
        let sql = "/* outer /* inner; */ still; comment */ SELECT 1; -- trailing; comment\nSELECT 2;\n-- only a comment;\n/* and; this */";
        assert_eq!(
            texts(sql),
            vec![
                "/* outer /* inner; */ still; comment */ SELECT 1",
                "-- trailing; comment\nSELECT 2"
            ]
        );
    }

    #[test]
    fn escape_strings_and_standard_strings() {
        let sql = r"INSERT INTO t VALUES (E'it\'s; fine'); INSERT INTO t VALUES ('it''s; fine'); SELECT 'back\'; SELECT 3";
        let t = texts(sql);
        assert_eq!(t.len(), 4, "{t:?}");
        assert_eq!(t[0], r"INSERT INTO t VALUES (E'it\'s; fine')");
        assert_eq!(t[1], "INSERT INTO t VALUES ('it''s; fine')");
        // A standard string ends at the quote: the backslash is an ordinary character.
        assert_eq!(t[2], r"SELECT 'back\'");
    }

    #[test]
    fn quoted_identifiers_with_semicolons() {
        let t = texts(r#"CREATE TABLE "odd;name" ("col;""x" int); SELECT 1"#);
        assert_eq!(
            t,
            vec![r#"CREATE TABLE "odd;name" ("col;""x" int)"#, "SELECT 1"]
        );
    }

    #[test]
    fn sql_standard_routine_bodies() {
        let sql = "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT CASE WHEN a > 0 THEN a ELSE -a END;\nEND;\n\
                   create or replace procedure p() begin atomic insert into t values (1); end;\n\
                   CREATE FUNCTION g() RETURNS int RETURN 1; SELECT 2";
        let t = texts(sql);
        assert_eq!(t.len(), 4, "{t:?}");
        assert!(t[0].starts_with("CREATE FUNCTION f") && t[0].ends_with("END"));
        assert!(t[1].starts_with("create or replace procedure") && t[1].ends_with("end"));
        assert_eq!(t[2], "CREATE FUNCTION g() RETURNS int RETURN 1");
        assert_eq!(t[3], "SELECT 2");
    }

    #[test]
    fn begin_and_end_elsewhere_are_ordinary_words() {
        // A transaction block, and BEGIN/END as the body of a plpgsql function in quotes.
        let t = texts(
            "BEGIN; SELECT 1; END;\nCREATE TABLE begin_end (\"begin\" int); \
             CREATE FUNCTION h() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql; SELECT 3",
        );
        assert_eq!(t.len(), 6, "{t:?}");
        assert_eq!(t[5], "SELECT 3");
    }

    #[test]
    fn parenthesised_rule_actions() {
        let sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (\n  INSERT INTO log VALUES (new.id);\n  UPDATE c SET n = n + 1;\n);\n\
                   CREATE RULE s AS ON DELETE TO t DO INSTEAD (SELECT 1; SELECT 2); SELECT 3";
        let t = texts(sql);
        assert_eq!(t.len(), 3, "{t:?}");
        assert!(t[0].ends_with("UPDATE c SET n = n + 1;\n)"));
        assert!(t[1].ends_with("(SELECT 1; SELECT 2)"));
    }

    #[test]
    fn identifiers_with_dollars_and_e_prefixes() {
        // `a$b$` is an identifier, not a dollar quote; `tablE'x'` is no escape string.
        let t = texts(r"SELECT a$b$ FROM t; SELECT 'x\'; SELECT E'y\';z'; SELECT 4");
        assert_eq!(t.len(), 4, "{t:?}");
        assert_eq!(t[1], r"SELECT 'x\'");
        assert_eq!(t[2], r"SELECT E'y\';z'");
    }

    #[test]
    fn index_names() {
        let n = |s: &str| concurrent_index_name(s);
        assert_eq!(
            n("CREATE INDEX CONCURRENTLY deals_idx ON deals (a)"),
            Some("deals_idx".into())
        );
        assert_eq!(
            n("create unique index concurrently if not exists Users_Email ON users (email)"),
            Some("users_email".into())
        );
        assert_eq!(
            n(r#"CREATE INDEX CONCURRENTLY "Mixed""Case" ON t (a)"#),
            Some("Mixed\"Case".into())
        );
        assert_eq!(n("CREATE INDEX CONCURRENTLY ON t (a)"), None);
        assert_eq!(n("CREATE INDEX plain_idx ON t (a)"), None);
        assert_eq!(
            n("-- why\nCREATE INDEX /* c */ CONCURRENTLY x ON t (a)"),
            Some("x".into())
        );
    }
}
