//! dbinit's statement splitter against the real PostgreSQL parser, on PostgreSQL 15's own
//! regression SQL: every file of `src/test/regress/sql/` (fetched and cached by
//! `scripts/pg-regress-sql.sh`) is split by `dbinit_core::migrate::sqlsplit::split` and by an oracle
//! built on libpg_query (the `pg_query` crate), and the statement boundaries must be the same.
//!
//! The oracle: the PostgreSQL scanner finds every `;` token outside strings and comments; the
//! text from the statement's start through that `;` is handed to the PostgreSQL parser. If the
//! parser says "syntax error at end of input", that `;` sits inside a statement the grammar has
//! not finished (a `BEGIN ATOMIC` body, a parenthesised rule action list) and the statement
//! goes on; any other outcome, success or another error, ends the statement there, as psql
//! ends a statement at a `;`. (The corpus tests error messages, so many statements are
//! meant to fail; `split_with_parser` on a whole file would stop at the first of them.)
//!
//! psql client features are not SQL; both splitters see the SQL psql would send (module
//! `psql`, which says how each is handled).
//!
//! Where psql and the parser part ways, dbinit follows psql: a `;` inside an unclosed `(` does
//! not end the statement. Outside psql.sql (excluded, below) the corpus has no such case.

use std::path::PathBuf;
use std::time::Instant;

use dbinit_tests::{Pg, command, run};
use pg_query::protobuf::{ScanToken, Token};

#[path = "splitter/psql.rs"]
mod psql;
use psql::{is, is_comment, psql_to_sql};

/// Files left out of the comparison, and why.
const EXCLUDED: &[(&str, &str)] = &[(
    "psql.sql",
    "tests psql itself: what it sends depends on client-side evaluation (`\\if`/`\\elif`/`\\else` \
     branches whose text is never sent, `\\\\` separating several backslash commands and SQL \
     on one line, variables expanded inside backslash commands), which is psql's logic, not \
     SQL's; e.g. line 852 `select \\if false \\\\ (bogus \\else \\\\ 42 \\endif \\\\ forty_two;` \
     sends `select 42 forty_two;`",
)];

/// Where the corpus is: `DBINIT_PG_REGRESS_SQL`, else the cache the script fills.
fn corpus_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DBINIT_PG_REGRESS_SQL") {
        return d.into();
    }
    let cache = std::env::var_os("DBINIT_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("dbinit")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/dbinit")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache/dbinit"));
    cache.join("pg15-regress-sql")
}

fn scan(sql: &str, what: &str) -> Vec<ScanToken> {
    match pg_query::scan_tokens(sql) {
        Ok(t) => t,
        Err(e) => panic!("{what}: the PostgreSQL scanner failed: {e}"),
    }
}

/// Statement spans `(start of first token, end of last token)`, comments and the terminating
/// `;` not counted, from `ends`: the byte offsets where statements end.
fn spans(toks: &[ScanToken], ends: &[usize], len: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    for &end in ends.iter().chain(std::iter::once(&len)) {
        // Stray `;`s before a statement (`…;\n;`) are empty statements of their own.
        out.extend(span(toks, from, end, true));
        from = end + 1;
    }
    out
}

/// The span of the tokens that start in `from..to`, comments (and with `skip_semis`, leading
/// `;`s) not counted; `toks` are in text order.
fn span(toks: &[ScanToken], from: usize, to: usize, skip_semis: bool) -> Option<(usize, usize)> {
    let lo = toks.partition_point(|t| (t.start as usize) < from);
    let hi = toks.partition_point(|t| (t.start as usize) < to);
    let mut inside = toks[lo..hi]
        .iter()
        .filter(|t| !is_comment(t))
        .skip_while(|t| skip_semis && is(t, Token::Ascii59));
    let first = inside.next()?;
    let last = inside.last().unwrap_or(first);
    Some((first.start as usize, last.end as usize))
}

/// The oracle's statement ends (offsets of the terminating `;`).
fn oracle_ends(sql: &str, toks: &[ScanToken]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut start: Option<usize> = None;
    for t in toks.iter().filter(|t| !is_comment(t)) {
        if !is(t, Token::Ascii59) {
            start.get_or_insert(t.start as usize);
            continue;
        }
        let Some(s) = start else {
            continue; // an empty statement
        };
        let text = &sql[s..t.end as usize];
        let more = matches!(pg_query::split_with_parser(text), Err(e) if e.to_string().contains("at end of input"));
        if !more {
            ends.push(t.start as usize);
            start = None;
        }
    }
    ends
}

/// dbinit's statements, as spans of the scanner's tokens.
fn dbinit_spans(sql: &str, toks: &[ScanToken]) -> Vec<(usize, usize)> {
    let base = sql.as_ptr() as usize;
    dbinit_core::migrate::sqlsplit::split(sql)
        .iter()
        .filter_map(|s| {
            let from = s.text.as_ptr() as usize - base;
            span(toks, from, from + s.text.len(), false)
        })
        .collect()
}

