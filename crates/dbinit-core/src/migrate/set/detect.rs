//! Reading a folder's files in a layout: the one `DBINIT_LAYOUT` names, or the one the files
//! show. A folder whose files belong to different layouts, or that one layout cannot read
//! whole, is a configuration error (exit 2) naming the files that disagree: a migration file
//! that silently never runs is worse than a refusal.

use std::collections::BTreeMap;

use super::dbmate;
use super::layout::Parts;
use super::layout::{self, Direction, Layout};
use super::migration::Migration;

/// What a folder holds, before a layout reads it.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// `*.sql` files directly in the folder: (file name, text).
    pub files: Vec<(String, String)>,
    /// Subdirectories holding a `migration.sql`: (directory name, its text).
    pub dirs: Vec<(String, String)>,
    /// A few other `.sql` files found in subfolders (relative paths), for the message of a
    /// folder that holds no migration file itself.
    pub nested: Vec<String>,
}

/// What a top-level file's name and text say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Dbinit,
    UpDown,
    SqlxSimple,
    Dbmate,
    Unknown,
}

fn kind(name: &str, text: &str) -> Kind {
    let mut chars = name.chars();
    if matches!(chars.next(), Some('V' | 'U')) && chars.next().is_some_and(|c| c.is_ascii_digit()) {
        return Kind::Dbinit;
    }
    let digit_led = name.starts_with(|c: char| c.is_ascii_digit());
    if digit_led && dbmate::has_up(text) {
        return Kind::Dbmate;
    }
    match layout::split_version(name) {
        Some((_, rest)) if rest.ends_with(".up.sql") || rest.ends_with(".down.sql") => Kind::UpDown,
        Some(_) => Kind::SqlxSimple,
        None => Kind::Unknown,
    }
}

fn kind_word(k: Kind) -> &'static str {
    match k {
        Kind::Dbinit => "dbinit",
        Kind::UpDown => "golang-migrate or sqlx",
        Kind::SqlxSimple => "sqlx",
        Kind::Dbmate => "dbmate",
        Kind::Unknown => "none",
    }
}

/// The layout the files show, or why there is none.
pub fn detect(l: &Listing, place: &str) -> Result<Option<Layout>, String> {
    let mut by_kind: BTreeMap<Kind, Vec<&str>> = BTreeMap::new();
    for (name, text) in &l.files {
        by_kind.entry(kind(name, text)).or_default().push(name);
    }
    let unknown = by_kind.remove(&Kind::Unknown).unwrap_or_default();
    let kinds: Vec<Kind> = by_kind.keys().copied().collect();
    let prisma = !l.dirs.is_empty();
    // The file that stands for its kind in a message: an up file rather than its down file.
    let one = |k: Kind| {
        let names = by_kind.get(&k);
        names
            .and_then(|v| v.iter().find(|n| !n.ends_with(".down.sql")).or(v.first()))
            .copied()
            .unwrap_or("")
    };
    let found = match (kinds.as_slice(), prisma) {
        ([], false) => None,
        ([], true) => Some(Layout::Prisma),
        ([Kind::Dbinit], false) => Some(Layout::Dbinit),
        ([Kind::Dbmate], false) => Some(Layout::Dbmate),
        ([Kind::UpDown], false) => {
            let marked = l
                .files
                .iter()
                .any(|(n, t)| n.ends_with(".up.sql") && t.starts_with("-- no-transaction"));
            Some(if marked {
                Layout::Sqlx
            } else {
                Layout::GolangMigrate
            })
        }
        ([Kind::SqlxSimple], false) | ([Kind::UpDown, Kind::SqlxSimple], false) => {
            Some(Layout::Sqlx)
        }
        (ks, false)
            if ks.contains(&Kind::SqlxSimple) && ks.contains(&Kind::Dbmate) && ks.len() == 2 =>
        {
            return Err(format!(
                "the migrations folder{place} mixes dbmate files and others: {} has `-- migrate:up` (dbmate) but {} has none; give every dbmate file `-- migrate:up` and `-- migrate:down`, or set DBINIT_LAYOUT to the layout to read",
                one(Kind::Dbmate),
                one(Kind::SqlxSimple)
            ));
        }
        (ks, _) => {
            let mut named: Vec<String> = ks
                .iter()
                .map(|k| format!("{} ({})", one(*k), kind_word(*k)))
                .collect();
            if let Some((d, _)) = l.dirs.first() {
                named.push(format!("{d}/migration.sql (prisma)"));
            }
            return Err(format!(
                "the migrations folder{place} mixes layouts: {}; keep one layout per folder, or set DBINIT_LAYOUT to the one to read",
                named.join(", ")
            ));
        }
    };
    if let Some(u) = unknown.first() {
        return Err(match found {
            Some(f) => format!(
                "migration file {u:?}{place} is not named as the other files' layout ({f}: {})",
                f.example()
            ),
            None => format!(
                "migration file {u:?}{place} is not named as any layout dbinit reads (dbinit: {}; sqlx: {}; golang-migrate: {}; dbmate: {}; prisma: {})",
                Layout::Dbinit.example(),
                Layout::Sqlx.example(),
                Layout::GolangMigrate.example(),
                Layout::Dbmate.example(),
                Layout::Prisma.example()
            ),
        });
    }
    Ok(found)
}

