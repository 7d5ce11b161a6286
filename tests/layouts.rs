//! Migration files as other tools write them, read unchanged: golang-migrate and Prisma
//! folders applied from an empty database (down files never run; the same schema as psql
//! builds file by file), 64-bit versions up to i64::MAX and the history column that widens
//! once, and the previous release's binary sharing a history of small versions with this one.
//! Real PostgreSQL, real processes. Folders made by the real sqlx-cli and dbmate are in
//! tests/tool_folders.rs.

use std::path::{Path, PathBuf};
use std::process::Command;

use dbinit_tests::tools::previous_release;
use dbinit_tests::{Finished, Pg, pg_bin_dir, run};

#[path = "layouts/common.rs"]
mod common;

use common::*;

#[test]
fn golang_migrate_pairs_apply_in_order_from_empty_and_down_files_never_run() {
    let pg = Pg::start_new();
    let dir = dbinit_tests::fixtures::migrations(&[
        (
            "20230404095503_create_users.up.sql",
            "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);",
        ),
        ("20230404095503_create_users.down.sql", "DROP TABLE users;"),
        (
            "20230405120000_create_orders.up.sql",
            "CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint REFERENCES users);",
        ),
        // Would fail if it ran: a syntax error and a table that does not exist.
        (
            "20230405120000_create_orders.down.sql",
            "DROP TABLE no_such_table; THIS IS NOT SQL;",
        ),
        (
            "20230501000000_first_user.up.sql",
            "INSERT INTO users (email) VALUES ('ann@example.com');",
        ),
        (
            "20230501000000_first_user.down.sql",
            "DELETE FROM users; SELECT 1/0;",
        ),
    ]);
    let ran = dbinit(&pg, "gm_app", dir.path(), &[], &["run"]);
    code(&ran, 0);
    mentions(
        &ran,
        &[
            "applied 3 migration(s) (20230404095503_create_users.up.sql .. 20230501000000_first_user.up.sql)",
            "layout=golang-migrate",
        ],
    );
    assert_eq!(
        pg.history("gm_app"),
        "20230404095503,20230405120000,20230501000000"
    );
    assert_eq!(pg.psql("gm_app", "SELECT count(*) FROM users"), "1");
    let plan = dbinit(&pg, "gm_app", dir.path(), &[], &["plan"]);
    code(&plan, 0);
    mentions(&plan, &["nothing to apply"]);
}

fn pg_dump(pg: &Pg, db: &str) -> String {
    let bin = pg_bin_dir().join("pg_dump");
    let out = Command::new(if bin.is_file() {
        bin
    } else {
        PathBuf::from("pg_dump")
    })
    .args([
        "--no-owner",
        "--no-privileges",
        "-h",
        "127.0.0.1",
        "-p",
        &pg.port.to_string(),
        "-U",
        "postgres",
        "-d",
        db,
    ])
    .args([
        "--exclude-table=refinery_schema_history",
        "--exclude-table=dbinit_seed_history",
    ])
    .env("PGPASSWORD", dbinit_tests::PG_PASSWORD)
    .output()
    .expect("run pg_dump");
    // `make test-pg-majors` runs PostgreSQL 18 from binaries without pg_dump, and Debian's
    // pg_dump 15 refuses a newer server: there, the catalogs say the same thing.
    if String::from_utf8_lossy(&out.stderr).contains("server version mismatch") {
        return catalog_dump(pg, db);
    }
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // pg_dump 15.14+ fences its output with a random \restrict key.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What pg_dump would compare, from the catalogs: columns, constraints, indexes, enum
/// labels and every row of the user's tables (dbinit's history tables left out).
fn catalog_dump(pg: &Pg, db: &str) -> String {
    let ours = "('refinery_schema_history', 'dbinit_seed_history')";
    let tables = pg.psql(
        db,
        &format!("SELECT string_agg(quote_ident(relname), ',' ORDER BY relname) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND relname NOT IN {ours}"),
    );
    let rows: Vec<String> = tables
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|t| format!("SELECT 'row {t} ' || r::text FROM {t} r"))
        .collect();
    let sql = format!(
        "SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
           SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT IN {ours}
           UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text NOT IN {ours}
           UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename NOT IN {ours}
           UNION ALL SELECT 'enum ' || enumtypid::regtype || ' ' || enumsortorder || ' ' || enumlabel FROM pg_enum
           {}
         ) s(x)",
        rows.iter().map(|r| format!("UNION ALL {r}")).collect::<Vec<_>>().join(" ")
    );
    pg.psql(db, &sql)
}

