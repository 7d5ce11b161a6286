//! Whitespace drift: a file whose checksum differs from the recorded one only because of its
//! line endings (git `core.autocrlf` on Windows), its final newline (an editor setting) or a
//! UTF-8 byte order mark. Checked only after a checksum mismatch, so the normal path pays
//! nothing. It stays a divergence (exit 6): CRLF inside a string literal is a real change of
//! data, so dbinit names the cause and the fix but never decides it is harmless.

use serde::Serialize;

/// What differs, when only whitespace does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftCause {
    /// CRLF against LF.
    LineEndings,
    /// A newline at the end of the file, added or removed.
    TrailingNewline,
    /// A UTF-8 byte order mark, added or removed.
    Bom,
}

impl DriftCause {
    /// The word `status` prints beside `edited`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LineEndings => "line endings only",
            Self::TrailingNewline => "final newline only",
            Self::Bom => "byte order mark only",
        }
    }
}

/// The explanation of a whitespace drift, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The first cause found (line endings before trailing newline before BOM).
    pub cause: DriftCause,
    /// What differs, in words: "the file has CRLF line endings, the database recorded LF".
    pub what: String,
    /// How to fix it.
    pub fix: &'static str,
}

const FIX_LINE_ENDINGS: &str = "add `*.sql text eol=lf` to .gitattributes and run `git add --renormalize .` (or `dos2unix` the file); no new migration is needed";
const FIX_NEWLINE: &str = "restore the file's end as it was applied (your editor's \"insert final newline\" setting); no new migration is needed";
const FIX_BOM: &str =
    "save the file as UTF-8 without a byte order mark; no new migration is needed";

/// Finds the whitespace variant of `sql` whose checksum `recorded` accepts, if any.
pub fn whitespace_drift(sql: &str, recorded: impl Fn(&str) -> bool) -> Option<Drift> {
    let crlf = sql.contains("\r\n");
    // Line endings first: the file with the other convention.
    let converted = if crlf {
        sql.replace("\r\n", "\n")
    } else {
        sql.replace('\n', "\r\n")
    };
    let (file_has, recorded_has) = if crlf { ("CRLF", "LF") } else { ("LF", "CRLF") };
    let endings =
        format!("the file has {file_has} line endings, the database recorded {recorded_has}");
    let newline = if crlf { "\r\n" } else { "\n" };
    let mut candidates: Vec<(String, DriftCause, String)> = Vec::new();
    if converted != sql {
        candidates.push((converted.clone(), DriftCause::LineEndings, endings.clone()));
    }
    for (base, cause, prefix) in [
        (sql.to_string(), DriftCause::TrailingNewline, String::new()),
        (
            converted,
            DriftCause::LineEndings,
            format!("{endings}, and "),
        ),
    ] {
        let one_less = base
            .strip_suffix("\r\n")
            .or_else(|| base.strip_suffix('\n'));
        let none = base.trim_end_matches(['\r', '\n']);
        for shorter in one_less
            .into_iter()
            .chain((none.len() != base.len()).then_some(none))
        {
            candidates.push((
                shorter.to_string(),
                cause,
                format!("{prefix}the file has a newline at its end that the applied one had not"),
            ));
        }
        let nl = if base.contains("\r\n") {
            "\r\n"
        } else {
            newline
        };
        candidates.push((
            format!("{base}{nl}"),
            cause,
            format!("{prefix}the file lacks the newline at its end that the applied one had"),
        ));
    }
    let with_bom: Vec<(String, DriftCause, String)> = candidates
        .iter()
        .map(|(s, c, w)| (s.clone(), *c, w.clone()))
        .chain(std::iter::once((
            sql.to_string(),
            DriftCause::Bom,
            String::new(),
        )))
        .map(|(s, c, w)| {
            let (variant, bom) = match s.strip_prefix('\u{feff}') {
                Some(rest) => (
                    rest.to_string(),
                    "the file starts with a UTF-8 byte order mark the applied one had not",
                ),
                None => (
                    format!("\u{feff}{s}"),
                    "the applied file started with a UTF-8 byte order mark this one lacks",
                ),
            };
            let what = if w.is_empty() {
                bom.to_string()
            } else {
                format!("{w}, and {bom}")
            };
            let cause = if c == DriftCause::Bom || w.is_empty() {
                DriftCause::Bom
            } else {
                c
            };
            (variant, cause, what)
        })
        .collect();
    candidates
        .into_iter()
        .chain(with_bom)
        .find(|(variant, _, _)| recorded(variant))
        .map(|(_, cause, what)| Drift {
            cause,
            fix: match cause {
                DriftCause::LineEndings => FIX_LINE_ENDINGS,
                DriftCause::TrailingNewline => FIX_NEWLINE,
                DriftCause::Bom => FIX_BOM,
            },
            what,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(file: &str, applied: &str) -> Option<Drift> {
        whitespace_drift(file, |v| v == applied)
    }

    #[test]
    fn names_the_cause() {
        let lf = "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n";
        let crlf = lf.replace('\n', "\r\n");
        let d = check(&crlf, lf).expect("CRLF file, LF record");
        assert_eq!(d.cause, DriftCause::LineEndings);
        assert!(d.what.contains("the file has CRLF"), "{}", d.what);
        assert!(d.fix.contains("eol=lf"));
        let d = check(lf, &crlf).expect("LF file, CRLF record");
        assert!(d.what.contains("the file has LF"), "{}", d.what);
        let d = check(lf.trim_end(), lf).expect("newline removed");
        assert_eq!(d.cause, DriftCause::TrailingNewline);
        assert!(d.what.contains("lacks the newline"), "{}", d.what);
        assert_eq!(
            check(&format!("{lf}\n"), lf).map(|d| d.cause),
            Some(DriftCause::TrailingNewline)
        );
        let d = check(&crlf, lf.trim_end()).expect("CRLF and newline");
        assert_eq!(d.cause, DriftCause::LineEndings);
        assert!(d.what.contains("and the file has a newline"), "{}", d.what);
        let d = check(&format!("\u{feff}{lf}"), lf).expect("BOM");
        assert_eq!(d.cause, DriftCause::Bom);
        assert_eq!(
            check(lf, &format!("\u{feff}{lf}")).map(|d| d.cause),
            Some(DriftCause::Bom)
        );
    }

    #[test]
    fn a_real_edit_is_not_whitespace() {
        let lf = "CREATE TABLE a (id int);\n";
        assert_eq!(check("CREATE TABLE a (id bigint);\n", lf), None);
        assert_eq!(
            check("CREATE TABLE a (id int);\r\n", "CREATE TABLE b (id int);\n"),
            None
        );
        assert_eq!(check("", lf), None);
    }
}
