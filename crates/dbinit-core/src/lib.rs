//! dbinit-core: everything the `dbinit` init container and the `dbinit-job` migration job
//! share, with no Kubernetes in it.
//!
//! A run is: [`config::resolve`] the settings (flags > env > file > defaults), wait with
//! [`ready::wait_for_dependencies`] until PostgreSQL and Redis are usable, then create,
//! migrate and seed with [`migrate::run`] (or [`migrate::wait`] for another runner to do it);
//! [`outcome::finish`] maps the result to an [`ExitCode`] and a termination message, with
//! secrets scrubbed.
//!
//! Rooms: [`config`] (one file per source or syntax), [`postgres`] (connect, TLS, quoting,
//! database creation), [`migrate`] (set, plan, history, lock, apply, session, blockers,
//! splitter, report), and the small shared ones: [`error`], [`outcome`], [`secret`],
//! [`retry`], [`telemetry`], [`ready`], [`redis`], [`cli`].

pub mod cli;
pub mod config;
pub mod error;
pub mod migrate;
pub mod outcome;
pub mod postgres;
pub mod ready;
pub mod redis;
pub mod retry;
pub mod secret;
pub mod telemetry;

pub use error::{Error, ExitCode, Result};
pub use secret::Secret;
