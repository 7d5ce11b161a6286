//! Unit tests of [`super::django`].

use std::collections::BTreeSet;
use std::path::Path;

use super::django::*;

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn project(root: &Path, site: &Path) -> DjangoProject {
    write(
        &root.join("manage.py"),
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
    );
    write(&root.join("proj/__init__.py"), "");
    write(
        &root.join("proj/settings.py"),
        "INSTALLED_APPS = [\n    'django.contrib.contenttypes',\n    \"shop.apps.ShopConfig\",\n    'nomig',\n]\n",
    );
    write(&root.join("shop/__init__.py"), "");
    write(
        &root.join("shop/apps.py"),
        "from django.apps import AppConfig\n\nclass ShopConfig(AppConfig):\n    name = 'shop'\n    label = 'store'\n",
    );
    write(&root.join("shop/migrations/__init__.py"), "");
    write(
        &root.join("shop/migrations/0001_initial.py"),
        "class Migration:\n    initial = True\n",
    );
    write(
        &root.join("shop/migrations/0002_price.py"),
        "class Migration:\n    dependencies = [('store', '0001_initial')]\n",
    );
    write(&root.join("nomig/__init__.py"), "");
    let ct = site.join("django/contrib/contenttypes");
    write(&site.join("django/__init__.py"), "");
    write(&site.join("django/contrib/__init__.py"), "");
    write(&ct.join("__init__.py"), "");
    write(&ct.join("migrations/__init__.py"), "");
    write(
        &ct.join("migrations/0001_initial.py"),
        "class Migration:\n    pass\n",
    );
    let env = DjangoEnv {
        pythonpath: Some(site.to_str().expect("utf8")),
        ..DjangoEnv::default()
    };
    let argv: Vec<String> = ["python", "manage.py", "migrate"]
        .map(String::from)
        .to_vec();
    DjangoProject::locate(&argv, &env, root)
}

fn rows(r: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    r.iter()
        .map(|(a, n)| (a.to_string(), n.to_string()))
        .collect()
}

#[test]
fn installed_apps_labels_and_pending() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = project(&d.path().join("app"), &d.path().join("site"));
    assert_eq!(p.settings.as_deref(), Some("proj.settings"));
    let f = read(&p).expect("read");
    let names: Vec<String> = f
        .migrations
        .iter()
        .map(|m| format!("{}.{}", m.app, m.name))
        .collect();
    assert_eq!(
        names,
        [
            "contenttypes.0001_initial",
            "store.0001_initial",
            "store.0002_price"
        ]
    );
    assert_eq!(pending(&f, &rows(&[])).len(), 3);
    assert_eq!(
        pending(
            &f,
            &rows(&[
                ("contenttypes", "0001_initial"),
                ("store", "0001_initial"),
                ("ghost", "0001_x")
            ])
        ),
        ["store.0002_price"]
    );
}

#[test]
fn squashes_count_as_django_counts_them() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path().join("app");
    let p = project(&root, &d.path().join("site"));
    write(
        &root.join("shop/migrations/0001_squashed_0002_price.py"),
        "class Migration:\n    replaces = [('store', '0001_initial'), ('store', '0002_price')]\n",
    );
    let f = read(&p).expect("read");
    let ct = ("contenttypes", "0001_initial");
    // Fresh: the squash is what runs.
    assert!(pending(&f, &rows(&[ct])).contains(&"store.0001_squashed_0002_price".to_string()));
    // Everything it replaces is applied: up to date, before and after its own row.
    let old = [ct, ("store", "0001_initial"), ("store", "0002_price")];
    assert!(pending(&f, &rows(&old)).is_empty());
    // Only the squash's row (a database built from the squash alone).
    assert!(pending(&f, &rows(&[ct, ("store", "0001_squashed_0002_price")])).is_empty());
    // Half applied: the replaced ones are used.
    assert_eq!(
        pending(&f, &rows(&[ct, ("store", "0001_initial")])),
        ["store.0001_squashed_0002_price", "store.0002_price"]
    );
}

#[test]
fn what_is_not_literal_is_unknown() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path().join("app");
    let p = project(&root, &d.path().join("site"));
    write(
        &root.join("proj/settings.py"),
        "INSTALLED_APPS = BASE_APPS + ['shop']\n",
    );
    assert!(
        read(&p)
            .expect_err("computed")
            .contains("not a literal list")
    );
    write(
        &root.join("proj/settings.py"),
        "INSTALLED_APPS = ['shop']\nMIGRATION_MODULES = {}\n",
    );
    assert!(read(&p).expect_err("modules").contains("MIGRATION_MODULES"));
}
