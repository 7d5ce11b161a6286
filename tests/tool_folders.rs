//! Folders made by the other tools themselves, from their registries (sqlx-cli from crates.io,
//! dbmate from npm; scripts/migration-tools.sh): `sqlx migrate add`/`dbmate new` make the
//! files, `sqlx migrate run`/`dbmate up` apply them, and dbinit adopts the tool's history with
//! no map, applies the next file the tool made, and leaves the tool's table as it was.
//! Real PostgreSQL, real processes.

use std::path::{Path, PathBuf};
use std::process::Command;

use dbinit_tests::tools::migration_tools;
use dbinit_tests::{Pg, run};

#[path = "layouts/common.rs"]
mod common;

use common::*;

/// The schema sqlx-cli's migrations build: five files, the fourth `-- no-transaction` with a
/// `CREATE INDEX CONCURRENTLY`, as sqlx requires (one statement).
const SQLX_FILES: [(&str, &str); 5] = [
    (
        "create_users",
        "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);\n",
    ),
    (
        "add_created_at",
        "ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();\n",
    ),
    (
        "create_orders",
        "CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users);\n",
    ),
    (
        "users_email_idx",
        "-- no-transaction\nCREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n",
    ),
    (
        "first_user",
        "INSERT INTO users (email) VALUES ('ann@example.com');\n",
    ),
];

fn sqlx_add(dir: &Path, name: &str, sql: &str) -> PathBuf {
    let sqlx = &migration_tools().sqlx;
    let f = add(dir, || {
        let mut c = tool_cmd(sqlx);
        c.args(["migrate", "add", "--timestamp", "--source"])
            .arg(dir)
            .arg(name)
            .current_dir(dir.parent().expect("parent"));
        tool(c)
    });
    std::fs::write(&f, sql).expect("write migration");
    f
}

fn sqlx_run(pg: &Pg, db: &str, dir: &Path) {
    let mut c = tool_cmd(&migration_tools().sqlx);
    c.args(["migrate", "run", "--no-dotenv", "--source"])
        .arg(dir)
        .args(["--database-url", &pg.url(db)]);
    tool(c);
}

