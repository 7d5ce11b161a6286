//! Django's migrations in the image, read without starting Python: the settings module's
//! `INSTALLED_APPS` (a literal list), each app's `migrations` package (the project's own
//! apps beside `manage.py`, contrib and third-party apps in the interpreter's
//! site-packages), and each migration's `replaces` (squashes). A migration counts as
//! applied as Django's loader decides (`django/db/migrations/loader.py`): a squash when it
//! has its own row or every migration it replaces has one, and a replaced migration when
//! its squash is applied.
//!
//! Whatever is not literal (an `INSTALLED_APPS` built by code, `MIGRATION_MODULES`, an
//! AppConfig without a literal `name`) makes the state unknown, and `manage.py migrate`
//! then runs every time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::pyscan::{self, PyValue};

/// One migration file: its app label and name, and the migrations it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DjangoMigration {
    /// App label.
    pub app: String,
    /// Module name (`0002_add_price`), as `django_migrations.name` holds it.
    pub name: String,
    /// `replaces` of a squashed migration: (app, name).
    pub replaces: Vec<(String, String)>,
}

/// What the image's Python environment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DjangoFiles {
    /// Every migration of every installed app that has migrations.
    pub migrations: Vec<DjangoMigration>,
    /// The settings module that named the apps.
    pub settings: String,
}

/// Where to look: the project (manage.py's directory), the settings module, and the
/// directories Python imports packages from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DjangoProject {
    /// The directory of `manage.py` (the working directory for `django-admin`).
    pub root: PathBuf,
    /// `--settings`, `DJANGO_SETTINGS_MODULE`, or manage.py's `setdefault`.
    pub settings: Option<String>,
    /// Import roots after the project: `PYTHONPATH`, then the interpreter's site-packages.
    pub paths: Vec<PathBuf>,
}

/// Inputs from the environment, read by the configuration room.
#[derive(Debug, Clone, Default)]
pub struct DjangoEnv<'a> {
    /// `DJANGO_SETTINGS_MODULE`.
    pub settings_module: Option<&'a str>,
    /// `PYTHONPATH`.
    pub pythonpath: Option<&'a str>,
    /// `VIRTUAL_ENV`.
    pub virtual_env: Option<&'a str>,
    /// The interpreter the command runs, found on PATH when the command names none.
    pub python: Option<PathBuf>,
}

/// site-packages (and Debian's dist-packages) of an interpreter at `python`: the
/// `lib/python3.*/` beside its `bin/`, without resolving symlinks (a virtualenv's python is a
/// link to the base interpreter, whose packages are not the ones the venv sees).
fn site_packages(prefix: &Path, out: &mut Vec<PathBuf>) {
    for lib in ["lib", "local/lib"] {
        let Ok(entries) = std::fs::read_dir(prefix.join(lib)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .flat_map(|e| {
                [
                    e.path().join("site-packages"),
                    e.path().join("dist-packages"),
                ]
            })
            .filter(|p| p.is_dir())
            .collect();
        found.sort();
        out.extend(found);
    }
    let debian = prefix.join("lib/python3/dist-packages");
    if debian.is_dir() {
        out.push(debian);
    }
}

impl DjangoProject {
    /// From the command and the environment.
    pub fn locate(argv: &[String], env: &DjangoEnv<'_>, cwd: &Path) -> Self {
        let manage = argv.iter().find(|w| w.ends_with("manage.py"));
        let root = manage
            .map(|m| cwd.join(m).parent().unwrap_or(cwd).to_path_buf())
            .unwrap_or_else(|| cwd.to_path_buf());
        let mut settings = None;
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            if a == "--settings" {
                settings = it.next().cloned();
            } else if let Some(v) = a.strip_prefix("--settings=") {
                settings = Some(v.to_string());
            }
        }
        let settings = settings
            .or_else(|| env.settings_module.map(str::to_string))
            .or_else(|| {
                let text = std::fs::read_to_string(cwd.join(manage?)).ok()?;
                setdefault_settings(&text)
            });
        let mut paths: Vec<PathBuf> = env
            .pythonpath
            .map(|p| {
                p.split(':')
                    .filter(|s| !s.is_empty())
                    .map(|s| cwd.join(s))
                    .collect()
            })
            .unwrap_or_default();
        let python = argv
            .first()
            .filter(|p| {
                p.contains('/')
                    && Path::new(p.as_str())
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("python"))
            })
            .map(|p| cwd.join(p))
            .or_else(|| env.python.clone());
        if let Some(venv) = env.virtual_env {
            site_packages(Path::new(venv), &mut paths);
        }
        if let Some(prefix) = python
            .as_deref()
            .and_then(Path::parent)
            .and_then(Path::parent)
        {
            site_packages(prefix, &mut paths);
        }
        for prefix in ["/usr/local", "/usr"] {
            site_packages(Path::new(prefix), &mut paths);
        }
        paths.dedup();
        Self {
            root,
            settings,
            paths,
        }
    }

    /// The directory of a dotted module (`django.contrib.auth`, `shop`): a package dir or
    /// a module file, searched in the project first, then the import paths.
    fn find(&self, module: &str) -> Option<PathBuf> {
        let rel: PathBuf = module.split('.').collect();
        std::iter::once(&self.root)
            .chain(&self.paths)
            .map(|base| base.join(&rel))
            .find(|p| p.join("__init__.py").is_file() || p.with_extension("py").is_file())
    }
}

