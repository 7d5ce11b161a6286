//! The options of the migration review (`dbinit lint`, and what `plan` and `run` judge
//! with): the thresholds that make a finding a warning or a block, and the level that stops
//! a deploy. Read by clap as raw strings, checked here so an error names the variable.

use dbinit_lint::PgVersion;

use super::ConnArgs;
use super::parse::invalid;
use crate::lint::settings::{Level, LintSettings, parse_bytes};
use crate::setting::ConfigError;

/// Review options, as an operator sets them.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Lint (what a migration will do to the live tables)")]
pub struct LintArgs {
    /// Findings at or above this level (warn or block) make `lint` exit 14 and `run` refuse
    /// before applying anything (exit 14) [default: none: `run` only logs them]
    #[arg(
        long = "lint-fail-on",
        visible_alias = "fail-on",
        env = "DBINIT_LINT_FAIL_ON",
        value_name = "LEVEL",
        hide_env_values = true
    )]
    pub fail_on: Option<String>,
    /// A locking finding on a table with at least this many rows (estimated) is a warning
    /// [default: 10000]
    #[arg(
        long = "lint-warn-rows",
        env = "DBINIT_LINT_WARN_ROWS",
        value_name = "N",
        hide_env_values = true
    )]
    pub warn_rows: Option<String>,
    /// ...and with at least this many, a block [default: 1000000]
    #[arg(
        long = "lint-block-rows",
        env = "DBINIT_LINT_BLOCK_ROWS",
        value_name = "N",
        hide_env_values = true
    )]
    pub block_rows: Option<String>,
    /// ...or when the table with its indexes is at least this large: bytes, or with kB, MB,
    /// GB, TB [default: 1GB]
    #[arg(
        long = "lint-block-size",
        env = "DBINIT_LINT_BLOCK_SIZE",
        value_name = "SIZE",
        hide_env_values = true
    )]
    pub block_size: Option<String>,
    /// The PostgreSQL version the rules assume when no database is read, e.g. 16 or 15.4
    /// [default: 13, the oldest supported]
    #[arg(
        long = "lint-pg-version",
        env = "DBINIT_LINT_PG_VERSION",
        value_name = "VERSION",
        hide_env_values = true
    )]
    pub pg_version: Option<String>,
}

/// Whether the connection options name a server (`DATABASE_URL`, `DATABASE_URL_FILE` or
/// `POSTGRES_HOST`): then `dbinit lint` reads it; otherwise it reviews statically, so it can
/// gate CI without a database.
pub fn names_a_server(conn: &ConnArgs) -> bool {
    let p = &conn.postgres;
    p.database_url
        .as_ref()
        .is_some_and(|u| !u.expose().is_empty())
        || p.database_url_file
            .as_ref()
            .is_some_and(|f| !f.as_os_str().is_empty())
        || p.postgres_host.as_ref().is_some_and(|h| !h.is_empty())
}

fn set(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn rows(raw: Option<String>, label: &str, default: u64) -> Result<u64, ConfigError> {
    match set(raw) {
        None => Ok(default),
        Some(r) => r
            .trim()
            .parse()
            .map_err(|_| invalid(label, &r, "is not a whole number of rows (e.g. 1000000)")),
    }
}

/// Checks the review options.
pub fn resolve_lint(a: LintArgs) -> Result<LintSettings, ConfigError> {
    let d = LintSettings::default();
    let fail_on = match set(a.fail_on) {
        None => None,
        Some(r) => Some(Level::parse_gate(&r).ok_or_else(|| {
            invalid(
                "DBINIT_LINT_FAIL_ON",
                &r,
                &format!("is not {}", Level::FORMS),
            )
        })?),
    };
    let warn_rows = rows(a.warn_rows, "DBINIT_LINT_WARN_ROWS", d.warn_rows)?;
    let block_rows = rows(a.block_rows, "DBINIT_LINT_BLOCK_ROWS", d.block_rows)?;
    if block_rows < warn_rows {
        return Err(ConfigError(
            "DBINIT_LINT_BLOCK_ROWS (--lint-block-rows) is smaller than DBINIT_LINT_WARN_ROWS (--lint-warn-rows)".into(),
        ));
    }
    let block_bytes = match set(a.block_size) {
        None => d.block_bytes,
        Some(r) => parse_bytes(&r).ok_or_else(|| {
            invalid(
                "DBINIT_LINT_BLOCK_SIZE",
                &r,
                "is not a size: bytes, or a number with kB, MB, GB or TB (e.g. 1GB, 512MB)",
            )
        })?,
    };
    let pg_version = match set(a.pg_version) {
        None => d.pg_version,
        Some(r) => PgVersion::parse(&r).ok_or_else(|| {
            invalid(
                "DBINIT_LINT_PG_VERSION",
                &r,
                "is not a PostgreSQL version (e.g. 16 or 15.4)",
            )
        })?,
    };
    Ok(LintSettings {
        warn_rows,
        block_rows,
        block_bytes,
        fail_on,
        pg_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut LintArgs)) -> LintArgs {
        let mut a = LintArgs::default();
        f(&mut a);
        a
    }

    #[test]
    fn defaults_and_forms() {
        let s = resolve_lint(LintArgs::default()).expect("defaults");
        assert_eq!(s, LintSettings::default());
        let s = resolve_lint(args(|a| {
            a.fail_on = Some("Block".into());
            a.block_rows = Some("2000".into());
            a.warn_rows = Some("10".into());
            a.block_size = Some("512MB".into());
            a.pg_version = Some("16.2".into());
            a.pg_version = Some("16.2".into());
        }))
        .expect("valid");
        assert_eq!(s.fail_on, Some(Level::Block));
        assert_eq!((s.warn_rows, s.block_rows), (10, 2000));
        assert_eq!(s.block_bytes, 512 << 20);
        assert_eq!(s.pg_version.to_string(), "16.2");
        // Empty is unset.
        let s = resolve_lint(args(|a| a.fail_on = Some(String::new()))).expect("empty");
        assert_eq!(s.fail_on, None);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_form() {
        for (a, var, form) in [
            (
                args(|a| a.fail_on = Some("ok".into())),
                "DBINIT_LINT_FAIL_ON",
                "warn or block",
            ),
            (
                args(|a| a.block_rows = Some("1e6".into())),
                "DBINIT_LINT_BLOCK_ROWS",
                "whole number",
            ),
            (
                args(|a| a.block_size = Some("1 gig".into())),
                "DBINIT_LINT_BLOCK_SIZE",
                "kB, MB",
            ),
            (
                args(|a| a.pg_version = Some("sixteen".into())),
                "DBINIT_LINT_PG_VERSION",
                "16 or 15.4",
            ),
            (
                args(|a| {
                    a.warn_rows = Some("100".into());
                    a.block_rows = Some("10".into());
                }),
                "DBINIT_LINT_BLOCK_ROWS",
                "smaller than",
            ),
        ] {
            let e = resolve_lint(a).expect_err(var).0;
            assert!(e.contains(var) && e.contains(form), "{e}");
        }
    }
}