#[test]
fn prisma_directories_apply_in_order_with_the_schema_psql_builds_file_by_file() {
    let pg = Pg::start_new();
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path();
    std::fs::write(
        dir.join("migration_lock.toml"),
        "provider = \"postgresql\"\n",
    )
    .expect("write");
    let migrations = [
        (
            "20240101090000_init",
            "-- CreateTable\nCREATE TABLE \"User\" (\n    \"id\" SERIAL NOT NULL,\n    \"email\" TEXT NOT NULL,\n    CONSTRAINT \"User_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- CreateIndex\nCREATE UNIQUE INDEX \"User_email_key\" ON \"User\"(\"email\");\n",
        ),
        (
            "20240215143000_posts",
            "-- CreateTable\nCREATE TABLE \"Post\" (\n    \"id\" SERIAL NOT NULL,\n    \"title\" TEXT NOT NULL,\n    \"authorId\" INTEGER NOT NULL,\n    CONSTRAINT \"Post_pkey\" PRIMARY KEY (\"id\")\n);\n\n-- AddForeignKey\nALTER TABLE \"Post\" ADD CONSTRAINT \"Post_authorId_fkey\" FOREIGN KEY (\"authorId\") REFERENCES \"User\"(\"id\") ON DELETE RESTRICT ON UPDATE CASCADE;\n",
        ),
        (
            "20240301000000_role_enum",
            "-- CreateEnum\nCREATE TYPE \"Role\" AS ENUM ('USER', 'ADMIN');\n\n-- AlterTable\nALTER TABLE \"User\" ADD COLUMN \"role\" \"Role\" NOT NULL DEFAULT 'USER';\n",
        ),
        (
            "20240302000000_admin",
            "INSERT INTO \"User\" (\"email\", \"role\") VALUES ('admin@example.com', 'ADMIN');\n",
        ),
    ];
    for (d, sql) in migrations {
        std::fs::create_dir(dir.join(d)).expect("mkdir");
        std::fs::write(dir.join(d).join("migration.sql"), sql).expect("write");
    }
    let ran = dbinit(&pg, "prisma_app", dir, &[], &["run"]);
    code(&ran, 0);
    mentions(
        &ran,
        &[
            "applied 4 migration(s) (20240101090000_init/migration.sql .. 20240302000000_admin/migration.sql)",
            "layout=prisma",
        ],
    );
    assert_eq!(
        pg.history("prisma_app"),
        "20240101090000,20240215143000,20240301000000,20240302000000"
    );

    pg.psql("postgres", "CREATE DATABASE prisma_psql");
    for (d, _) in migrations {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-1",
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "prisma_psql",
                "-f",
            ])
            .arg(dir.join(d).join("migration.sql"))
            .env("PGPASSWORD", dbinit_tests::PG_PASSWORD)
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql -1 -f {d}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dump = pg_dump(&pg, "prisma_app");
    for built in [
        "User_email_key",
        "Post_authorId_fkey",
        "ADMIN",
        "admin@example.com",
    ] {
        assert!(
            dump.contains(built),
            "{built} missing from the dump:\n{dump}"
        );
    }
    assert_eq!(dump, pg_dump(&pg, "prisma_psql"));
}