/// manage.py's `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")`.
fn setdefault_settings(text: &str) -> Option<String> {
    let at = text.find("DJANGO_SETTINGS_MODULE")?;
    let rest = &text[at + "DJANGO_SETTINGS_MODULE".len()..];
    let rest = rest.trim_start().strip_prefix(['"', '\''])?.trim_start();
    let rest = rest.strip_prefix(',')?.trim_start();
    let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = &rest[1..];
    Some(body[..body.find(q)?].to_string())
}

/// An `INSTALLED_APPS` entry's app module and label: `shop`, `django.contrib.auth`, or an
/// AppConfig path (`shop.apps.ShopConfig`) whose class sets `name` (and maybe `label`).
fn app_of(p: &DjangoProject, entry: &str) -> Result<(String, String), String> {
    let (module, last) = entry.rsplit_once('.').unwrap_or(("", entry));
    if !last.starts_with(|c: char| c.is_ascii_uppercase()) {
        let label = entry.rsplit('.').next().unwrap_or(entry).to_string();
        return Ok((entry.to_string(), label));
    }
    // An AppConfig: read its class's `name` and `label`.
    let file = p
        .find(module)
        .map(|d| {
            if d.is_dir() {
                d.join("__init__.py")
            } else {
                d.with_extension("py")
            }
        })
        .ok_or_else(|| format!("cannot find module {module} (for {entry})"))?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let class_at = text
        .find(&format!("class {last}"))
        .ok_or_else(|| format!("{}: no class {last}", file.display()))?;
    let body = &text[class_at..];
    let attrs = pyscan::assignments(body);
    let attr = |n: &str| {
        attrs
            .iter()
            .find(|a| a.indent > 0 && a.name == n)
            .map(|a| a.parse())
    };
    let name = match attr("name") {
        Some(PyValue::Str(s)) => s,
        _ => {
            return Err(format!(
                "{}: {last}.name is not a string literal",
                file.display()
            ));
        }
    };
    let label = match attr("label") {
        Some(PyValue::Str(s)) => s,
        None => name.rsplit('.').next().unwrap_or(&name).to_string(),
        Some(other) => return Err(format!("{}: {last}.label = {other:?}", file.display())),
    };
    Ok((name, label))
}

/// The settings module's file.
fn settings_file(p: &DjangoProject, module: &str) -> Result<PathBuf, String> {
    let dir = p.find(module).ok_or_else(|| {
        format!(
            "cannot find the settings module {module} under {}",
            p.root.display()
        )
    })?;
    Ok(if dir.is_dir() {
        dir.join("__init__.py")
    } else {
        dir.with_extension("py")
    })
}

