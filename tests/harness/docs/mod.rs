//! README.md and the pages of docs/, as the tests read them. A fenced block that a test runs
//! has a marker line right before it: `<!-- e2e:NAME -->` (run by the end-to-end tests on a
//! real node) or `<!-- test:NAME -->` (run by the other tiers); a block no test runs says why
//! instead: `<!-- illustrative: REASON -->`. Names are unique across README and docs/, so a
//! block can move from one page to another without its test noticing. Tables that a program
//! writes sit between `<!-- generated:NAME -->` and `<!-- end generated:NAME -->` (`make docs`).

use std::path::{Path, PathBuf};

mod links;
mod shell;

pub use links::{Link, anchors, slug};
pub use shell::{DocShell, Ran};

use crate::node::repo_root;

/// One markdown page: its path relative to the repository root, and its text.
#[derive(Debug, Clone)]
pub struct Page {
    /// `README.md`, `docs/operations.md`, ...
    pub path: PathBuf,
    /// The page's text.
    pub text: String,
}

/// What the line before a fenced block says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// `<!-- e2e:NAME -->`: an end-to-end test runs it on a real node.
    E2e(String),
    /// `<!-- test:NAME -->`: a test of another tier runs (or checks) it.
    Test(String),
    /// `<!-- illustrative: REASON -->`: no test runs it, for that reason.
    Illustrative(String),
    /// Nothing: an error in README and docs/ (the docs tests say so).
    None,
}

impl Marker {
    /// The block's name when a test runs it.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::E2e(n) | Self::Test(n) => Some(n),
            _ => None,
        }
    }

    fn parse(line: &str) -> Self {
        let Some(inner) = line
            .trim()
            .strip_prefix("<!--")
            .and_then(|l| l.strip_suffix("-->"))
            .map(str::trim)
        else {
            return Self::None;
        };
        if let Some(n) = inner.strip_prefix("e2e:") {
            Self::E2e(n.trim().to_string())
        } else if let Some(n) = inner.strip_prefix("test:") {
            Self::Test(n.trim().to_string())
        } else if let Some(r) = inner.strip_prefix("illustrative:") {
            Self::Illustrative(r.trim().to_string())
        } else {
            Self::None
        }
    }
}

/// A fenced code block of a page.
#[derive(Debug, Clone)]
pub struct Block {
    /// The page it is on.
    pub page: PathBuf,
    /// 1-based line of its opening fence.
    pub line: usize,
    /// The fence's info string (`bash`, `yaml`, `sql`, `text`, ...; may be empty).
    pub lang: String,
    /// The marker line before it.
    pub marker: Marker,
    /// The text between the fences, each line stripped of the fence's indentation.
    pub body: String,
}

impl Block {
    /// `docs/operations.md:42`, for messages.
    pub fn at(&self) -> String {
        format!("{}:{}", self.page.display(), self.line)
    }
}

/// README.md and every page below docs/.
#[derive(Debug, Clone)]
pub struct Docs {
    /// README.md first, then docs/ in path order.
    pub pages: Vec<Page>,
}

fn md_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            md_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "md") {
            out.push(p);
        }
    }
}

impl Docs {
    /// Reads README.md and docs/**/*.md of the repository.
    pub fn load() -> Self {
        let root = repo_root();
        let mut files = vec![root.join("README.md")];
        md_files(&root.join("docs"), &mut files);
        let pages = files
            .into_iter()
            .map(|f| Page {
                text: std::fs::read_to_string(&f)
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display())),
                path: f.strip_prefix(&root).unwrap_or(&f).to_path_buf(),
            })
            .collect();
        Self { pages }
    }

    /// The page at `path` (relative to the repository root).
    pub fn page(&self, path: &str) -> &Page {
        self.pages
            .iter()
            .find(|p| p.path == Path::new(path))
            .unwrap_or_else(|| panic!("no page {path} (README.md or below docs/)"))
    }

    /// Every fenced block of every page, in order.
    pub fn blocks(&self) -> Vec<Block> {
        self.pages.iter().flat_map(Page::blocks).collect()
    }

    /// The block marked `<!-- e2e:NAME -->` or `<!-- test:NAME -->`, wherever it is.
    pub fn find(&self, name: &str) -> Block {
        let mut found: Vec<Block> = self
            .blocks()
            .into_iter()
            .filter(|b| b.marker.name() == Some(name))
            .collect();
        match found.len() {
            1 => found.remove(0),
            0 => panic!(
                "README.md and docs/ have no `<!-- e2e:{name} -->` (or `<!-- test:{name} -->`) line \
                 followed by a fenced block (the tests run that block; `grep -rn -e 'e2e:' -e 'test:' \
                 README.md docs/` lists the markers)"
            ),
            _ => panic!(
                "block name {name} is used more than once: {:?}",
                found.iter().map(Block::at).collect::<Vec<_>>()
            ),
        }
    }

    /// The body of block `name`.
    pub fn block(&self, name: &str) -> String {
        let b = self.find(name);
        assert!(
            !b.body.trim().is_empty(),
            "block {name} at {} is empty",
            b.at()
        );
        b.body
    }

    /// The shell commands of block `name`: continuation lines joined, blank lines and
    /// comment-only lines dropped.
    pub fn commands(&self, name: &str) -> Vec<String> {
        commands(&self.block(name))
    }
}

