//! The folder layouts dbinit reads, each with its tool's own naming rules, read unchanged:
//!
//! | layout | a migration | versions | runs outside a transaction |
//! |---|---|---|---|
//! | `dbinit` (refinery's) | `V1__create_users.sql` (`U1__…` may come late) | `\d+` | `-- dbinit:no-transaction` |
//! | `sqlx` | `20230404095503_create_users.sql`, or `.up.sql` + `.down.sql` | before the first `_` | a first line starting `-- no-transaction` |
//! | `golang-migrate` | `20230404095503_create_users.up.sql` + `.down.sql` | before the first `_` | — |
//! | `dbmate` | `20230404095503_create_users.sql` with `-- migrate:up` / `-- migrate:down` | the leading digits | `-- migrate:up transaction:false` |
//! | `prisma` | `20230404095503_create_users/migration.sql` | the directory's leading digits | — |
//!
//! Every layout honours dbinit's own header directives too. Versions are `i64`: a version
//! above 9223372036854775807 is refused, naming the file and the range. Down files and
//! sections are kept and never run. Where a tool treats versions as strings (dbmate: `001` ≠
//! `1`), dbinit keeps the digits as written ([`super::Migration::version_text`]) but orders
//! and records by the number, so two files with one number are refused.

use super::dbmate;

/// Whether a migration must be applied in version order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// `V1__name.sql`, and every other layout's files: in order.
    Versioned,
    /// refinery's `U1__name.sql`: may be applied late.
    Unversioned,
}

/// What a layout reader found in one file (or Prisma directory), before it becomes a
/// [`super::Migration`].
#[derive(Debug, Clone)]
pub struct Parts {
    /// The version as an integer.
    pub version: i64,
    /// The version's digits as written in the file name (`001`, `20230404095503`).
    pub version_text: String,
    /// The name the history records (`create_users`).
    pub name: String,
    /// The user's file name, relative to the folder (`V1__a.sql`, `1_a.up.sql`,
    /// `20240101000000_init/migration.sql`).
    pub file: String,
    /// `V1__name` or `U1__name` (dbinit layout only).
    pub prefix: Prefix,
    /// The SQL that runs: the file, or dbmate's up section.
    pub sql: String,
    /// The whole file as read, which other tools hash (sqlx's SHA-384, Prisma's SHA-256).
    pub text: String,
    /// The layout's own no-transaction marker is set (sqlx `-- no-transaction`, dbmate
    /// `transaction:false`).
    pub no_transaction: bool,
    /// The down file or section kept beside it (never run).
    pub down: Option<String>,
}

/// A folder layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// refinery's `V{n}__{name}.sql`, dbinit's own.
    Dbinit,
    /// sqlx-cli's `{version}_{description}.sql` or `.up.sql`/`.down.sql`.
    Sqlx,
    /// golang-migrate's `{version}_{title}.up.sql` and `.down.sql`.
    GolangMigrate,
    /// dbmate's `{version}_{name}.sql` with `-- migrate:up`/`-- migrate:down` sections.
    Dbmate,
    /// Prisma's `{timestamp}_{name}/migration.sql`.
    Prisma,
}

impl Layout {
    /// Every layout, in the order the README lists them.
    pub const ALL: [Layout; 5] = [
        Self::Dbinit,
        Self::Sqlx,
        Self::GolangMigrate,
        Self::Dbmate,
        Self::Prisma,
    ];

    /// The value `DBINIT_LAYOUT` / `--layout` takes.
    pub fn id(self) -> &'static str {
        match self {
            Self::Dbinit => "dbinit",
            Self::Sqlx => "sqlx",
            Self::GolangMigrate => "golang-migrate",
            Self::Dbmate => "dbmate",
            Self::Prisma => "prisma",
        }
    }

    /// Parses a `DBINIT_LAYOUT` value.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|l| l.id() == raw || (*l == Self::GolangMigrate && raw == "migrate"))
    }

    /// One file name of this layout, for messages.
    pub fn example(self) -> &'static str {
        match self {
            Self::Dbinit => "V1__create_users.sql",
            Self::Sqlx => "20230404095503_create_users.sql (or .up.sql/.down.sql)",
            Self::GolangMigrate => "20230404095503_create_users.up.sql and .down.sql",
            Self::Dbmate => {
                "20230404095503_create_users.sql with -- migrate:up and -- migrate:down"
            }
            Self::Prisma => "20230404095503_create_users/migration.sql",
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// Splits `{digits}_{rest}` (`20230404095503_create_users.sql` → (`20230404095503`,
/// `create_users.sql`)): the name rule sqlx, golang-migrate and Prisma directories share.
/// `None` without leading ASCII digits or without the `_` right after them. Shared with tool
/// mode, which reads those tools' files with the tools' own semantics.
pub fn split_version(name: &str) -> Option<(&str, &str)> {
    let digits = name.len() - name.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let rest = name[digits..].strip_prefix('_')?;
    Some((&name[..digits], rest))
}

/// The highest version dbinit takes, as README and the messages write it.
pub const MAX_VERSION: i64 = i64::MAX;

/// A version's digits as an `i64`, or the message that says it is too large.
pub fn version_number(file: &str, digits: &str) -> Result<i64, String> {
    digits.parse::<i64>().map_err(|_| {
        format!(
            "migration file {file:?}: version {digits} is too large: dbinit versions range from 0 to {MAX_VERSION} (64-bit; a 14-digit timestamp such as 20230404095503 fits)"
        )
    })
}

/// Whether a `.up.sql` / `.down.sql` file, and which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Runs.
    Up,
    /// Kept, never run.
    Down,
    /// sqlx's simple (irreversible) file: runs.
    Simple,
}

