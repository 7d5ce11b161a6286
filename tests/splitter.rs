//! dbinit's statement splitter against the real PostgreSQL parser, on PostgreSQL 15's own
//! regression SQL: every file of `src/test/regress/sql/` (fetched and cached by
//! `scripts/pg-regress-sql.sh`) is split by `dbinit_core::sqlsplit::split` and by an oracle
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
//! psql client features are not SQL and neither splitter sees them: before splitting, each
//! file is turned into the SQL psql would send, blanked out in place (offsets and lines stay):
//! - backslash commands (`\set`, `\d`, `\if`, `\gset`, …) are blanked to the end of the line;
//!   one that sends the query buffer (`\g`, `\gset`, `\gexec`, `\gx`, `\gdesc`,
//!   `\crosstabview`, `\watch`, and `\r` which discards it) ends the statement, so it becomes
//!   a `;`;
//! - `\;` (a `;` that does not send) becomes a plain `;`: both splitters then see two
//!   statements where psql would send one multi-statement query string;
//! - the data lines after `COPY … FROM stdin` and `\copy … from stdin|pstdin`, through the
//!   terminating `\.`, are blanked: they are input for COPY, not SQL.
//!
//! `:variables` stay as they are: lexically they are a `:` and a name or a quoted literal.
//!
//! Two more in-place rewrites, because the oracle's scanner would otherwise reject the whole
//! file: the lines where `standard_conforming_strings` is off are blanked (strings.sql,
//! plpgsql.sql: there psql reads `\'` in '…' as a quote; dbinit, like the scanner, supports
//! only the default `on`), and a token the scanner rejects on purpose (`""`, `123abc`, `0o`,
//! a bad `\u` escape) is replaced by one of the same extent ([`make_scannable`]).
//!
//! Where psql and the parser part ways, dbinit follows psql: a `;` inside an unclosed `(` does
//! not end the statement. Outside psql.sql (excluded, below) the corpus has no such case.

use std::path::PathBuf;
use std::time::Instant;

use pg_query::protobuf::{ScanToken, Token};

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

fn is(t: &ScanToken, k: Token) -> bool {
    t.token == k as i32
}

fn is_comment(t: &ScanToken) -> bool {
    is(t, Token::SqlComment) || is(t, Token::CComment)
}

fn scan(sql: &str, what: &str) -> Vec<ScanToken> {
    match pg_query::scan_tokens(sql) {
        Ok(t) => t,
        Err(e) => panic!("{what}: the PostgreSQL scanner failed: {e}"),
    }
}

/// A scanner error other than running into the end of the text inside a token.
fn hard_error(sql: &str) -> Option<String> {
    match pg_query::scan_tokens(sql) {
        Err(e) if !e.to_string().contains("unterminated") => Some(e.to_string()),
        _ => None,
    }
}

/// Makes `work[pos..]` scannable where the PostgreSQL scanner rejects a token that is
/// deliberately malformed (the server would reject that statement with this error, psql sends
/// it all the same): finds the first line with such a token (bisection over line prefixes)
/// and rewrites it in place, keeping its extent as a token. Returns false for an error it does
/// not know.
fn make_scannable(work: &mut [u8], pos: usize, what: &str) -> bool {
    let text = |w: &[u8], to: usize| String::from_utf8_lossy(&w[pos..to]).into_owned();
    let mut line_ends: Vec<usize> = (pos..work.len()).filter(|&i| work[i] == b'\n').collect();
    line_ends.push(work.len());
    let Some(err) = hard_error(&text(work, work.len())) else {
        return true;
    };
    let k = line_ends.partition_point(|&end| hard_error(&text(work, end)).is_none());
    let end = line_ends[k.min(line_ends.len() - 1)];
    let start = work[..end]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |n| n + 1);
    let line = &mut work[start..end];
    let at = |line: &[u8], pat: &[u8]| line.windows(pat.len()).position(|w| w == pat);
    if err.contains("zero-length delimited identifier") {
        // `""`: an empty quoted identifier; `__` is an identifier of the same extent.
        if let Some(i) = at(line, b"\"\"") {
            line[i..i + 2].copy_from_slice(b"__");
            return true;
        }
    } else if err.contains("trailing junk after") || err.contains("integer at or near") {
        // `123abc`, `$1a`, `0o` (PostgreSQL 15 has no `0o17`): psql's lexer reads a number and
        // a word; so does the scanner once a space separates them.
        let near = err
            .rsplit("at or near \"")
            .next()
            .unwrap_or("")
            .trim_end_matches('"');
        if let Some(i) = at(line, near.as_bytes()) {
            let digits = near
                .bytes()
                .take_while(|c| c.is_ascii_digit() || *c == b'$')
                .count();
            line[i + digits.max(1)] = b' ';
            return true;
        }
    } else if err.contains("Unicode") {
        // A malformed `\u` escape in an E'' string: `\q` is an escape of the same extent.
        if let Some(i) = at(line, b"\\u").or_else(|| at(line, b"\\U")) {
            line[i + 1] = b'q';
            return true;
        }
    }
    eprintln!(
        "{what}: line {}: {err}",
        work[..start].iter().filter(|&&c| c == b'\n').count() + 1
    );
    false
}

