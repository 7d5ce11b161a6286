//! Unit tests of [`super::alembic`].

use std::path::Path;

use super::alembic::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join(name), text).expect("write");
}

fn rev(id: &str, down: &str) -> String {
    format!(
        "\"\"\"msg\n\nRevision ID: {id}\n\"\"\"\nfrom typing import Sequence, Union\n\nrevision: str = '{id}'\ndown_revision: Union[str, Sequence[str], None] = {down}\nbranch_labels: Union[str, Sequence[str], None] = None\n"
    )
}

#[test]
fn heads_of_a_chain_a_branch_and_a_merge() {
    let d = tempfile::tempdir().expect("tempdir");
    write(
        d.path(),
        "alembic.ini",
        "[alembic]\nscript_location = %(here)s/alembic\npath_separator = os\n",
    );
    let v = d.path().join("alembic/versions");
    write(&v, "a1_first.py", &rev("a1", "None"));
    write(&v, "b2_second.py", &rev("b2", "'a1'"));
    write(&v, "__init__.py", "");
    write(&v, "notes.txt", "revision = 'x'");
    let cfg = AlembicConfig::locate(&[], None, d.path());
    assert_eq!(read(&cfg, d.path()).expect("read").heads, ["b2"]);
    // A branch: two heads, as `alembic heads` shows them.
    write(&v, "c3_branch.py", &rev("c3", "'a1'"));
    assert_eq!(read(&cfg, d.path()).expect("read").heads, ["b2", "c3"]);
    // The merge closes it.
    write(&v, "d4_merge.py", &rev("d4", "('b2', 'c3')"));
    let f = read(&cfg, d.path()).expect("read");
    assert_eq!(f.heads, ["d4"]);
    assert_eq!(f.revisions["d4"].down, ["b2", "c3"]);
}

#[test]
fn config_flags_env_and_version_locations() {
    let d = tempfile::tempdir().expect("tempdir");
    write(
        &d.path().join("conf"),
        "db.ini",
        "[other]\nscript_location = mig\nversion_locations = %(here)s/v1:%(here)s/v2\npath_separator = os\n",
    );
    write(
        &d.path().join("conf/v1"),
        "a.py",
        "revision = \"a\"\ndown_revision = None\n",
    );
    write(
        &d.path().join("conf/v2"),
        "b.py",
        "revision = \"b\"\ndown_revision = \"a\"\n",
    );
    let args: Vec<String> = ["-c", "conf/db.ini", "--name", "other", "upgrade", "head"]
        .map(String::from)
        .to_vec();
    let cfg = AlembicConfig::locate(&args, Some("ignored.ini"), d.path());
    assert_eq!(cfg.section, "other");
    assert_eq!(read(&cfg, d.path()).expect("read").heads, ["b"]);
    let cfg = AlembicConfig::locate(&[], Some("conf/db.ini"), d.path());
    assert_eq!(cfg.ini, d.path().join("conf/db.ini"));
}

#[test]
fn what_cannot_be_read_is_said() {
    let d = tempfile::tempdir().expect("tempdir");
    let cfg = AlembicConfig::locate(&[], None, d.path());
    assert!(
        read(&cfg, d.path())
            .expect_err("no ini")
            .contains("alembic.ini")
    );
    write(
        d.path(),
        "alembic.ini",
        "[alembic]\nscript_location = myapp:migrations\n",
    );
    assert!(
        read(&cfg, d.path())
            .expect_err("resource")
            .contains("package resource")
    );
    write(d.path(), "alembic.ini", "[alembic]\nscript_location = a\n");
    write(&d.path().join("a/versions"), "x.py", "revision = REV\n");
    assert!(
        read(&cfg, d.path())
            .expect_err("name")
            .contains("not a string literal")
    );
    write(
        &d.path().join("a/versions"),
        "x.py",
        "revision = 'x'\ndown_revision = None\n",
    );
    write(
        &d.path().join("a/versions"),
        "y.py",
        "revision = 'x'\ndown_revision = None\n",
    );
    assert!(read(&cfg, d.path()).expect_err("dup").contains("two files"));
}

#[test]
fn pyproject_toml_form() {
    let d = tempfile::tempdir().expect("tempdir");
    write(
        d.path(),
        "pyproject.toml",
        "[project]\nname = 'x'\n\n[tool.alembic]\nscript_location = \"%(here)s/alembic\"\n",
    );
    write(
        &d.path().join("alembic/versions"),
        "a.py",
        "revision = 'a'\ndown_revision = None\n",
    );
    let cfg = AlembicConfig::locate(&[], None, d.path());
    assert_eq!(read(&cfg, d.path()).expect("read").heads, ["a"]);
}