/// refinery's `\w`: a letter, digit or `_` (Unicode).
fn word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// dbinit's layout: refinery's stem rule `^([UV])(\d+(?:\.\d+)?)__(\w+)`, applied to the
/// file name without `.sql`. The name is the `\w+` run after `__`, as refinery takes it, so
/// the checksum of every existing history row stays the same.
pub fn dbinit_parts(file: &str, text: &str) -> Result<Parts, String> {
    let bad = || {
        format!(
            "migration file {file:?} is not named V{{version}}__{{name}}.sql (dbinit's layout: {})",
            Layout::Dbinit.example()
        )
    };
    let stem = file.strip_suffix(".sql").ok_or_else(bad)?;
    let prefix = match stem.chars().next() {
        Some('V') => Prefix::Versioned,
        Some('U') => Prefix::Unversioned,
        _ => return Err(bad()),
    };
    let rest = &stem[1..];
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return Err(bad());
    }
    let after = &rest[digits..];
    if let Some(frac) = after.strip_prefix('.')
        && frac.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(format!(
            "migration file {file:?}: dotted versions (Flyway's 1.1) are not dbinit versions: number the files with whole numbers (adopting Flyway's history then needs DBINIT_ADOPT_MAP)"
        ));
    }
    let name_start = after.strip_prefix("__").ok_or_else(bad)?;
    let name: String = name_start.chars().take_while(|c| word(*c)).collect();
    if name.is_empty() {
        return Err(bad());
    }
    let version = version_number(file, &rest[..digits])?;
    Ok(Parts {
        version,
        version_text: rest[..digits].to_string(),
        name,
        file: file.to_string(),
        prefix,
        sql: text.to_string(),
        text: text.to_string(),
        no_transaction: false,
        down: None,
    })
}

/// sqlx's rule (`sqlx-core` `migrate/source.rs`): split at the first `_`, the left part an
/// integer version, the right part `{description}.sql`, `.up.sql` or `.down.sql`. A first
/// line starting `-- no-transaction` (a byte prefix, as sqlx checks it) runs the file
/// outside a transaction.
pub fn sqlx_parts(file: &str, text: &str) -> Result<(Parts, Direction), String> {
    let (digits, rest) = split_version(file).ok_or_else(|| {
        format!(
            "migration file {file:?} is not named {{version}}_{{description}}.sql (sqlx's layout: {})",
            Layout::Sqlx.example()
        )
    })?;
    let (description, direction) = if let Some(d) = rest.strip_suffix(".up.sql") {
        (d, Direction::Up)
    } else if let Some(d) = rest.strip_suffix(".down.sql") {
        (d, Direction::Down)
    } else if let Some(d) = rest.strip_suffix(".sql") {
        (d, Direction::Simple)
    } else {
        return Err(format!("migration file {file:?} does not end in .sql"));
    };
    let parts = numbered(
        file,
        digits,
        description,
        text,
        text.starts_with("-- no-transaction"),
    )?;
    Ok((parts, direction))
}

/// golang-migrate's rule (`source/parse.go` `^([0-9]+)_(.*)\.(down|up)\.(.*)$`, extension
/// `sql`): only `.up.sql` files run.
pub fn golang_migrate_parts(file: &str, text: &str) -> Result<(Parts, Direction), String> {
    let bad = || {
        format!(
            "migration file {file:?} is not named {{version}}_{{title}}.up.sql or .down.sql (golang-migrate's layout: {})",
            Layout::GolangMigrate.example()
        )
    };
    let (digits, rest) = split_version(file).ok_or_else(bad)?;
    let (title, direction) = if let Some(t) = rest.strip_suffix(".up.sql") {
        (t, Direction::Up)
    } else if let Some(t) = rest.strip_suffix(".down.sql") {
        (t, Direction::Down)
    } else {
        return Err(bad());
    };
    Ok((numbered(file, digits, title, text, false)?, direction))
}

