//! Which tool a migration command is: named by `--tool`, or recognised from the command.
//!
//! Recognising the tool is what lets dbinit skip the command when the tool's table already
//! holds what the tool's files in the image describe. That skip is only right for a command
//! that applies everything (`alembic upgrade head`, `dbmate up`); any other command of a
//! known tool (`alembic downgrade -1`, `manage.py migrate shop 0002`) runs every time.

use std::path::Path;

pub use crate::migrate::adopt::tools::Tool;
use crate::setting::ConfigError;

/// The tools tool mode knows, in the order README lists them.
pub const TOOLS: [Tool; 7] = [
    Tool::Alembic,
    Tool::Django,
    Tool::Sqlx,
    Tool::GolangMigrate,
    Tool::Dbmate,
    Tool::Prisma,
    Tool::Flyway,
];

/// The accepted values of `--tool`, for error messages.
pub fn forms() -> String {
    TOOLS.map(Tool::id).join(", ")
}

/// Parses `--tool` / `DBINIT_TOOL`.
pub fn parse(raw: &str, label: &str) -> Result<Tool, ConfigError> {
    Tool::parse(raw)
        .filter(|t| TOOLS.contains(t))
        .ok_or_else(|| {
            ConfigError(format!(
                "invalid {label}: {raw:?} is not one of {}",
                forms()
            ))
        })
}

/// The file name of a program without its directory or a version suffix: `/venv/bin/python3.12`
/// is `python`.
fn base(program: &str) -> &str {
    let name = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if trimmed.is_empty() { name } else { trimmed }
}

/// What a command is: the tool, and whether it applies everything the tool's files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recognised {
    /// The tool.
    pub tool: Tool,
    /// Whether the command brings the schema to the head of the files (`upgrade head`), so
    /// that an up-to-date table means it would do nothing.
    pub applies_all: bool,
}

/// The words after a launcher: `python -m alembic ...` -> `alembic ...`, `npx prisma ...`
/// -> `prisma ...`, `python manage.py ...` -> `manage.py ...`, `uv run X` -> `X`.
fn unwrap_launcher(argv: &[String]) -> &[String] {
    let Some(first) = argv.first() else {
        return argv;
    };
    let rest = &argv[1..];
    match base(first) {
        "python" => match rest {
            [m, _, ..] if m == "-m" => &rest[1..],
            [script, ..] if !script.starts_with('-') => rest,
            _ => argv,
        },
        "uv" | "poetry" | "pipenv" if rest.first().is_some_and(|w| w == "run") => {
            unwrap_launcher(skip_flags(&rest[1..]))
        }
        "npx" | "bunx" | "pnpx" => skip_flags(rest),
        "pnpm" | "yarn" | "npm" | "bun" => match rest.first().map(String::as_str) {
            Some("exec" | "dlx" | "x") => skip_flags(&rest[1..]),
            _ => skip_flags(rest),
        },
        _ => argv,
    }
}

/// Drops leading `-y`/`--yes`-style flags of a package runner.
fn skip_flags(words: &[String]) -> &[String] {
    let n = words.iter().take_while(|w| w.starts_with('-')).count();
    &words[n..]
}

/// The words that are not options (`-x`, `--flag`, `--flag=value`), skipping the value
/// of the options in `with_value`.
fn positionals<'a>(words: &'a [String], with_value: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut skip = false;
    for w in words {
        if skip {
            skip = false;
            continue;
        }
        if w.starts_with('-') {
            skip = !w.contains('=') && with_value.contains(&w.as_str());
            continue;
        }
        out.push(w.as_str());
    }
    out
}

