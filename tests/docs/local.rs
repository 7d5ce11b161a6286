//! Getting started on your machine: the page's blocks against a PostgreSQL on localhost:5432,
//! as a reader's machine has it. The server listens in a network namespace of the test's own,
//! where 5432 is free whatever else runs here, and the blocks run in that namespace.

use dbinit_tests::docs::{DocShell, Docs};
use dbinit_tests::{Pg, PgOpts, PrivateNet};

/// PostgreSQL 15 on localhost:5432 in `net`, its role `postgres` with the password
/// `postgres`: what the page's first, illustrative step sets up.
fn local_postgres(net: &PrivateNet) -> Pg {
    let pg = Pg::init(PgOpts {
        settings: vec![("listen_addresses".into(), "localhost".into())],
        netns: Some(net.path()),
        port: Some(5432),
    });
    pg.start();
    pg.psql("postgres", "ALTER ROLE postgres PASSWORD 'postgres'");
    pg
}

#[test]
fn getting_started_on_your_machine_runs_as_written() {
    let docs = Docs::load();
    let net = PrivateNet::new();
    let pg = local_postgres(&net);

    let ran = DocShell::new()
        .netns(&net.path())
        .run_block(&docs, "local-first-run");
    let out = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        out.contains("applied 7 migration(s)") && out.contains("nothing to apply"),
        "the first run migrates, the second finds nothing to do:\n{out}"
    );
    assert_eq!(pg.history("agentic_deals"), "1,2,3,4,5,6,7");

    // Step 3 runs in a directory of the reader's own, with step 2's variables still set.
    let dir = tempfile::tempdir().expect("tmp");
    let ran = DocShell::new()
        .netns(&net.path())
        .cwd(dir.path())
        .set("POSTGRES_HOST", "localhost")
        .set("POSTGRES_USER", "postgres")
        .set("POSTGRES_PASSWORD", "postgres")
        .run_block(&docs, "local-own-migrations");
    assert!(
        ran.stdout.contains("would create database")
            && ran.stdout.contains("V1__create_notes")
            && ran.stdout.contains("notes.sql"),
        "plan says what the page's comment says: create the database, apply V1, seed:\n{}",
        ran.stdout
    );
    assert_eq!(pg.history("notes"), "1");
    assert_eq!(pg.psql("notes", "SELECT body FROM notes"), "hello");
}