/// Reads the files in `layout`: every `.sql` file must be one of its migrations; down files
/// and sections are kept beside their up files and never run.
pub fn read(l: &Listing, layout: Layout, place: &str) -> Result<Vec<Migration>, String> {
    let at = |e: String| format!("{e}{place}");
    let mut parts: Vec<Parts> = Vec::new();
    let mut downs: Vec<(Parts, String)> = Vec::new();
    if layout == Layout::Prisma {
        if let Some((f, _)) = l.files.first() {
            return Err(format!(
                "migration file {f:?}{place} is not a Prisma migration (Prisma's layout: {})",
                Layout::Prisma.example()
            ));
        }
        for (dir, text) in &l.dirs {
            parts.push(layout::prisma_parts(dir, text).map_err(at)?);
        }
    }
    for (name, text) in l.files.iter().filter(|_| layout != Layout::Prisma) {
        if matches!(layout, Layout::Sqlx | Layout::GolangMigrate) && dbmate::has_down(text) {
            return Err(format!(
                "migration file {name:?}{place} has a `-- migrate:down` section, which {layout} would run with the rest: set DBINIT_LAYOUT=dbmate to read it as dbmate does"
            ));
        }
        let (p, dir) = match layout {
            Layout::Dbinit => (layout::dbinit_parts(name, text), Direction::Simple),
            Layout::Dbmate => (layout::dbmate_parts(name, text), Direction::Simple),
            Layout::Sqlx => split(layout::sqlx_parts(name, text)),
            Layout::GolangMigrate => split(layout::golang_migrate_parts(name, text)),
            Layout::Prisma => continue,
        };
        let p = p.map_err(at)?;
        match dir {
            Direction::Down => downs.push((p, name.clone())),
            Direction::Up | Direction::Simple => parts.push(p),
        }
    }
    for (d, name) in downs {
        let Some(up) = parts.iter_mut().find(|p| p.version == d.version) else {
            return Err(format!(
                "migration file {name:?}{place} is a down file without an up file of version {}",
                d.version_text
            ));
        };
        up.down = Some(name);
    }
    let mut ms: Vec<Migration> = parts
        .into_iter()
        .map(|p| Migration::new(p, layout))
        .collect();
    ms.sort_by(|a, b| {
        a.version()
            .cmp(&b.version())
            .then_with(|| a.file().cmp(b.file()))
    });
    if let Some(w) = ms.windows(2).find(|w| w[0].version() == w[1].version()) {
        return Err(format!(
            "migrations {} and {}{place} have the same version {}",
            w[0].file(),
            w[1].file(),
            w[0].version()
        ));
    }
    Ok(ms)
}

fn split(r: Result<(Parts, Direction), String>) -> (Result<Parts, String>, Direction) {
    match r {
        Ok((p, d)) => (Ok(p), d),
        Err(e) => (Err(e), Direction::Simple),
    }
}

#[cfg(test)]
#[path = "detect_tests.rs"]
mod tests;