/// One app's migration modules: names of `*.py` files in its `migrations` package that do
/// not start with `_` or `~`.
fn app_migrations(dir: &Path, label: &str) -> Result<Vec<DjangoMigration>, String> {
    let mdir = dir.join("migrations");
    // No package (or a namespace package): Django treats the app as unmigrated.
    if !mdir.join("__init__.py").is_file() {
        return Ok(Vec::new());
    }
    let entries =
        std::fs::read_dir(&mdir).map_err(|e| format!("cannot read {}: {e}", mdir.display()))?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".py") else {
            continue;
        };
        if stem.starts_with(['_', '~']) || e.path().is_dir() {
            continue;
        }
        let text = std::fs::read_to_string(e.path())
            .map_err(|err| format!("cannot read {}: {err}", e.path().display()))?;
        let replaces = match pyscan::assignments(&text)
            .into_iter()
            .find(|a| a.indent > 0 && a.name == "replaces")
            .map(|a| a.parse())
        {
            None => Vec::new(),
            Some(PyValue::Seq(items)) => items
                .iter()
                .map(|i| match i.strings().ok().as_deref() {
                    Some([app, name]) => Ok((app.clone(), name.clone())),
                    _ => Err(format!("{}: replaces holds {i:?}", e.path().display())),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(format!("{}: replaces = {other:?}", e.path().display()));
            }
        };
        out.push(DjangoMigration {
            app: label.to_string(),
            name: stem.to_string(),
            replaces,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Reads the installed apps' migrations.
pub fn read(p: &DjangoProject) -> Result<DjangoFiles, String> {
    let settings = p.settings.clone().ok_or_else(|| {
        "no settings module: set DJANGO_SETTINGS_MODULE or pass --settings".to_string()
    })?;
    let file = settings_file(p, &settings)?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let assigned = pyscan::assignments(&text);
    if assigned
        .iter()
        .any(|a| a.indent == 0 && a.name == "MIGRATION_MODULES")
    {
        return Err(format!("{} sets MIGRATION_MODULES", file.display()));
    }
    let apps = match pyscan::module_value(&text, "INSTALLED_APPS") {
        Some(v) => v.strings().map_err(|t| {
            format!(
                "{}: INSTALLED_APPS is not a literal list of strings ({t})",
                file.display()
            )
        })?,
        None => return Err(format!("{}: no INSTALLED_APPS", file.display())),
    };
    if text.contains("INSTALLED_APPS +=") || text.contains("INSTALLED_APPS.") {
        return Err(format!(
            "{}: INSTALLED_APPS is changed after it is set",
            file.display()
        ));
    }
    let mut migrations = Vec::new();
    let mut labels = BTreeSet::new();
    for entry in &apps {
        let (module, label) = app_of(p, entry)?;
        if !labels.insert(label.clone()) {
            return Err(format!("app label {label} is installed twice"));
        }
        let dir = p.find(&module).ok_or_else(|| {
            format!(
                "cannot find app {module} (searched {} and {})",
                p.root.display(),
                p.paths
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        migrations.extend(app_migrations(&dir, &label)?);
    }
    Ok(DjangoFiles {
        migrations,
        settings,
    })
}

/// The migrations Django would apply, given the rows `(app, name)` of `django_migrations`:
/// the loader's replacement rule applied.
pub fn pending(files: &DjangoFiles, rows: &BTreeSet<(String, String)>) -> Vec<String> {
    let key = |m: &DjangoMigration| (m.app.clone(), m.name.clone());
    let applied = |k: &(String, String)| rows.contains(k);
    // A squash is usable when all or none of what it replaces is applied; it is applied
    // when it has its own row or all of them have.
    let mut squash_applied: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut replaced_by: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for m in files.migrations.iter().filter(|m| !m.replaces.is_empty()) {
        let all = m.replaces.iter().all(applied);
        squash_applied.insert(key(m), applied(&key(m)) || all);
        for r in &m.replaces {
            replaced_by.insert(r.clone(), key(m));
        }
    }
    files
        .migrations
        .iter()
        .filter(|m| {
            let k = key(m);
            if let Some(&done) = squash_applied.get(&k) {
                return !done;
            }
            if let Some(sq) = replaced_by.get(&k)
                && squash_applied.get(sq) == Some(&true)
            {
                return false;
            }
            !applied(&k)
        })
        .map(|m| format!("{}.{}", m.app, m.name))
        .collect()
}