#[test]
fn a_sqlx_cli_folder_is_adopted_without_a_map_and_its_next_migration_applied_by_dbinit() {
    let pg = Pg::start_new();
    let work = tempfile::tempdir().expect("tmp");
    let dir = work.path().join("migrations");
    std::fs::create_dir(&dir).expect("mkdir");
    for (name, sql) in SQLX_FILES {
        sqlx_add(&dir, name, sql);
    }
    pg.psql("postgres", "CREATE DATABASE sqlx_app");
    sqlx_run(&pg, "sqlx_app", &dir);
    assert_eq!(
        pg.psql(
            "sqlx_app",
            "SELECT count(*) FROM _sqlx_migrations WHERE success"
        ),
        "5"
    );
    assert_eq!(
        pg.psql(
            "sqlx_app",
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email_idx'::regclass"
        ),
        "t"
    );
    let theirs = fingerprint(&pg, "sqlx_app", "_sqlx_migrations");

    // Without the setting: refused, naming sqlx's table and the setting, nothing written.
    let refused = dbinit(&pg, "sqlx_app", &dir, &[], &["run"]);
    code(&refused, 9);
    mentions(&refused, &["_sqlx_migrations", "DBINIT_ADOPT_FROM=sqlx"]);
    assert!(
        !refused.all_output().contains("DBINIT_ADOPT_MAP"),
        "{}",
        refused.all_output()
    );

    // The next change, made the sqlx way, then the switch: one setting, no map.
    let sixth = sqlx_add(
        &dir,
        "orders_total",
        "ALTER TABLE orders ADD COLUMN total numeric(12,2);\n",
    );
    let sixth_name = sixth
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    let adopt = [("DBINIT_ADOPT_FROM", "sqlx")];
    let ran = dbinit(&pg, "sqlx_app", &dir, &adopt, &["run"]);
    code(&ran, 0);
    mentions(
        &ran,
        &[
            &format!("applied 1 migration(s) ({sixth_name})"),
            "layout=sqlx",
        ],
    );
    let versions: Vec<String> = files(&dir).iter().map(|f| version(f).to_string()).collect();
    assert_eq!(pg.history("sqlx_app"), versions.join(","));
    let audit = pg.psql(
        "sqlx_app",
        "SELECT string_agg(action || ':' || source, ',' ORDER BY version) FROM dbinit_audit",
    );
    assert_eq!(
        audit,
        versions[..5]
            .iter()
            .map(|v| format!("adopt:_sqlx_migrations version {v}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    // 14-digit versions: the history column widened with the first of them.
    assert_eq!(
        version_column(&pg, "sqlx_app", "refinery_schema_history"),
        "bigint"
    );
    assert_eq!(pg.psql("sqlx_app", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'total'"), "1");
    assert_eq!(fingerprint(&pg, "sqlx_app", "_sqlx_migrations"), theirs);

    let status = dbinit(&pg, "sqlx_app", &dir, &adopt, &["status", "--exit-code"]);
    code(&status, 0);
    mentions(
        &status,
        &[
            &format!("adopted from _sqlx_migrations version {}", versions[4]),
            "5 version(s)",
        ],
    );
    // The next pod start is the usual no-op.
    let again = dbinit(&pg, "sqlx_app", &dir, &adopt, &["run"]);
    code(&again, 0);
    mentions(&again, &["up to date"]);
}

#[test]
fn sqlx_adoption_names_an_edited_or_missing_file_and_the_fix() {
    let pg = Pg::start_new();
    let work = tempfile::tempdir().expect("tmp");
    let dir = work.path().join("migrations");
    std::fs::create_dir(&dir).expect("mkdir");
    let made: Vec<PathBuf> = SQLX_FILES[..3]
        .iter()
        .map(|(n, s)| sqlx_add(&dir, n, s))
        .collect();
    pg.psql("postgres", "CREATE DATABASE sqlx_edit");
    sqlx_run(&pg, "sqlx_edit", &dir);
    let name = |p: &PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string()
    };

    // An applied file edited afterwards: sqlx recorded its SHA-384; dbinit names both.
    let original = std::fs::read_to_string(&made[1]).expect("read");
    std::fs::write(&made[1], format!("{original}-- a comment added later\n")).expect("edit");
    let recorded = pg.psql(
        "sqlx_edit",
        &format!(
            "SELECT encode(checksum, 'hex') FROM _sqlx_migrations WHERE version = {}",
            version(&name(&made[1]))
        ),
    );
    let edited = dbinit(&pg, "sqlx_edit", &dir, &[], &["adopt", "--from", "sqlx"]);
    code(&edited, 9);
    mentions(
        &edited,
        &[&name(&made[1]), "SHA-384", &recorded, "git log -p"],
    );
    std::fs::write(&made[1], &original).expect("restore");

    // An applied file that is gone.
    let kept = std::fs::read_to_string(&made[2]).expect("read");
    std::fs::remove_file(&made[2]).expect("remove");
    let missing = dbinit(&pg, "sqlx_edit", &dir, &[], &["adopt", "--from", "sqlx"]);
    code(&missing, 9);
    mentions(
        &missing,
        &[
            &format!(
                "version {} is applied in _sqlx_migrations but no file",
                version(&name(&made[2]))
            ),
            "restore",
        ],
    );
    assert_eq!(
        pg.psql(
            "sqlx_edit",
            "SELECT to_regclass('refinery_schema_history') IS NULL"
        ),
        "t"
    );
    std::fs::write(&made[2], kept).expect("restore");

    code(
        &dbinit(&pg, "sqlx_edit", &dir, &[], &["adopt", "--from", "sqlx"]),
        0,
    );
    code(
        &dbinit(&pg, "sqlx_edit", &dir, &[], &["status", "--exit-code"]),
        0,
    );
}

fn dbmate(pg: &Pg, db: &str, dir: &Path, args: &[&str]) -> Command {
    let mut c = tool_cmd(&migration_tools().dbmate);
    c.args(args)
        .env("DATABASE_URL", pg.url(db))
        .env("DBMATE_MIGRATIONS_DIR", dir)
        .env("DBMATE_NO_DUMP_SCHEMA", "true")
        .current_dir(dir);
    c
}

#[test]
fn a_dbmate_folder_is_adopted_without_a_map_and_dbmate_still_reads_its_own_table() {
    let pg = Pg::start_new();
    let dir = tempfile::tempdir().expect("tmp");
    let dir = dir.path();
    let bodies = [
        (
            "create_users",
            "",
            "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);",
        ),
        (
            "add_created_at",
            "",
            "ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();",
        ),
        (
            "create_orders",
            "",
            "CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users);",
        ),
        (
            "users_email_idx",
            " transaction:false",
            "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);",
        ),
        (
            "first_user",
            "",
            "INSERT INTO users (email) VALUES ('ann@example.com');",
        ),
        (
            "orders_total",
            "",
            "ALTER TABLE orders ADD COLUMN total numeric(12,2);",
        ),
    ];
    let mut names = Vec::new();
    for (i, (name, options, up)) in bodies.iter().enumerate() {
        let f = add(dir, || tool(dbmate(&pg, "dbmate_app", dir, &["new", name])));
        // Down sections that would fail if anything ran them.
        std::fs::write(
            &f,
            format!(
                "-- migrate:up{options}\n{up}\n\n-- migrate:down\nDROP TABLE no_such_table_{i};\n"
            ),
        )
        .expect("write");
        names.push(
            f.file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_string(),
        );
        if i == 4 {
            // dbmate applies the first five (and creates the database).
            tool(dbmate(&pg, "dbmate_app", dir, &["up"]));
        }
    }
    assert_eq!(
        pg.psql("dbmate_app", "SELECT count(*) FROM schema_migrations"),
        "5"
    );
    let theirs = fingerprint(&pg, "dbmate_app", "schema_migrations");

    let adopt = [("DBINIT_ADOPT_FROM", "dbmate")];
    let ran = dbinit(&pg, "dbmate_app", dir, &adopt, &["run"]);
    code(&ran, 0);
    mentions(
        &ran,
        &[
            &format!("applied 1 migration(s) ({})", names[5]),
            "layout=dbmate",
        ],
    );
    let versions: Vec<&str> = names.iter().map(|n| version(n)).collect();
    assert_eq!(pg.history("dbmate_app"), versions.join(","));
    assert_eq!(pg.psql("dbmate_app", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'total'"), "1");
    code(
        &dbinit(&pg, "dbmate_app", dir, &adopt, &["status", "--exit-code"]),
        0,
    );

    // dbmate's table is untouched, and dbmate still reads it: five applied, the sixth (which
    // dbinit applied) pending as far as dbmate knows.
    assert_eq!(fingerprint(&pg, "dbmate_app", "schema_migrations"), theirs);
    let status = run(dbmate(&pg, "dbmate_app", dir, &["status", "--exit-code"]));
    assert_eq!(
        status.code,
        Some(1),
        "dbmate status --exit-code exits 1 with a pending file:\n{}",
        status.all_output()
    );
    mentions(
        &status,
        &[
            &format!("[X] {}", names[0]),
            &format!("[X] {}", names[4]),
            &format!("[ ] {}", names[5]),
            "Applied: 5",
            "Pending: 1",
        ],
    );
}
