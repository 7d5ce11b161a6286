//! Links between README and the pages of docs/, and the anchors they point at, as GitHub
//! renders them: a relative link must name a file of the repository, and its `#anchor` a
//! heading (or an `id`) of the markdown page it names.

use super::Page;

/// A link written in a page's prose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// 1-based line.
    pub line: usize,
    /// The target as written: `docs/operations.md#exit-codes`, `#repair`, `https://...`.
    pub target: String,
}

impl Link {
    /// Whether the target leaves the repository (a URL, `mailto:`).
    pub fn is_external(&self) -> bool {
        let t = self.target.to_ascii_lowercase();
        t.contains("://") || t.starts_with("mailto:")
    }

    /// The target split into (path, anchor); an empty path is the page itself.
    pub fn parts(&self) -> (&str, Option<&str>) {
        match self.target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (&self.target, None),
        }
    }
}

/// Removes inline code spans (`` `...` ``), whose text is never a link.
fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('`') {
        out.push_str(&rest[..i]);
        let ticks = rest[i..].chars().take_while(|c| *c == '`').count();
        let after = &rest[i + ticks..];
        match after.find(&"`".repeat(ticks)) {
            Some(j) => rest = &after[j + ticks..],
            None => {
                out.push_str(&rest[i..]);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

impl Page {
    /// Every link of the page's prose: inline `[text](target)` and `![alt](target)`, and
    /// reference definitions `[label]: target`.
    pub fn links(&self) -> Vec<Link> {
        let mut out = Vec::new();
        for (line, text) in self.prose() {
            let text = without_code(text);
            if let Some(def) = text.trim_start().strip_prefix('[')
                && let Some((_, target)) = def.split_once("]:")
            {
                let target = target.split_whitespace().next().unwrap_or_default();
                out.push(Link {
                    line,
                    target: target.trim_matches(['<', '>']).to_string(),
                });
                continue;
            }
            let mut rest = text.as_str();
            while let Some(i) = rest.find("](") {
                let after = &rest[i + 2..];
                let Some(end) = after.find(')') else { break };
                let target = after[..end].split_whitespace().next().unwrap_or_default();
                out.push(Link {
                    line,
                    target: target.trim_matches(['<', '>']).to_string(),
                });
                rest = &after[end..];
            }
        }
        out
    }

    /// The anchors of the page: each heading's slug, as GitHub makes it (repeated headings get
    /// `-1`, `-2`, ...), and every `id="..."` / `name="..."` of an HTML tag.
    pub fn anchors(&self) -> Vec<String> {
        anchors(self)
    }
}

/// See [`Page::anchors`].
pub fn anchors(page: &Page) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, line) in page.prose() {
        for key in ["id=\"", "name=\""] {
            let mut rest = line;
            while let Some(i) = rest.find(key) {
                let after = &rest[i + key.len()..];
                let Some(end) = after.find('"') else { break };
                out.push(after[..end].to_string());
                rest = &after[end..];
            }
        }
        let t = line.trim_start();
        let level = t.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&level) || !t[level..].starts_with(' ') {
            continue;
        }
        let base = slug(t[level..].trim().trim_end_matches('#').trim());
        let mut s = base.clone();
        let mut n = 0;
        while out.contains(&s) {
            n += 1;
            s = format!("{base}-{n}");
        }
        out.push(s);
    }
    out
}

/// A heading's anchor as GitHub makes it: the rendered text (links reduced to their text),
/// lower-cased, without punctuation but `-` and `_`, spaces made `-`.
pub fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // [text](target) renders as text.
    while let Some(i) = rest.find('[') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find("](").and_then(|j| {
            let close = after[j + 2..].find(')')?;
            Some((j, j + 2 + close))
        }) {
            Some((j, end)) => {
                text.push_str(&after[..j]);
                rest = &after[end + 1..];
            }
            None => {
                text.push('[');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> Page {
        Page {
            path: "p.md".into(),
            text: text.into(),
        }
    }

    #[test]
    fn slugs_follow_github() {
        assert_eq!(
            slug("`dbinit status --exit-code`: a CI gate"),
            "dbinit-status---exit-code-a-ci-gate"
        );
        assert_eq!(
            slug("What will this deploy do? `dbinit plan`"),
            "what-will-this-deploy-do-dbinit-plan"
        );
        assert_eq!(slug("Exit 7: [the lock](x.md)"), "exit-7-the-lock");
        assert_eq!(
            slug("dbinit-job: the migration Job"),
            "dbinit-job-the-migration-job"
        );
    }

    #[test]
    fn repeated_headings_are_numbered_and_ids_count() {
        let p =
            page("# A\n## Usage\n### Usage\n<a id=\"exit-7\"></a>\n```\n# not a heading\n```\n");
        assert_eq!(p.anchors(), vec!["a", "usage", "usage-1", "exit-7"]);
    }

    #[test]
    fn links_outside_code() {
        let p = page(
            "See [ops](docs/operations.md#exit-codes) and `[not](a.md)`, ![i](img.png \"t\").\n[ref]: docs/x.md\n```\n[no](b.md)\n```\n<https://example.com>\n",
        );
        let targets: Vec<String> = p.links().into_iter().map(|l| l.target).collect();
        assert_eq!(
            targets,
            vec!["docs/operations.md#exit-codes", "img.png", "docs/x.md"]
        );
        let l = &p.links()[0];
        assert_eq!(l.parts(), ("docs/operations.md", Some("exit-codes")));
        assert!(!l.is_external());
    }
}
