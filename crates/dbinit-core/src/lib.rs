//! dbinit-core: everything the `dbinit` init container and the `dbinit-job` migration job
//! share, with no Kubernetes in it.
//!
//! A run is: [`config::resolve`] the settings (flags > env > file > defaults), wait with
//! [`ready::wait_for_dependencies`] until PostgreSQL and Redis are usable, then create,
//! migrate and seed with [`run::run`] (or [`run::wait`] for another runner to do it);
//! [`outcome::finish`] maps the result to an [`ExitCode`] and a
//! termination message, with secrets scrubbed.

pub mod apply;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod create;
pub mod error;
pub mod history;
pub mod lock;
pub mod migrations;
pub mod outcome;
pub mod postgres;
pub mod ready;
pub mod redis;
pub mod run;
pub mod secret;
pub mod sqlsplit;
pub mod telemetry;

pub use error::{Error, ExitCode, Result};
pub use secret::Secret;
