//! Each tool's own files in the image, read by that tool's own rules: where the tool looks
//! (its flags in the command, its environment variables, its defaults relative to the
//! working directory) and what it takes as a migration. The result, [`Expected`], is what
//! the tool's table must hold for the command to have nothing to do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::kind::Tool;
use crate::postgres::sql::TableName;

pub mod alembic;
#[cfg(test)]
mod alembic_tests;
pub mod dbmate;
pub mod django;
#[cfg(test)]
mod django_tests;
pub mod flyway;
pub mod golang_migrate;
mod ini;
pub mod prisma;
mod pyscan;
#[cfg(test)]
mod pyscan_tests;
pub mod sqlx;

/// The environment variables the tools read for their files, as the configuration room
/// found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolEnv {
    /// `ALEMBIC_CONFIG`.
    pub alembic_config: Option<String>,
    /// `DBMATE_MIGRATIONS_DIR`.
    pub dbmate_migrations_dir: Option<String>,
    /// `DBMATE_MIGRATIONS_TABLE`.
    pub dbmate_migrations_table: Option<String>,
    /// `DJANGO_SETTINGS_MODULE`.
    pub django_settings_module: Option<String>,
    /// `PYTHONPATH`.
    pub pythonpath: Option<String>,
    /// `VIRTUAL_ENV`.
    pub virtual_env: Option<String>,
    /// `FLYWAY_LOCATIONS`.
    pub flyway_locations: Option<String>,
    /// `FLYWAY_TABLE`.
    pub flyway_table: Option<String>,
    /// `PATH`, to find the interpreter of `manage.py`.
    pub path: Option<std::ffi::OsString>,
}

/// What the tool's table must hold for the command to have nothing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The revisions and their heads.
    Alembic(alembic::AlembicFiles),
    /// The installed apps' migrations.
    Django(django::DjangoFiles),
    /// The versions and checksums; `checksums` is false when sqlx.toml changes how sqlx
    /// computes them.
    Sqlx {
        /// By version.
        files: BTreeMap<i64, sqlx::SqlxFile>,
        /// Whether the rows' checksums can be compared.
        checksums: bool,
    },
    /// The version strings.
    Dbmate(BTreeMap<String, PathBuf>),
    /// The `up` versions, and the directory (for the fix command).
    GolangMigrate {
        /// By version.
        files: BTreeMap<u64, PathBuf>,
        /// `-path`.
        dir: PathBuf,
    },
    /// The migration folder names.
    Prisma(BTreeSet<String>),
    /// The versioned migrations.
    Flyway(Vec<(flyway::FlywayVersion, PathBuf)>),
}

/// Where a tool's files and table are.
#[derive(Debug, Clone)]
pub struct Project {
    /// The tool.
    pub tool: Tool,
    /// Its history table.
    pub table: TableName,
    /// The working directory the command runs in.
    pub cwd: PathBuf,
    /// The command's words (program first), for the tool's own flags; empty for
    /// `dbinit wait --tool T` without a command.
    pub argv: Vec<String>,
    /// The tool's variables.
    pub env: ToolEnv,
}

/// The program's arguments after launchers (`python -m`, `npx`): the tool's own flags.
fn tool_args(argv: &[String]) -> &[String] {
    argv.get(1..).unwrap_or_default()
}

impl Project {
    /// Where `tool`'s files are for a command run in `cwd`. A custom table that is not a
    /// plain name is an error.
    pub fn new(tool: Tool, argv: &[String], env: ToolEnv, cwd: &Path) -> Result<Self, String> {
        let args = tool_args(argv);
        let table = match tool {
            Tool::Alembic => "alembic_version".to_string(),
            Tool::Django => "django_migrations".to_string(),
            Tool::Sqlx => "_sqlx_migrations".to_string(),
            Tool::Prisma => "_prisma_migrations".to_string(),
            Tool::Dbmate => {
                dbmate::project(args, None, env.dbmate_migrations_table.as_deref(), cwd).table
            }
            Tool::GolangMigrate => golang_migrate::table(args),
            Tool::Flyway => env
                .flyway_table
                .clone()
                .into_iter()
                .chain(
                    args.iter()
                        .filter_map(|a| a.strip_prefix("-table=").map(String::from)),
                )
                .next_back()
                .unwrap_or_else(|| "flyway_schema_history".into()),
        };
        let table = TableName::parse(&format!("{}'s history table", tool.name()), &table)
            .map_err(|e| e.0)?;
        Ok(Self {
            tool,
            table,
            cwd: cwd.to_path_buf(),
            argv: argv.to_vec(),
            env,
        })
    }

    /// Reads the files; `Err` says why they cannot be read (and the state is unknown).
    pub fn read(&self) -> Result<Expected, String> {
        let args = tool_args(&self.argv);
        let cwd = &self.cwd;
        let env = &self.env;
        Ok(match self.tool {
            Tool::Alembic => {
                let cfg = alembic::AlembicConfig::locate(args, env.alembic_config.as_deref(), cwd);
                Expected::Alembic(alembic::read(&cfg, cwd)?)
            }
            Tool::Django => {
                let python = ["python3", "python"].iter().find_map(|p| {
                    std::env::split_paths(env.path.as_deref()?)
                        .map(|d| d.join(p))
                        .find(|c| c.is_file())
                });
                let denv = django::DjangoEnv {
                    settings_module: env.django_settings_module.as_deref(),
                    pythonpath: env.pythonpath.as_deref(),
                    virtual_env: env.virtual_env.as_deref(),
                    python,
                };
                let p = django::DjangoProject::locate(&self.argv, &denv, cwd);
                Expected::Django(django::read(&p)?)
            }
            Tool::Sqlx => Expected::Sqlx {
                files: sqlx::read(&sqlx::source_dir(args, cwd))?,
                checksums: sqlx::checksums_comparable(cwd),
            },
            Tool::Dbmate => {
                let p = dbmate::project(
                    args,
                    env.dbmate_migrations_dir.as_deref(),
                    env.dbmate_migrations_table.as_deref(),
                    cwd,
                );
                Expected::Dbmate(dbmate::read(&p)?)
            }
            Tool::GolangMigrate => {
                let dir = golang_migrate::source_dir(args, cwd).ok_or_else(|| {
                    "the command names no migrations directory (-path DIR or -source file://DIR)"
                        .to_string()
                })?;
                Expected::GolangMigrate {
                    files: golang_migrate::read(&dir)?,
                    dir,
                }
            }
            Tool::Prisma => Expected::Prisma(prisma::read(&prisma::migrations_dir(args, cwd)?)?),
            Tool::Flyway => {
                let p = flyway::project(
                    args,
                    env.flyway_locations.as_deref(),
                    env.flyway_table.as_deref(),
                    cwd,
                )?;
                Expected::Flyway(flyway::read(&p)?)
            }
        })
    }
}
