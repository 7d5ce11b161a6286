//! What psql would send for a regression file, for tests/splitter.rs: psql client features
//! and deliberately malformed tokens rewritten in place, same length, so offsets and lines
//! stay.
//!
//! psql client features are not SQL and neither splitter sees them:
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

use pg_query::protobuf::{ScanToken, Token};

/// Whether the scanner's token is of kind `k`.
pub fn is(t: &ScanToken, k: Token) -> bool {
    t.token == k as i32
}

/// Whether the token is a `--` or `/* */` comment.
pub fn is_comment(t: &ScanToken) -> bool {
    is(t, Token::SqlComment) || is(t, Token::CComment)
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
pub fn psql_to_sql(raw: &str, what: &str) -> Option<String> {
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
