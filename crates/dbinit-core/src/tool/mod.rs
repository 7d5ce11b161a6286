//! Tool mode: dbinit around a team's own migration tool (Alembic, Django, sqlx, dbmate,
//! golang-migrate, Prisma, Flyway, or any command), with the same wait, database creation,
//! advisory lock, seeds, status and exit codes as a SQL run.
//!
//! From the bottom up: the command ([`command`]) and which tool it is ([`kind`]); the
//! tool's files in the image ([`files`]) and its table ([`recorded`]), judged against each
//! other ([`state`]); the child's connection settings ([`env`]), the child process
//! ([`child`]) and its database sessions ([`sessions`]); what stops a run ([`error`]), what
//! it did ([`report`]) and its options ([`settings`]); and on top the flows: `run`
//! ([`run`]), `wait` and the state for `status`/`plan` ([`observe`]). Above the migration
//! room, whose lock, seeds and errors it uses; nothing below imports it.

pub mod child;
pub mod command;
pub mod env;
pub mod error;
pub mod files;
mod judge;
pub mod kind;
pub mod observe;
pub mod recorded;
pub mod report;
pub mod run;
pub mod sessions;
pub mod settings;
pub mod state;
#[cfg(test)]
mod state_tests;

pub use error::{Error, Result};
pub use settings::ToolSettings;
