//! A file's header: the `-- dbinit:name[=value]` directives among its leading blank and
//! comment lines, which change how that one file runs (outside a transaction, under its own
//! lock timeout). Read when the set is loaded, so a typo is a configuration error before
//! anything runs, and again when the file is applied.

use std::time::Duration;

use crate::setting::parse_duration;

/// The first line of a migration that must run outside a transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- dbinit:no-transaction";

/// The header line that sets one file's lock timeout.
pub const LOCK_TIMEOUT_DIRECTIVE: &str = "-- dbinit:lock-timeout=";

/// The header line of a contract step: once it is applied, sets ending below N may not run
/// ([`super::floor`]).
pub const COMPATIBLE_FROM_DIRECTIVE: &str = "-- dbinit:compatible-from=";

/// The comment that acknowledges lint findings (`-- dbinit:allow=rule[,rule]`): read by the
/// review, not here; accepted in the header so it can cover the whole file.
pub const ALLOW_DIRECTIVE: &str = "-- dbinit:allow=";

/// What a file's leading comment lines ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    /// `-- dbinit:no-transaction`.
    pub no_transaction: bool,
    /// `-- dbinit:lock-timeout=DURATION`.
    pub lock_timeout: Option<Duration>,
    /// `-- dbinit:compatible-from=N`.
    pub compatible_from: Option<i64>,
}

/// Reads the directives (`-- dbinit:name[=value]`) among the file's leading blank and
/// comment lines. An unknown directive or a bad value is an error saying what is accepted,
/// so a typo does not silently change how a migration runs.
pub fn header(sql: &str) -> Result<Header, String> {
    let mut h = Header::default();
    for line in sql.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with("--") {
            break;
        }
        let Some(rest) = line.strip_prefix("-- dbinit:") else {
            continue;
        };
        if rest.starts_with(char::is_whitespace) {
            continue; // prose: "-- dbinit: this file ..."
        }
        if line == NO_TRANSACTION_MARKER {
            h.no_transaction = true;
        } else if line.starts_with(ALLOW_DIRECTIVE) {
            // The review checks the rule names (an unknown one is a finding, not an error:
            // it changes nothing about how the file runs).
        } else if let Some(v) = line.strip_prefix(LOCK_TIMEOUT_DIRECTIVE) {
            h.lock_timeout = Some(parse_duration(v).ok_or_else(|| {
                format!(
                    "`{line}`: the lock timeout is not a duration (e.g. 500ms, 30s, 2m; 0 waits)"
                )
            })?);
        } else if let Some(v) = line.strip_prefix(COMPATIBLE_FROM_DIRECTIVE) {
            h.compatible_from = Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("`{line}`: the floor is not a migration version (a positive integer: 12)")
            })?);
        } else {
            return Err(format!(
                "`{line}` is not a dbinit directive (known: `{NO_TRANSACTION_MARKER}`, `{LOCK_TIMEOUT_DIRECTIVE}DURATION`, `{COMPATIBLE_FROM_DIRECTIVE}N`, `{ALLOW_DIRECTIVE}RULE[,RULE]`)"
            ));
        }
    }
    Ok(h)
}

/// Whether [`NO_TRANSACTION_MARKER`] is among the file's leading comment lines.
pub fn is_no_transaction(sql: &str) -> bool {
    header(sql).is_ok_and(|h| h.no_transaction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_reads_directives_and_rejects_typos() {
        assert_eq!(header("CREATE TABLE a ();").expect("ok"), Header::default());
        let h = header("\n-- why this file exists\n-- dbinit:lock-timeout=30s\n-- dbinit:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);")
            .expect("ok");
        assert!(h.no_transaction);
        assert_eq!(h.lock_timeout, Some(Duration::from_secs(30)));
        // Directives after the first statement are plain comments.
        let h = header("SELECT 1;\n-- dbinit:no-transaction").expect("ok");
        assert!(!h.no_transaction);
        assert!(header("-- dbinit: prose about dbinit\nSELECT 1").is_ok());
        let h = header("-- dbinit:allow=ban-drop-column\n-- dbinit:no-transaction\nSELECT 1")
            .expect("ok");
        assert!(h.no_transaction);
        let e = header("-- dbinit:lock-timeout=soon\nSELECT 1").expect_err("bad");
        assert!(e.contains("lock-timeout=soon") && e.contains("30s"), "{e}");
        let e = header("-- dbinit:no-transactions\nSELECT 1").expect_err("typo");
        assert!(e.contains("not a dbinit directive"), "{e}");
    }

    #[test]
    fn the_marker() {
        assert!(is_no_transaction(
            "-- dbinit:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);"
        ));
        assert!(is_no_transaction(
            "\n  -- dbinit:no-transaction  \nSELECT 1"
        ));
        assert!(!is_no_transaction("SELECT 1;\n-- dbinit:no-transaction"));
        assert!(!is_no_transaction("-- dbinit: no-transaction"));
    }
}