#[test]
fn versions_up_to_i64_max_sort_and_apply_and_the_history_column_widens_once_with_its_row() {
    let pg = Pg::start_new();
    let dir = dbinit_tests::fixtures::migrations(&[
        (
            "V1__one.sql",
            "CREATE TABLE applied (n bigserial PRIMARY KEY, v bigint NOT NULL);\nINSERT INTO applied (v) VALUES (1);",
        ),
        ("V2__two.sql", "INSERT INTO applied (v) VALUES (2);"),
    ]);
    code(&dbinit(&pg, "wide", dir.path(), &[], &["run"]), 0);
    assert_eq!(
        version_column(&pg, "wide", "refinery_schema_history"),
        "integer"
    );

    // The first wide version fails: its history row and the widening roll back together.
    let ts = dir.path().join("V20230404095503__timestamp.sql");
    std::fs::write(
        &ts,
        "INSERT INTO applied (v) VALUES (20230404095503);\nSELECT * FROM no_such_table;",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("V9223372036854775807__last.sql"),
        "INSERT INTO applied (v) VALUES (9223372036854775807);",
    )
    .expect("write");
    let failed = dbinit(&pg, "wide", dir.path(), &[], &["run"]);
    code(&failed, 5);
    mentions(&failed, &["V20230404095503__timestamp", "no_such_table"]);
    assert_eq!(
        version_column(&pg, "wide", "refinery_schema_history"),
        "integer"
    );
    assert_eq!(pg.history("wide"), "1,2");

    std::fs::write(&ts, "INSERT INTO applied (v) VALUES (20230404095503);").expect("write");
    let ran = dbinit(&pg, "wide", dir.path(), &[], &["run"]);
    code(&ran, 0);
    mentions(
        &ran,
        &[
            "at version 9223372036854775807",
            "applied 2 migration(s) (V20230404095503__timestamp .. V9223372036854775807__last)",
        ],
    );
    assert_eq!(
        version_column(&pg, "wide", "refinery_schema_history"),
        "bigint"
    );
    assert_eq!(pg.history("wide"), "1,2,20230404095503,9223372036854775807");
    assert_eq!(
        pg.psql(
            "wide",
            "SELECT string_agg(v::text, ',' ORDER BY n) FROM applied"
        ),
        "1,2,20230404095503,9223372036854775807"
    );

    let status = dbinit(
        &pg,
        "wide",
        dir.path(),
        &[],
        &["status", "--exit-code", "--output", "json"],
    );
    code(&status, 0);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    assert_eq!(v["applied_version"].as_i64(), Some(i64::MAX), "{v}");
    assert_eq!(v["target_version"].as_i64(), Some(i64::MAX), "{v}");
    assert_eq!(
        v["migrations"][2]["name"], "V20230404095503__timestamp",
        "{v}"
    );
    code(&dbinit(&pg, "wide", dir.path(), &[], &["wait"]), 0);
    let plan = dbinit(&pg, "wide", dir.path(), &[], &["plan"]);
    mentions(
        &plan,
        &["applied version 9223372036854775807, target version 9223372036854775807"],
    );
    // repair takes a 64-bit version too.
    std::fs::write(
        &ts,
        "INSERT INTO applied (v) VALUES (20230404095503); -- applied by hand as well\n",
    )
    .expect("write");
    code(
        &dbinit(&pg, "wide", dir.path(), &[], &["status", "--exit-code"]),
        6,
    );
    code(
        &dbinit(
            &pg,
            "wide",
            dir.path(),
            &[],
            &["repair", "--version", "20230404095503"],
        ),
        0,
    );
    code(
        &dbinit(&pg, "wide", dir.path(), &[], &["status", "--exit-code"]),
        0,
    );
    assert_eq!(version_column(&pg, "wide", "dbinit_audit"), "bigint");
}

/// The previous release's binary, with the clean environment `command` gives this one.
fn old(pg: &Pg, db: &str, dir: &Path, args: &[&str]) -> Finished {
    let mut c = Command::new(previous_release());
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DBINIT_LOG", "info")
        .args(args)
        .envs(pg.env())
        .env("POSTGRES_DB", db)
        .env("DBINIT_MIGRATIONS_DIR", dir)
        .env("DBINIT_TIMEOUT", "60s");
    run(c)
}

#[test]
fn the_previous_release_and_this_one_share_a_history_of_small_versions_both_ways() {
    let pg = Pg::start_new();
    let dir = dbinit_tests::fixtures::migrations(&[
        (
            "V1__accounts.sql",
            "CREATE TABLE accounts (id int PRIMARY KEY);",
        ),
        (
            "V2__orders.sql",
            "CREATE TABLE orders (id int PRIMARY KEY, account_id int REFERENCES accounts);",
        ),
    ]);
    // The previous release writes the history; this one reads it as up to date.
    code(&old(&pg, "compat", dir.path(), &["run"]), 0);
    code(
        &dbinit(&pg, "compat", dir.path(), &[], &["status", "--exit-code"]),
        0,
    );
    mentions(
        &dbinit(&pg, "compat", dir.path(), &[], &["run"]),
        &["up to date"],
    );

    // This one adds to it; the previous release (an image rolled back to) reads it as up to
    // date and goes on adding.
    std::fs::write(
        dir.path().join("V3__orders_total.sql"),
        "ALTER TABLE orders ADD COLUMN total numeric(12,2);",
    )
    .expect("write");
    code(&dbinit(&pg, "compat", dir.path(), &[], &["run"]), 0);
    assert_eq!(
        version_column(&pg, "compat", "refinery_schema_history"),
        "integer"
    );
    code(
        &old(&pg, "compat", dir.path(), &["status", "--exit-code"]),
        0,
    );
    mentions(&old(&pg, "compat", dir.path(), &["run"]), &["up to date"]);
    std::fs::write(
        dir.path().join("V4__invoices.sql"),
        "CREATE TABLE invoices (id int PRIMARY KEY);",
    )
    .expect("write");
    let ran = old(&pg, "compat", dir.path(), &["run"]);
    code(&ran, 0);
    mentions(&ran, &["V4__invoices"]);
    code(
        &dbinit(&pg, "compat", dir.path(), &[], &["status", "--exit-code"]),
        0,
    );
    assert_eq!(pg.history("compat"), "1,2,3,4");
    // Both computed the same checksums: neither sees an edited file.
    code(
        &old(&pg, "compat", dir.path(), &["status", "--exit-code"]),
        0,
    );
}
