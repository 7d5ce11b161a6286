//! README and docs/: every fenced block is run by a test or says why not, every relative link
//! and anchor resolves, the generated tables are current (`make docs`), the configuration
//! reference names every flag and variable of both binaries, and the blocks this tier runs,
//! run as written against real PostgreSQL (the end-to-end tier runs the `e2e:` ones on a node).

#[path = "docs/adopting.rs"]
mod adopting;
#[path = "docs/checks.rs"]
mod checks;
#[path = "docs/local.rs"]
mod local;
#[path = "docs/migrations.rs"]
mod migrations;
#[path = "docs/operations.rs"]
mod operations;
#[path = "docs/reviewing.rs"]
mod reviewing;
