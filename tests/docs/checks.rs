//! What holds for every page: blocks are marked, links resolve, generated tables are current,
//! the reference is complete, the index lists every page.

use std::path::{Path, PathBuf};

use dbinit_tests::docs::{Docs, Marker};
use dbinit_tests::node::repo_root;

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The Rust sources of the tests (the harness's docs module aside: naming a block there is
/// not running it).
fn test_sources() -> String {
    let mut files = Vec::new();
    rs_files(&repo_root().join("tests"), &mut files);
    files
        .iter()
        .filter(|p| !p.starts_with(repo_root().join("tests/harness/docs")))
        .filter(|p| !p.starts_with(repo_root().join("tests/docgen")))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_block_is_run_by_a_test_or_says_why_not() {
    let docs = Docs::load();
    let sources = test_sources();
    let mut problems = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    let blocks = docs.blocks();
    for b in &blocks {
        match &b.marker {
            Marker::None => problems.push(format!(
                "{}: a ```{} block with no marker line right before it: `<!-- test:NAME -->` \
                 (a test runs it), `<!-- e2e:NAME -->` (an end-to-end test runs it) or \
                 `<!-- illustrative: REASON -->` (why no test can)",
                b.at(),
                b.lang
            )),
            Marker::Illustrative(reason) if reason.split_whitespace().count() < 4 => {
                problems.push(format!(
                    "{}: `illustrative:` needs a reason a reviewer can check, not {reason:?}",
                    b.at()
                ))
            }
            Marker::Illustrative(_) => {}
            Marker::E2e(n) | Marker::Test(n) => {
                if let Some((_, at)) = names.iter().find(|(m, _)| m == n) {
                    problems.push(format!(
                        "{}: block name {n} is already used at {at}",
                        b.at()
                    ));
                }
                names.push((n.clone(), b.at()));
                if !sources.contains(&format!("\"{n}\"")) {
                    problems.push(format!(
                        "{}: block {n} is marked as run by a test, but no test under tests/ names \
                         \"{n}\"",
                        b.at()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let run = blocks.iter().filter(|b| b.marker.name().is_some()).count();
    println!(
        "{} blocks in {} pages: {run} run by tests, {} illustrative",
        blocks.len(),
        docs.pages.len(),
        blocks.len() - run
    );
}

#[test]
fn relative_links_and_anchors_resolve() {
    let docs = Docs::load();
    let root = repo_root();
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in &docs.pages {
        let dir = page.path.parent().unwrap_or(Path::new(""));
        for link in page.links() {
            if link.is_external() {
                continue;
            }
            checked += 1;
            let at = format!("{}:{}", page.path.display(), link.line);
            let (path, anchor) = link.parts();
            let target = if path.is_empty() {
                page.path.clone()
            } else {
                normalize(&dir.join(path))
            };
            if target.starts_with("..") || !root.join(&target).exists() {
                problems.push(format!(
                    "{at}: {} names no file of the repository",
                    link.target
                ));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if target.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let anchors = match docs.pages.iter().find(|p| p.path == target) {
                Some(p) => p.anchors(),
                None => dbinit_tests::docs::anchors(&dbinit_tests::docs::Page {
                    path: target.clone(),
                    text: std::fs::read_to_string(root.join(&target)).unwrap_or_default(),
                }),
            };
            if !anchors.iter().any(|a| a == anchor) {
                problems.push(format!(
                    "{at}: {} has no heading whose anchor is #{anchor}",
                    target.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        checked > 20,
        "only {checked} relative links: is the parser blind?"
    );
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn generated_tables_are_current() {
    let stale = dbinit_docgen::stale(&repo_root()).unwrap_or_else(|e| panic!("{e}"));
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}

/// The variables dbinit reads outside its options: every `var("NAME")` of config/env.rs, the
/// one place that reads the environment.
fn env_rs_variables() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("crates/dbinit-core/src/config/env.rs"))
        .expect("config/env.rs");
    text.split("var(\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn reference_names_every_flag_and_variable_of_both_binaries() {
    let docs = Docs::load();
    let page = docs.page("docs/configuration.md");
    let reference = page
        .generated("reference")
        .expect("docs/configuration.md has a `<!-- generated:reference -->` region");
    let mut missing = Vec::new();
    let settings = dbinit_docgen::reference::settings();
    for s in &settings {
        let flag = format!("`--{}", s.long);
        let env = s.env.as_ref().map(|e| format!("`{e}`"));
        let row = reference
            .lines()
            .find(|l| l.contains(&format!("{flag}`")) || l.contains(&format!("{flag} ")));
        let ok = match (&row, &env) {
            (None, _) => false,
            (Some(r), Some(e)) => r.contains(e.as_str()),
            (Some(_), None) => true,
        };
        if !ok {
            missing.push(format!(
                "--{}{} (taken by {})",
                s.long,
                s.env
                    .as_ref()
                    .map(|e| format!(" / {e}"))
                    .unwrap_or_default(),
                s.commands.join(", ")
            ));
        }
    }
    for v in env_rs_variables() {
        if !page.text.contains(&format!("`{v}`")) {
            missing.push(format!(
                "{v} (read by crates/dbinit-core/src/config/env.rs)"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document these settings (`make docs` rewrites the \
         reference from the parsers; env.rs's variables are described by hand):\n  {}",
        missing.join("\n  ")
    );
    assert!(settings.len() > 50, "{} settings", settings.len());
}

#[test]
fn every_page_is_reachable_from_readme_through_the_index() {
    let docs = Docs::load();
    let readme = docs.page("README.md");
    assert!(
        readme
            .links()
            .iter()
            .any(|l| l.parts().0 == "docs/README.md"),
        "README links the docs index, docs/README.md"
    );
    let index = docs.page("docs/README.md");
    let linked: Vec<String> = index
        .links()
        .iter()
        .map(|l| l.parts().0.to_string())
        .collect();
    for p in &docs.pages {
        let Ok(rel) = p.path.strip_prefix("docs") else {
            continue;
        };
        if rel == Path::new("README.md") {
            continue;
        }
        assert!(
            linked.iter().any(|l| Path::new(l) == rel),
            "docs/README.md does not link {}",
            p.path.display()
        );
    }
}

#[test]
fn the_yaml_file_example_is_read_by_dbinits_own_parser() {
    use dbinit_core::config::{self, ConnArgs, Env, file::FileConfig};
    let docs = Docs::load();
    let block = docs.block("config-file");
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("dbinit.yaml");
    std::fs::write(&path, &block).expect("write");
    FileConfig::load(&path).unwrap_or_else(|e| panic!("the page's YAML file: {}", e.0));

    // The same file, its paths pointing at files that exist, resolves to what it says.
    let pki = dbinit_tests::tls::Pki::new();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret").expect("write");
    let text = block
        .replace("/secrets/pg", &pw.display().to_string())
        .replace("/secrets/redis", &pw.display().to_string())
        .replace("/tls/ca.crt", &pki.ca().display().to_string());
    std::fs::write(&path, text).expect("write");
    let mut args = ConnArgs::default();
    args.wait.config_file = Some(path);
    let s = config::resolve(args, &Env::default())
        .unwrap_or_else(|e| panic!("the page's YAML file does not resolve: {}", e.0));
    assert_eq!(s.wait.timeout, std::time::Duration::from_secs(120));
    assert!(
        s.redis.is_some(),
        "the file's redis: section configures Redis"
    );
}

#[test]
fn layout_names_only_paths_that_exist() {
    let docs = Docs::load();
    let block = docs.block("layout");
    let mut dirs: Vec<(usize, PathBuf)> = Vec::new();
    let mut missing = Vec::new();
    let mut seen = 0;
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let indent = line.len() - line.trim_start().len();
        let name = line.split_whitespace().next().unwrap_or_default();
        while dirs.last().is_some_and(|(i, _)| *i >= indent) {
            dirs.pop();
        }
        let path = dirs
            .last()
            .map(|(_, d)| d.join(name))
            .unwrap_or_else(|| PathBuf::from(name));
        if !repo_root().join(&path).exists() {
            missing.push(path.display().to_string());
        }
        seen += 1;
        if name.ends_with('/') {
            dirs.push((indent, path));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/architecture.md's layout names paths that do not exist: {missing:?}"
    );
    assert!(seen > 15, "{seen} paths");
}

/// The modules a crate's lib.rs declares.
fn rooms(lib: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join(lib)).expect("lib.rs");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

#[test]
fn architecture_names_every_room_of_both_libraries() {
    let docs = Docs::load();
    let page = &docs.page("docs/architecture.md").text;
    let mut missing = Vec::new();
    for lib in [
        "crates/dbinit-core/src/lib.rs",
        "crates/dbinit-k8s/src/lib.rs",
    ] {
        for room in rooms(lib) {
            if !page.contains(&format!("| `{room}` |")) {
                missing.push(format!("{room} ({lib})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/architecture.md's tables of rooms lack: {missing:?} (a row `| \\`room\\` | the one thing it owns |`)"
    );
}