/// dbmate's rule (`^(\d+).*\.sql$`, `pkg/dbmate/migration.go`): the leading digits are the
/// version; the up section runs and is checksummed.
pub fn dbmate_parts(file: &str, text: &str) -> Result<Parts, String> {
    let digits = file.len() - file.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(stem) = file.strip_suffix(".sql").filter(|_| digits > 0) else {
        return Err(format!(
            "migration file {file:?} is not named {{version}}_{{name}}.sql (dbmate's layout: {})",
            Layout::Dbmate.example()
        ));
    };
    let s = dbmate::sections(text).map_err(|e| format!("dbmate migration file {file:?}: {e}"))?;
    let name = stem[digits..].trim_start_matches('_');
    let mut parts = numbered(file, &file[..digits], name, s.up, s.no_transaction)?;
    parts.text = text.to_string();
    parts.down = Some(s.down.to_string());
    Ok(parts)
}

/// Prisma's rule (`listMigrations.ts`): every directory holds `migration.sql`; dbinit needs
/// the directory name to start with its version (`{timestamp}_{name}`, as `prisma migrate`
/// names them).
pub fn prisma_parts(dir: &str, text: &str) -> Result<Parts, String> {
    let file = format!("{dir}/migration.sql");
    let (digits, name) = split_version(dir).ok_or_else(|| {
        format!(
            "migration directory {dir:?} is not named {{timestamp}}_{{name}} (Prisma's layout: {}): dbinit takes the version from it",
            Layout::Prisma.example()
        )
    })?;
    numbered(&file, digits, name, text, false)
}

fn numbered(
    file: &str,
    digits: &str,
    name: &str,
    sql: &str,
    no_transaction: bool,
) -> Result<Parts, String> {
    Ok(Parts {
        version: version_number(file, digits)?,
        version_text: digits.to_string(),
        name: name.to_string(),
        file: file.to_string(),
        prefix: Prefix::Versioned,
        sql: sql.to_string(),
        text: sql.to_string(),
        no_transaction,
        down: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_version_is_digits_then_underscore() {
        assert_eq!(split_version("001_init.sql"), Some(("001", "init.sql")));
        assert_eq!(split_version("20240101.sql"), None);
        assert_eq!(split_version("V1__a.sql"), None);
        assert_eq!(split_version("1__a"), Some(("1", "_a")));
    }

    #[test]
    fn dbinit_names_follow_refinery() {
        let p = dbinit_parts("V20230404095503__initial.sql", "x").expect("i64 version");
        assert_eq!(p.version, 20_230_404_095_503);
        let p = dbinit_parts("V1__a-b.sql", "x").expect("refinery takes the \\w run");
        assert_eq!(p.name, "a");
        assert_eq!(
            dbinit_parts("U3__late.sql", "").expect("U").prefix,
            Prefix::Unversioned
        );
        let e = dbinit_parts("V9223372036854775808__big.sql", "").expect_err("above i64");
        assert!(
            e.contains("too large") && e.contains("9223372036854775807"),
            "{e}"
        );
        assert!(
            dbinit_parts("V1.1__x.sql", "")
                .expect_err("dotted")
                .contains("dotted")
        );
        for bad in ["V1_a.sql", "v1__a.sql", "V__a.sql", "V1__.sql", "1_a.sql"] {
            assert!(dbinit_parts(bad, "").is_err(), "{bad}");
        }
    }

    #[test]
    fn sqlx_golang_migrate_dbmate_and_prisma_names() {
        let (p, d) = sqlx_parts(
            "20230404095503_create_users.up.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);",
        )
        .expect("ok");
        assert_eq!(
            (p.version, d, p.name.as_str()),
            (20_230_404_095_503, Direction::Up, "create_users")
        );
        assert!(p.no_transaction);
        // sqlx's check is a byte prefix: a leading blank line is not the marker.
        assert!(
            !sqlx_parts("1_a.sql", "\n-- no-transaction\n")
                .expect("ok")
                .0
                .no_transaction
        );
        assert_eq!(
            sqlx_parts("001_a.sql", "").expect("ok").0.version_text,
            "001"
        );
        assert!(sqlx_parts("abc_b.sql", "").is_err());
        let (_, d) = golang_migrate_parts("7_x.down.sql", "DROP TABLE nope;").expect("ok");
        assert_eq!(d, Direction::Down);
        assert!(golang_migrate_parts("7_x.sql", "").is_err());
        let p = dbmate_parts(
            "20240101_cic.sql",
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- migrate:down\nDROP INDEX i;\n",
        )
        .expect("ok");
        assert_eq!(
            p.sql,
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
        );
        assert!(p.no_transaction && p.text.contains("DROP INDEX"));
        assert_eq!(p.down.as_deref(), Some("-- migrate:down\nDROP INDEX i;\n"));
        let e = dbmate_parts("2_x.sql", "SELECT 1;").expect_err("no up");
        assert!(e.contains("\"2_x.sql\"") && e.contains("migrate:up"), "{e}");
        let p = prisma_parts("20240101123456_init", "CREATE TABLE a ();").expect("ok");
        assert_eq!(
            (p.file.as_str(), p.name.as_str()),
            ("20240101123456_init/migration.sql", "init")
        );
        assert!(prisma_parts("init", "").is_err());
    }
}