/// Blanks `from..to` of `out`, keeping newlines.
fn blank(out: &mut [u8], from: usize, to: usize) {
    for c in &mut out[from..to] {
        if *c != b'\n' {
            *c = b' ';
        }
    }
}

/// The COPY data that starts on the line after `at`: through the `\.` line, or to the end of
/// the file.
fn copy_data(sql: &[u8], at: usize) -> (usize, usize) {
    let line_end = |from: usize| {
        sql[from..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(sql.len(), |n| from + n)
    };
    let start = (line_end(at) + 1).min(sql.len());
    let mut line = start;
    while line < sql.len() {
        let end = line_end(line);
        if sql[line..end].trim_ascii_end() == b"\\." {
            return (start, end);
        }
        line = end + 1;
    }
    (start, sql.len())
}

/// Blanks the lines after `SET standard_conforming_strings = off` through the statement that
/// turns it back on: there psql reads backslashes in '…' as escapes, a mode that dbinit's
/// splitter does not support (documented) and the oracle's scanner does not use.
fn blank_non_standard_strings(out: &mut [u8]) {
    let mut off = false;
    let mut line = 0;
    while line < out.len() {
        let end = out[line..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(out.len(), |n| line + n);
        let l = String::from_utf8_lossy(&out[line..end])
            .trim()
            .to_ascii_lowercase();
        let setting = (l.starts_with("set ") || l.starts_with("reset "))
            && l.contains("standard_conforming_strings");
        if setting {
            off = l.starts_with("set ") && l.contains("off");
        } else if off {
            blank(out, line, end);
        }
        line = end + 1;
    }
}

/// The SQL psql would send for `raw`, same length (see the module comment), and made
/// scannable; `None` if the scanner rejects something [`make_scannable`] does not know.
fn psql_to_sql(raw: &str, what: &str) -> Option<String> {
    const SENDS: &[&str] = &[
        "g",
        "gx",
        "gset",
        "gexec",
        "gdesc",
        "crosstabview",
        "watch",
        "r",
    ];
    let mut out = raw.as_bytes().to_vec();
    blank_non_standard_strings(&mut out);
    let mut pos = 0;
    // Bounded: every round moves `pos` forward or rewrites one malformed token.
    'rescan: for _ in 0..100_000 {
        if pos >= out.len() {
            break;
        }
        let toks = match pg_query::scan_tokens(&String::from_utf8_lossy(&out[pos..])) {
            Ok(t) => t,
            Err(_) if make_scannable(&mut out, pos, what) => continue 'rescan,
            Err(_) => return None,
        };
        // The current statement's first token, the one before this, and whether the statement
        // is `COPY … FROM stdin …`.
        let mut first: Option<&ScanToken> = None;
        let mut prev: Option<&ScanToken> = None;
        let mut from_stdin = false;
        let mut skip_to = pos;
        for t in &toks {
            let (at, end) = (pos + t.start as usize, pos + t.end as usize);
            let text = || String::from_utf8_lossy(&out[at..end]).to_ascii_lowercase();
            if at < skip_to {
                continue;
            }
            if is(t, Token::Ascii92) {
                if out.get(at + 1) == Some(&b';') {
                    out[at] = b' ';
                    continue;
                }
                let eol = out[at..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(out.len(), |n| at + n);
                let cmd = String::from_utf8_lossy(&out[at + 1..eol]).to_ascii_lowercase();
                let name = cmd.split_whitespace().next().unwrap_or("").to_string();
                blank(&mut out, at, eol);
                if SENDS.contains(&name.as_str()) {
                    out[at] = b';';
                }
                (first, prev, from_stdin) = (None, None, false);
                if name == "copy" && (cmd.contains(" stdin") || cmd.contains(" pstdin")) {
                    let (from, to) = copy_data(&out, at);
                    blank(&mut out, from, to);
                    pos = to;
                    continue 'rescan;
                }
                // The tokens after the line stand unless one of them began on it.
                if toks
                    .iter()
                    .any(|x| (pos + x.start as usize) < eol && (pos + x.end as usize) > eol)
                {
                    pos = eol;
                    continue 'rescan;
                }
                skip_to = eol;
                continue;
            }
            if is_comment(t) {
                continue;
            }
            if is(t, Token::Ascii59) {
                if from_stdin {
                    let (from, to) = copy_data(&out, at);
                    blank(&mut out, from, to);
                    pos = to;
                    continue 'rescan;
                }
                (first, prev, from_stdin) = (None, None, false);
                continue;
            }
            let first = *first.get_or_insert(t);
            if is(first, Token::Copy)
                && prev.is_some_and(|p| is(p, Token::From))
                && text() == "stdin"
            {
                from_stdin = true;
            }
            prev = Some(t);
        }
        break;
    }
    String::from_utf8(out).ok()
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
    dbinit_core::sqlsplit::split(sql)
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
