//! dbmate's file format (`pkg/dbmate/migration.go`): a `-- migrate:up` section and a
//! `-- migrate:down` section, options after the directive (`-- migrate:up transaction:false`),
//! nothing but blank and comment lines before the first directive. Only the up section runs
//! and is checksummed; the down section is kept and never run.

/// One dbmate file's up section and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sections<'a> {
    /// From the `-- migrate:up` line (included, as dbmate sends it) to the `-- migrate:down`
    /// line.
    pub up: &'a str,
    /// From the `-- migrate:down` line to the end.
    pub down: &'a str,
    /// `transaction:false` on the up directive.
    pub no_transaction: bool,
}

/// Whether `line` is the `which` directive: `--`, optional blanks, `migrate:up`, then the end
/// of the line or a blank (dbmate's `^--\s*migrate:up(\s*$|\s+\S+)`).
fn directive(line: &str, which: &str) -> bool {
    let Some(rest) = line.strip_prefix("--") else {
        return false;
    };
    let Some(after) = rest.trim_start().strip_prefix(which) else {
        return false;
    };
    after.is_empty() || after.starts_with(char::is_whitespace)
}

/// Whether `text` has a `-- migrate:up` line: the mark of a dbmate file.
pub fn has_up(text: &str) -> bool {
    text.lines().any(|l| directive(l, "migrate:up"))
}

/// Whether `text` has a `-- migrate:down` line: in any other layout that section would run.
pub fn has_down(text: &str) -> bool {
    text.lines().any(|l| directive(l, "migrate:down"))
}

/// Splits a dbmate file, or says what dbmate would say about it.
pub fn sections(text: &str) -> Result<Sections<'_>, String> {
    let mut up = None;
    let mut down = None;
    let mut ups = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim_end_matches(['\n', '\r']);
        if directive(l, "migrate:up") {
            ups += 1;
            up.get_or_insert(at);
        } else if directive(l, "migrate:down") && down.is_none() {
            down = Some(at);
        } else if up.is_none() {
            let t = l.trim();
            if !t.is_empty() && !t.starts_with("--") {
                return Err(format!(
                    "line {:?} comes before `-- migrate:up`; dbmate allows only comments there",
                    t.chars().take(40).collect::<String>()
                ));
            }
        }
        at += line.len();
    }
    let Some(up) = up else {
        return Err("it has no `-- migrate:up` line (dbmate requires an up block)".into());
    };
    let Some(down) = down else {
        return Err(
            "it has no `-- migrate:down` line (dbmate requires a down block, even an empty one)"
                .into(),
        );
    };
    if down < up {
        return Err("`-- migrate:down` comes before `-- migrate:up`".into());
    }
    if ups > 1 {
        return Err(format!(
            "it has {ups} `-- migrate:up` sections; dbinit reads one per file (dbmate records the version once per section and fails on the second): split it into files"
        ));
    }
    let up_text = &text[up..down];
    let options = up_text.lines().next().unwrap_or_default();
    let no_transaction = options.split_whitespace().any(|o| o == "transaction:false");
    Ok(Sections {
        up: up_text,
        down: &text[down..],
        no_transaction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_section_only_with_its_options() {
        let f = "-- a comment\n\n-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n\n-- migrate:down\nDROP INDEX i;\n";
        let s = sections(f).expect("ok");
        assert_eq!(
            s.up,
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n\n"
        );
        assert_eq!(s.down, "-- migrate:down\nDROP INDEX i;\n");
        assert!(s.no_transaction);
        let s = sections("-- migrate:up\r\nSELECT 1;\r\n-- migrate:down\r\n").expect("crlf");
        assert!(!s.no_transaction);
        assert_eq!(s.up, "-- migrate:up\r\nSELECT 1;\r\n");
        assert!(sections("--migrate:up\nSELECT 1;\n--   migrate:down\n").is_ok());
    }

    #[test]
    fn what_dbmate_refuses_is_refused() {
        let e = sections("CREATE TABLE t ();\n").expect_err("no up");
        assert!(e.contains("-- migrate:up"), "{e}");
        let e = sections("-- migrate:up\nSELECT 1;\n").expect_err("no down");
        assert!(e.contains("-- migrate:down"), "{e}");
        let e = sections("SELECT 0;\n-- migrate:up\nSELECT 1;\n-- migrate:down\n")
            .expect_err("statement first");
        assert!(e.contains("before"), "{e}");
        let e = sections("-- migrate:down\n-- migrate:up\n").expect_err("order");
        assert!(e.contains("before"), "{e}");
        let two = "-- migrate:up\nSELECT 1;\n-- migrate:down\n-- migrate:up\nSELECT 2;\n-- migrate:down\n";
        assert!(
            sections(two)
                .expect_err("two")
                .contains("2 `-- migrate:up`")
        );
        // Not a directive: a word that only starts the same.
        assert!(!has_up("-- migrate:upgrade the table\n"));
        assert!(has_down("SELECT 1;\n-- migrate:down\n"));
    }
}
