//! Migrations: the three flows over a migration set — [`run`] (create, lock, migrate, seed),
//! [`wait`] (block until another runner has applied everything) and [`status`] (report,
//! change nothing) — and `plan`, `baseline`, `adopt` and `repair` beside them. Every flow
//! reads the history once and judges it with the one comparison, [`plan::plan`].
//!
//! From the bottom up: the set and its files ([`set`], [`header`], [`sqlsplit`], [`drift`]),
//! what the database holds ([`history`]) and the comparison ([`plan`]), what a command did
//! ([`report`]) and why it stopped ([`error`]), the compatibility floor a contract step sets
//! ([`floor`]); the session a file runs in ([`session`]),
//! who blocks it ([`blockers`]), the advisory lock ([`lock`]) and applying files ([`apply`]);
//! the options ([`settings`]); databases dbinit did not build ([`adopt`]); and on top the
//! flows: `run`, `wait` and `status`, [`preview`] (`dbinit plan`), [`review`] (`dbinit
//! lint`, and the review `plan` and `run` make of what they would apply). This file only names
//! them: no room below imports it.

pub mod adopt;
pub mod apply;
pub mod blockers;
pub mod drift;
pub mod error;
pub mod floor;
pub mod header;
pub mod history;
pub mod lock;
mod observe;
pub mod plan;
pub mod preview;
pub mod report;
pub mod review;
mod run;
pub mod session;
pub mod set;
pub mod settings;
pub mod sqlsplit;

pub use error::{Error, Refusal, Result};
pub use lock::OnWait;
pub use observe::{status, wait};
pub use run::{migrate, migrate_observed, run};
pub use settings::MigrateSettings;
