//! dbinit-k8s: the Kubernetes side of `dbinit-job` — a Lease lock with fencing
//! ([`lease::LeaseLock`]), the status ConfigMap ([`status::StatusWriter`]) and the job flow
//! that wraps dbinit-core's create/migrate/seed run in them ([`job::JobCli`]).

pub mod job;
pub mod lease;
pub mod status;

pub use job::JobCli;