/// Recognises the tool of a command, and whether the command applies everything.
pub fn recognise(argv: &[String]) -> Option<Recognised> {
    let words = unwrap_launcher(argv);
    let program = base(words.first()?);
    let rest = &words[1..];
    let r = |tool, applies_all| Some(Recognised { tool, applies_all });
    match program {
        "alembic" => {
            let p = positionals(
                rest,
                &["-c", "--config", "-n", "--name", "-x", "--toml-file"],
            );
            r(
                Tool::Alembic,
                matches!(p.as_slice(), ["upgrade", "head" | "heads"]),
            )
        }
        "manage.py" | "django-admin" | "django" => {
            let p = positionals(
                rest,
                &[
                    "--settings",
                    "--pythonpath",
                    "--database",
                    "-v",
                    "--verbosity",
                ],
            );
            r(Tool::Django, p.as_slice() == ["migrate"])
        }
        "sqlx" | "cargo-sqlx" => {
            let p = positionals(
                rest,
                &[
                    "--source",
                    "-D",
                    "--database-url",
                    "--target-version",
                    "--connect-timeout",
                ],
            );
            let target = rest.iter().any(|w| w.starts_with("--target-version"));
            r(Tool::Sqlx, p.as_slice() == ["migrate", "run"] && !target)
        }
        "dbmate" => {
            let p = positionals(
                rest,
                &[
                    "-d",
                    "--migrations-dir",
                    "-u",
                    "--url",
                    "-e",
                    "--env",
                    "--env-file",
                    "--migrations-table",
                    "-s",
                    "--schema-file",
                    "--wait-timeout",
                ],
            );
            r(Tool::Dbmate, matches!(p.as_slice(), ["up" | "migrate"]))
        }
        "migrate" | "golang-migrate" => {
            let p = positionals(
                rest,
                &[
                    "-path",
                    "--path",
                    "-source",
                    "--source",
                    "-database",
                    "--database",
                    "-lock-timeout",
                    "--lock-timeout",
                    "-prefetch",
                    "-verbose",
                ],
            );
            r(Tool::GolangMigrate, p.as_slice() == ["up"])
        }
        "prisma" => {
            let p = positionals(rest, &["--schema", "--config"]);
            r(Tool::Prisma, p.as_slice() == ["migrate", "deploy"])
        }
        "flyway" => {
            let p = positionals(rest, &[]);
            r(Tool::Flyway, p.as_slice() == ["migrate"])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn recognises_each_tool_and_its_apply_command() {
        for (cmd, tool, all) in [
            ("alembic upgrade head", Tool::Alembic, true),
            (
                "alembic -c /app/alembic.ini upgrade heads",
                Tool::Alembic,
                true,
            ),
            ("/venv/bin/alembic downgrade -1", Tool::Alembic, false),
            ("alembic upgrade abc123", Tool::Alembic, false),
            ("python -m alembic upgrade head", Tool::Alembic, true),
            ("python3.12 manage.py migrate --noinput", Tool::Django, true),
            ("python manage.py migrate shop 0002", Tool::Django, false),
            (
                "django-admin migrate --settings proj.settings",
                Tool::Django,
                true,
            ),
            ("uv run manage.py migrate", Tool::Django, true),
            ("sqlx migrate run --source db/migrations", Tool::Sqlx, true),
            ("sqlx migrate run --target-version 3", Tool::Sqlx, false),
            ("sqlx migrate revert", Tool::Sqlx, false),
            ("dbmate --no-dump-schema up", Tool::Dbmate, true),
            ("dbmate -d db/m migrate", Tool::Dbmate, true),
            ("dbmate rollback", Tool::Dbmate, false),
            (
                "migrate -path /m -database $(DATABASE_URL) up",
                Tool::GolangMigrate,
                true,
            ),
            (
                "migrate -path /m -database $(DATABASE_URL) up 2",
                Tool::GolangMigrate,
                false,
            ),
            ("npx prisma migrate deploy", Tool::Prisma, true),
            (
                "npx -y prisma migrate deploy --schema db/schema.prisma",
                Tool::Prisma,
                true,
            ),
            ("pnpm exec prisma migrate deploy", Tool::Prisma, true),
            ("prisma migrate reset", Tool::Prisma, false),
            (
                "flyway -locations=filesystem:/sql migrate",
                Tool::Flyway,
                true,
            ),
            ("flyway repair", Tool::Flyway, false),
        ] {
            assert_eq!(
                recognise(&words(cmd)),
                Some(Recognised {
                    tool,
                    applies_all: all
                }),
                "{cmd}"
            );
        }
        for cmd in [
            "sh -c x",
            "./migrate.sh",
            "python app.py",
            "rails db:migrate",
        ] {
            assert_eq!(recognise(&words(cmd)), None, "{cmd}");
        }
    }

    #[test]
    fn tool_names_parse() {
        for t in TOOLS {
            assert_eq!(parse(t.id(), "--tool").expect("ok"), t);
        }
        let e = parse("liquibase", "DBINIT_TOOL (--tool)").expect_err("unknown");
        assert!(
            e.0.contains("DBINIT_TOOL") && e.0.contains("alembic, django"),
            "{e}"
        );
    }
}
