//! dbinit-core: everything the `dbinit` init container and the `dbinit-job` migration job
//! share, with no Kubernetes in it.
//!
//! A run is: [`config::resolve`] the settings (flags > env > file > defaults), wait with
//! [`ready::wait_for_dependencies`] until PostgreSQL and Redis are usable, then create,
//! migrate and seed with [`migrate::run`] (or [`migrate::wait`] for another runner to do it);
//! [`outcome::finish`] maps the result to an [`ExitCode`] and a termination message, with
//! secrets scrubbed.
//!
//! Rooms, and imports run one way, from the edge down to the leaves:
//! - the edge: [`cli`] (the `dbinit` command line), [`outcome`] (how a run ends) and
//!   [`error`] (the crate's [`Error`], composing the rooms' own errors with `#[from]`);
//! - [`config`] (one file per source or syntax), which builds every room's settings;
//! - [`tool`] (tool mode: a team's own migration command run under the migration lock,
//!   skipped when the tool's table already holds what its files in the image describe);
//! - [`migrate`] (set, header, history, plan, report, its own error, session, lock, apply,
//!   the `run`/`wait`/`status`/`plan` flows, and `adopt/` for databases dbinit did not build);
//! - [`lint`] (reviewing files before they run: squawk's and dbinit's rules from the
//!   `dbinit-lint` crate, the live facts of the tables they touch, verdicts);
//! - [`ready`] (waiting for PostgreSQL and Redis), [`postgres`] (connect, TLS, quoting,
//!   database creation, its own error) and [`redis`];
//! - the leaves, which import nothing else of the crate ([`dependency`] only [`exit`]):
//!   [`dependency`] (a dependency that timed out, refused or is unusable), [`exit`] (exit
//!   codes and the one-line message), [`setting`] (`ConfigError` and the duration syntax),
//!   [`signal`], [`secret`], [`retry`], [`telemetry`] and [`text`].

pub mod cli;
pub mod config;
pub mod dependency;
pub mod error;
pub mod exit;
pub mod lint;
pub mod migrate;
pub mod outcome;
pub mod postgres;
pub mod ready;
pub mod redis;
pub mod retry;
pub mod secret;
pub mod setting;
pub mod signal;
pub mod telemetry;
pub mod text;
pub mod tool;

pub use error::{Error, Result};
pub use exit::ExitCode;
pub use secret::Secret;
