//! Acknowledged findings. `-- dbinit:allow=rule[,rule]` before a statement covers that whole
//! statement; at the top of the file, followed by a blank line (or with no statement after
//! it), it covers the whole file. squawk applies its own `-- squawk-ignore` comments to its
//! rules; they are honoured here for dbinit's rules too, with squawk's meaning: the line
//! form covers a finding that starts on the comment's line or the next, the file form
//! (`-- squawk-ignore-file`) the whole file, and bare `-- squawk-ignore-file` every rule.

use squawk_linter::ignore::{IgnoreKind, ignore_rule_info};
use squawk_syntax::{SyntaxKind, SyntaxNode};

/// The prefix of an acknowledgement comment's body.
pub const ALLOW_PREFIX: &str = "dbinit:allow=";

/// One `-- dbinit:allow=` comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Allow {
    /// The statement it covers (an index into the file's statements); `None`: the file.
    pub statement: Option<usize>,
    /// The rule names it lists.
    pub rules: Vec<String>,
    /// Where the comment is, for a finding about an unknown name.
    pub start: u32,
    /// Its end.
    pub end: u32,
}

/// The file's `-- squawk-ignore` comments, as they apply to dbinit's own rules.
#[derive(Debug, Default)]
pub(crate) struct SquawkIgnores {
    all: bool,
    file: Vec<String>,
    /// (line of the comment, names).
    lines: Vec<(usize, Vec<String>)>,
}

impl SquawkIgnores {
    /// Whether a finding of `rule` starting on `line` is ignored.
    pub fn covers(&self, rule: &str, line: usize) -> bool {
        self.all
            || self.file.iter().any(|r| r == rule)
            || self
                .lines
                .iter()
                .any(|(l, names)| (line == *l || line == l + 1) && names.iter().any(|r| r == rule))
    }
}

fn names(list: &str) -> Vec<String> {
    list.split(',')
        .filter_map(|r| r.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Line numbers of byte offsets, from the newlines' positions found once (counting from the
/// start for each of a file's thousands of statements made linting PostgreSQL's regression
/// suite twice as slow).
pub(crate) struct Lines(Vec<u32>);

impl Lines {
    /// Indexes `text`'s newlines.
    pub fn new(text: &str) -> Self {
        Self(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i as u32)
                .collect(),
        )
    }

    /// The 1-based line of byte `offset`.
    pub fn of(&self, offset: u32) -> usize {
        self.0.partition_point(|&n| n < offset) + 1
    }
}

/// Whether the text between a comment and the statement after it holds a blank line.
fn blank_line_between(gap: &str) -> bool {
    let lines: Vec<&str> = gap.split('\n').collect();
    lines.len() > 2
        && lines[1..lines.len() - 1]
            .iter()
            .any(|l| l.trim().is_empty())
}

/// Reads both kinds of comment. `stmts` are the statements' ranges, from the first
/// non-trivia token to the end, in order.
pub(crate) fn read(
    root: &SyntaxNode,
    text: &str,
    stmts: &[(u32, u32)],
) -> (Vec<Allow>, SquawkIgnores) {
    let mut allows = Vec::new();
    let mut ignores = SquawkIgnores::default();
    let lines = Lines::new(text);
    for tok in root
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| t.kind() == SyntaxKind::COMMENT)
    {
        let r = tok.text_range();
        let (start, end) = (u32::from(r.start()), u32::from(r.end()));
        if let Some((list, _, kind)) = ignore_rule_info(&tok) {
            let list = names(list);
            match kind {
                IgnoreKind::File if list.is_empty() => ignores.all = true,
                IgnoreKind::File => ignores.file.extend(list),
                IgnoreKind::Line => ignores.lines.push((lines.of(start), list)),
            }
            continue;
        }
        let Some(list) = tok
            .text()
            .strip_prefix("--")
            .map(str::trim_start)
            .and_then(|b| b.strip_prefix(ALLOW_PREFIX))
        else {
            continue;
        };
        let next = stmts.iter().position(|&(_, e)| e > end);
        let statement = match next {
            None => None,
            Some(0) if stmts[0].0 >= end => {
                let gap = text.get(end as usize..stmts[0].0 as usize).unwrap_or("");
                (!blank_line_between(gap)).then_some(0)
            }
            Some(i) => Some(i),
        };
        allows.push(Allow {
            statement,
            rules: names(list),
            start,
            end,
        });
    }
    (allows, ignores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers() {
        let l = Lines::new("a\nbc\n\nd");
        assert_eq!(
            [0, 1, 2, 4, 5, 6, 7].map(|o| l.of(o)),
            [1, 1, 2, 2, 3, 4, 4]
        );
    }

    #[test]
    fn blank_line_detection() {
        assert!(!blank_line_between("\n"));
        assert!(!blank_line_between("\n-- why\n  "));
        assert!(blank_line_between("\n\n"));
        assert!(blank_line_between("\n-- why\n   \n"));
    }

    #[test]
    fn names_take_the_first_word_of_each_item() {
        assert_eq!(
            names("a, b because we must"),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(names("").is_empty());
    }
}
