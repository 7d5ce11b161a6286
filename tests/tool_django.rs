//! Tool mode with real Django (PyPI Django 5.x, psycopg2): `dbinit run -- python manage.py
//! migrate` on a fresh database, an up-to-date one (no child started), one with a pending
//! migration, a failing migration (exit 5 with Django's words), and ten runners at once
//! (each migration once, no duplicate history: bare Django duplicates both, tools.md §4).
//! The project's settings.py reads DATABASE_URL as docs/keeping-your-tool.md shows.

use std::path::Path;

use dbinit_tests::tools::{
    self, assert_all_succeeded, assert_starts_no_child, concurrently, counts, dbinit, termination,
};
use dbinit_tests::{Pg, run};

const MANAGE_PY: &str = r#"#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
"#;

/// docs/keeping-your-tool.md's settings.py: DATABASES from the DATABASE_URL dbinit gives the child.
const SETTINGS_PY: &str = r#"import os
from urllib.parse import parse_qsl, unquote, urlsplit

SECRET_KEY = "test-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "shop.apps.ShopConfig",
]

_url = urlsplit(os.environ["DATABASE_URL"])
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(_url.path.lstrip("/")),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "",
        "PORT": _url.port or "",
        "OPTIONS": dict(parse_qsl(_url.query)),
    }
}
"#;

fn migration(deps: &str, sql: &str) -> String {
    format!(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [{deps}]\n    operations = [migrations.RunSQL({sql:?})]\n"
    )
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

/// The project: two migrations of its own app, the second a data migration that is slow.
fn project(sleep_s: u32) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tmp");
    let p = d.path();
    write(p, "manage.py", MANAGE_PY);
    write(p, "proj/__init__.py", "");
    write(p, "proj/settings.py", SETTINGS_PY);
    write(p, "shop/__init__.py", "");
    write(
        p,
        "shop/apps.py",
        "from django.apps import AppConfig\n\n\nclass ShopConfig(AppConfig):\n    name = \"shop\"\n",
    );
    write(p, "shop/migrations/__init__.py", "");
    write(
        p,
        "shop/migrations/0001_initial.py",
        &migration(
            "",
            "CREATE TABLE shop_item (id serial PRIMARY KEY, name text)",
        ),
    );
    write(
        p,
        "shop/migrations/0002_data.py",
        &migration(
            "(\"shop\", \"0001_initial\")",
            &format!(
                "SELECT pg_sleep({sleep_s}); INSERT INTO shop_item (name) VALUES ('from 0002')"
            ),
        ),
    );
    d
}

fn migrate(pg: &Pg, db: &str, dir: &Path) -> std::process::Command {
    let bin = tools::venv_bin_dir();
    let mut c = dbinit(pg, db, dir, "run", &[&bin]);
    c.args(["--", "python", "manage.py", "migrate", "--noinput"]);
    c
}

#[test]
fn fresh_up_to_date_pending_and_failing() {
    let pg = Pg::start_new();
    let d = project(0);
    let p = d.path();
    // Fresh: the database does not exist.
    let out = run(migrate(&pg, "shop", p));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stdout.contains("Applying shop.0002_data... OK"),
        "{}",
        out.stdout
    );
    assert_eq!(counts(&pg, "shop", "shop_item", "name"), "from 0002=1");

    // Up to date: Django is not started, neither the real command...
    let out = run(migrate(&pg, "shop", p));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stderr.contains("Django is up to date"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("No migrations to apply"),
        "{}",
        out.stdout
    );
    // ...nor one that would fail if it ran.
    let bin = tools::venv_bin_dir();
    let mut c = dbinit(&pg, "shop", p, "run", &[&bin]);
    c.env("DJANGO_SETTINGS_MODULE", "proj.settings");
    assert_starts_no_child(c, "django");

    // Pending: a new migration runs.
    write(
        p,
        "shop/migrations/0003_price.py",
        &migration(
            "(\"shop\", \"0002_data\")",
            "ALTER TABLE shop_item ADD COLUMN price int",
        ),
    );
    let out = run(migrate(&pg, "shop", p));
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(
        out.stderr
            .contains("Django has pending migrations: shop.0003_price"),
        "{}",
        out.stderr
    );
    assert_eq!(
        pg.psql(
            "shop",
            "SELECT count(*) FROM django_migrations WHERE app = 'shop' AND name = '0003_price'"
        ),
        "1"
    );

    // A failing migration: exit 5 with Django's words; it rolled back.
    write(
        p,
        "shop/migrations/0004_broken.py",
        &migration(
            "(\"shop\", \"0003_price\")",
            "CREATE TABLE t_ok (id int); ALTER TABLE nope ADD COLUMN x int",
        ),
    );
    let out = run(migrate(&pg, "shop", p));
    assert_eq!(out.code, Some(5), "{}", out.all_output());
    let tm = termination(p);
    assert!(
        tm.contains("exited with status 1") && tm.contains("relation \"nope\" does not exist"),
        "{tm}"
    );
    assert_eq!(pg.psql("shop", "SELECT to_regclass('t_ok') IS NULL"), "t");
}

#[test]
fn ten_runners_apply_each_migration_once() {
    let pg = Pg::start_new();
    let d = project(3);
    let runs = concurrently(10, |_| migrate(&pg, "fresh", d.path()));
    assert_all_succeeded(&runs);
    assert_eq!(counts(&pg, "fresh", "shop_item", "name"), "from 0002=1");
    // No duplicate history rows (django_migrations has no unique key).
    assert_eq!(
        pg.psql(
            "fresh",
            "SELECT count(*) = count(DISTINCT (app, name)) FROM django_migrations"
        ),
        "t"
    );
    let started = runs
        .iter()
        .filter(|r| {
            r.stderr
                .contains("running the migration command under the lock")
        })
        .count();
    assert_eq!(started, 1, "one runner started Django");
}