fn line_of(sql: &str, at: usize) -> usize {
    sql[..at].matches('\n').count() + 1
}

fn excerpt(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.len() > 160 {
        format!("{}…", &one[..one.floor_char_boundary(160)])
    } else {
        one
    }
}

#[test]
fn same_boundaries_as_the_postgresql_parser_on_its_regression_sql() {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect(),
        Err(e) => panic!(
            "{}: {e}: run scripts/pg-regress-sql.sh once (fetches PostgreSQL 15's regression SQL from Debian's source package), or set DBINIT_PG_REGRESS_SQL",
            dir.display()
        ),
    };
    files.sort();
    assert!(
        files.len() >= 200,
        "only {} files in {}",
        files.len(),
        dir.display()
    );

    let started = Instant::now();
    let (mut compared, mut statements, mut multi) = (0, 0, 0);
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        if EXCLUDED.iter().any(|(f, _)| *f == name) {
            continue;
        }
        let raw = match std::fs::read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let Some(sql) = psql_to_sql(&raw, name) else {
            failures.push(format!(
                "{name}: the PostgreSQL scanner rejects it (see above)"
            ));
            continue;
        };
        let toks = scan(&sql, name);
        let want = spans(&toks, &oracle_ends(&sql, &toks), sql.len());
        let got = dbinit_spans(&sql, &toks);
        compared += 1;
        statements += want.len();
        let semis: Vec<usize> = toks
            .iter()
            .filter(|t| is(t, Token::Ascii59))
            .map(|t| t.start as usize)
            .collect();
        multi += want
            .iter()
            .filter(|(f, t)| {
                semis.partition_point(|&p| p < *f) < semis.partition_point(|&p| p < *t)
            })
            .count();
        if let Some(i) = (0..want.len().max(got.len())).find(|&i| want.get(i) != got.get(i)) {
            let show = |s: Option<&(usize, usize)>| {
                s.map_or("(none)".to_string(), |&(f, t)| {
                    format!("line {}: {}", line_of(&sql, f), excerpt(&sql[f..t]))
                })
            };
            failures.push(format!(
                "{name}: statement {} differs ({} from the parser, {} from dbinit)\n  parser: {}\n  dbinit: {}",
                i + 1,
                want.len(),
                got.len(),
                show(want.get(i)),
                show(got.get(i))
            ));
        }
    }
    let took = started.elapsed();
    println!(
        "{compared} files, {statements} statements ({multi} with a `;` inside) compared in {took:.1?}"
    );
    for (file, why) in EXCLUDED {
        println!("excluded {file}: {why}");
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} files differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        statements > 10_000 && multi >= 10,
        "{statements} statements, {multi} with an inner `;`"
    );
}

/// The statements the splitter now keeps whole, applied by the real binary to a real server
/// in a `-- dbinit:no-transaction` file, next to the CREATE INDEX CONCURRENTLY that needs it.
#[test]
fn no_transaction_file_with_routine_body_and_rule_actions_applies() {
    let pg = Pg::start_new();
    let atomic = pg
        .psql("postgres", "SHOW server_version_num")
        .parse::<u32>()
        .unwrap_or(0)
        >= 140000;
    // BEGIN ATOMIC is PostgreSQL 14+; on 13 a dollar-quoted body keeps the rest of the test.
    let body = if atomic {
        "BEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 'pos' WHEN x < 0 THEN 'neg' ELSE 'zero' END;\nEND"
    } else {
        "AS $$ SELECT CASE WHEN x > 0 THEN 'pos' WHEN x < 0 THEN 'neg' ELSE 'zero' END; $$"
    };
    let sql = format!(
        "-- dbinit:no-transaction\n\
         CREATE TABLE t (id int PRIMARY KEY, v int);\n\
         CREATE TABLE log (id int, note text);\n\
         CREATE FUNCTION sign_word(x int) RETURNS text LANGUAGE sql\n{body};\n\
         CREATE RULE t_log AS ON INSERT TO t DO ALSO (\n  \
           INSERT INTO log VALUES (new.id, 'a; b');\n  \
           INSERT INTO log VALUES (new.id, sign_word(new.v));\n);\n\
         CREATE INDEX CONCURRENTLY t_v_idx ON t (v);\n\
         INSERT INTO t VALUES (1, -5);\n"
    );
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("V1__bodies.sql"), sql).expect("write migration");
    let mut c = command("dbinit");
    c.arg("run")
        .envs(pg.env())
        .env("POSTGRES_DB", "bodies")
        .env("DBINIT_MIGRATIONS_DIR", dir.path())
        .env("DBINIT_TIMEOUT", "60s");
    let out = run(c);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        pg.psql("bodies", "SELECT sign_word(3) || sign_word(0)"),
        "poszero"
    );
    assert_eq!(
        pg.psql(
            "bodies",
            "SELECT string_agg(id || ':' || note, ',' ORDER BY note) FROM log"
        ),
        "1:a; b,1:neg"
    );
    assert_eq!(
        pg.psql(
            "bodies",
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass"
        ),
        "t"
    );
}
