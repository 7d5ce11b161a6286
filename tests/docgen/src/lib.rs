//! The tables of docs/ that a program writes, so they cannot drift from what they describe:
//! the configuration reference, from the clap parsers of `dbinit` and `dbinit-job` themselves
//! ([`reference`]), and the chart's values, from `helm/dbinit/values.schema.json` with the
//! defaults and comments of `values.yaml` ([`values`]). Each sits in its page between
//! `<!-- generated:NAME -->` and `<!-- end generated:NAME -->`; `make docs` rewrites them and
//! the docs tests fail while one is stale.

use std::path::{Path, PathBuf};

pub mod reference;
pub mod values;

/// A generated region: which page, which name, and what it must hold.
#[derive(Debug, Clone)]
pub struct Region {
    /// Page, relative to the repository root.
    pub page: &'static str,
    /// The region's name in its markers.
    pub name: &'static str,
    /// The region's text, generated now.
    pub text: String,
}

/// The repository root (this crate lives in tests/docgen).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Every generated region, as it must read now.
pub fn regions(root: &Path) -> Result<Vec<Region>, String> {
    Ok(vec![
        Region {
            page: "docs/configuration.md",
            name: "reference",
            text: reference::markdown(),
        },
        Region {
            page: "docs/kubernetes.md",
            name: "values",
            text: values::markdown(
                &read(&root.join("helm/dbinit/values.schema.json"))?,
                &read(&root.join("helm/dbinit/values.yaml"))?,
            )?,
        },
    ])
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// `text` with region `name` holding `content`; an error when the page lacks its markers.
pub fn replace(text: &str, name: &str, content: &str) -> Result<String, String> {
    let open = format!("<!-- generated:{name} -->\n");
    let close = format!("<!-- end generated:{name} -->");
    let from = text
        .find(&open)
        .map(|i| i + open.len())
        .ok_or_else(|| format!("no `{}` line", open.trim_end()))?;
    let len = text[from..]
        .find(&close)
        .ok_or_else(|| format!("no `{close}` line after `{}`", open.trim_end()))?;
    Ok(format!("{}{content}{}", &text[..from], &text[from + len..]))
}

/// Which regions differ from what they must hold, each with the way to fix it.
pub fn stale(root: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for r in regions(root)? {
        let text = read(&root.join(r.page))?;
        let want = replace(&text, r.name, &r.text).map_err(|e| format!("{}: {e}", r.page))?;
        if want != text {
            out.push(format!(
                "{}: the generated table `{}` is stale (run `make docs`); first difference:\n{}",
                r.page,
                r.name,
                first_difference(&text, &want)
            ));
        }
    }
    Ok(out)
}

/// Rewrites every stale region; returns the pages it changed.
pub fn write(root: &Path) -> Result<Vec<String>, String> {
    let mut changed = Vec::new();
    for r in regions(root)? {
        let path = root.join(r.page);
        let text = read(&path)?;
        let want = replace(&text, r.name, &r.text).map_err(|e| format!("{}: {e}", r.page))?;
        if want != text {
            std::fs::write(&path, want).map_err(|e| format!("{}: {e}", path.display()))?;
            changed.push(format!("{} ({})", r.page, r.name));
        }
    }
    Ok(changed)
}

fn first_difference(have: &str, want: &str) -> String {
    let (h, w): (Vec<&str>, Vec<&str>) = (have.lines().collect(), want.lines().collect());
    let i = h
        .iter()
        .zip(&w)
        .position(|(a, b)| a != b)
        .unwrap_or(h.len().min(w.len()));
    format!(
        "  line {}\n  page has:  {}\n  generated: {}",
        i + 1,
        h.get(i).unwrap_or(&"(end of page)"),
        w.get(i).unwrap_or(&"(end of page)")
    )
}

/// A table cell: one line, pipes escaped (inside code spans too, as GitHub's tables need),
/// and outside code spans nothing GitHub would read as markup (`*` emphasis, `<tag>`).
pub(crate) fn cell(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    let mut in_code = false;
    for c in one_line.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '|' => out.push_str("\\|"),
            '*' if !in_code => out.push_str("\\*"),
            '<' if !in_code => out.push_str("&lt;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_everything_outside_the_markers() {
        let t = "a\n<!-- generated:x -->\nold\n<!-- end generated:x -->\nb\n";
        assert_eq!(
            replace(t, "x", "new\n").as_deref(),
            Ok("a\n<!-- generated:x -->\nnew\n<!-- end generated:x -->\nb\n")
        );
        assert!(
            replace(t, "y", "")
                .expect_err("no region y")
                .contains("generated:y")
        );
    }

    #[test]
    fn cells_escape_markup() {
        assert_eq!(cell("a | b\n  *c* <d>"), "a \\| b \\*c\\* &lt;d>");
        assert_eq!(cell("`x*|<y>` *"), "`x*\\|<y>` \\*");
    }
}