impl Page {
    /// The page's fenced blocks.
    pub fn blocks(&self) -> Vec<Block> {
        let lines: Vec<&str> = self.text.lines().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let Some((indent, fence, lang)) = fence_open(lines[i]) else {
                i += 1;
                continue;
            };
            // Only the line right before the fence: a marker is never separated from its block.
            let marker = match i {
                0 => Marker::None,
                _ => Marker::parse(lines[i - 1]),
            };
            let start = i;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && !is_fence_close(lines[i], &fence) {
                let l = lines[i];
                let cut = l.len() - l.trim_start_matches(' ').len();
                body.push(&l[cut.min(indent)..]);
                i += 1;
            }
            i += 1;
            out.push(Block {
                page: self.path.clone(),
                line: start + 1,
                lang,
                marker,
                body: if body.is_empty() {
                    String::new()
                } else {
                    body.join("\n") + "\n"
                },
            });
        }
        out
    }

    /// The page's text outside fenced blocks, with each line's number (1-based).
    pub fn prose(&self) -> Vec<(usize, &str)> {
        let mut out = Vec::new();
        let mut fence: Option<String> = None;
        for (n, l) in self.text.lines().enumerate() {
            match &fence {
                Some(f) if is_fence_close(l, f) => fence = None,
                Some(_) => {}
                None => match fence_open(l) {
                    Some((_, f, _)) => fence = Some(f),
                    None => out.push((n + 1, l)),
                },
            }
        }
        out
    }

    /// The text between `<!-- generated:NAME -->` and `<!-- end generated:NAME -->`, when
    /// the page has that region.
    pub fn generated(&self, name: &str) -> Option<&str> {
        let open = format!("<!-- generated:{name} -->\n");
        let close = format!("<!-- end generated:{name} -->");
        let from = self.text.find(&open)? + open.len();
        let len = self.text[from..].find(&close)?;
        Some(&self.text[from..from + len])
    }
}

/// An opening fence: its indentation, the fence itself (```` ``` ```` or longer, or `~~~`), and
/// the info string.
fn fence_open(line: &str) -> Option<(usize, String, String)> {
    let t = line.trim_start_matches(' ');
    let indent = line.len() - t.len();
    let ch = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = t.chars().take_while(|c| *c == ch).count();
    if n < 3 || indent > 12 {
        return None;
    }
    let info = t[n..].trim();
    if ch == '`' && info.contains('`') {
        return None;
    }
    Some((indent, t[..n].to_string(), info.to_string()))
}

fn is_fence_close(line: &str, fence: &str) -> bool {
    let t = line.trim();
    t.starts_with(fence) && t.chars().all(|c| c == fence.chars().next().unwrap_or('`'))
}

/// Splits shell text into its commands (one per line, `\`-continued lines joined; lines that
/// hold only a comment are dropped, a command's trailing comment stays).
pub fn commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in block.lines() {
        if let Some(head) = line.strip_suffix('\\') {
            cur.push_str(head);
            cur.push_str("\\\n");
            continue;
        }
        cur.push_str(line);
        if !cur.trim().is_empty() && !cur.trim_start().starts_with('#') {
            out.push(std::mem::take(&mut cur));
        }
        cur.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> Page {
        Page {
            path: "x.md".into(),
            text: text.into(),
        }
    }

    #[test]
    fn blocks_carry_their_marker_and_lose_list_indentation() {
        let p = page(
            "intro\n<!-- e2e:one -->\n```bash\nmake demo\n```\n\n1. step\n\n   <!-- illustrative: needs Docker -->\n   ```bash\n   docker build .\n   ```\n\n```text\nout\n```\n",
        );
        let b = p.blocks();
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].marker, Marker::E2e("one".into()));
        assert_eq!(b[0].body, "make demo\n");
        assert_eq!(b[0].line, 3);
        assert_eq!(b[1].marker, Marker::Illustrative("needs Docker".into()));
        assert_eq!(b[1].body, "docker build .\n");
        assert_eq!(b[2].marker, Marker::None);
        assert_eq!(b[2].lang, "text");
    }

    #[test]
    fn a_marker_separated_by_a_blank_line_does_not_count() {
        let p = page("<!-- test:x -->\n\n```bash\ntrue\n```\n");
        assert_eq!(p.blocks()[0].marker, Marker::None);
    }

    #[test]
    fn commands_join_continuations_and_keep_trailing_comments() {
        let c = commands("# a comment\nls \\\n  -l\n\ndbinit plan   # exit 9: unadopted\n");
        assert_eq!(c, vec!["ls \\\n  -l", "dbinit plan   # exit 9: unadopted"]);
    }

    #[test]
    fn prose_skips_fenced_text_and_generated_regions_are_found() {
        let p = page(
            "a [x](y.md)\n```md\n[z](nope.md)\n```\n<!-- generated:t -->\n| row |\n<!-- end generated:t -->\n",
        );
        let prose: Vec<&str> = p.prose().into_iter().map(|(_, l)| l).collect();
        assert!(prose.contains(&"a [x](y.md)") && !prose.iter().any(|l| l.contains("nope")));
        assert_eq!(p.generated("t"), Some("| row |\n"));
        assert_eq!(p.generated("u"), None);
    }
}
