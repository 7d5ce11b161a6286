//! Reading assignments out of Python source without running it: `revision: str = 'ab12'`
//! in an Alembic revision file, `replaces = [("shop", "0001_initial")]` in a Django
//! migration, `INSTALLED_APPS = [...]` in a settings module.
//!
//! Only literal values are understood (strings, `None`, `True`/`False`, tuples and lists of
//! them); anything else (a name, a call, a concatenation) comes back as [`PyValue::Other`],
//! and the caller decides that it cannot tell, rather than guess what Python would compute.

/// A Python literal, as far as migration files use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// A string literal (adjacent literals concatenated).
    Str(String),
    /// A tuple or a list.
    Seq(Vec<PyValue>),
    /// Anything else, as written.
    Other(String),
}

impl PyValue {
    /// The strings of a string, or of a sequence of strings; `None` is empty. Anything
    /// else (a name, a call) is `Err` with the text.
    pub fn strings(&self) -> Result<Vec<String>, String> {
        match self {
            Self::None => Ok(Vec::new()),
            Self::Str(s) => Ok(vec![s.clone()]),
            Self::Seq(items) => items
                .iter()
                .map(|i| match i {
                    Self::Str(s) => Ok(s.clone()),
                    other => Err(format!("{other:?}")),
                })
                .collect(),
            Self::Bool(b) => Err(b.to_string()),
            Self::Other(t) => Err(t.clone()),
        }
    }
}

/// One assignment statement: its target, its indentation and its value's source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The target name (`revision`).
    pub name: String,
    /// Columns of indentation (0: module level).
    pub indent: usize,
    /// The value's source, possibly spanning lines.
    pub value: String,
}

impl Assignment {
    /// The value, parsed.
    pub fn parse(&self) -> PyValue {
        parse_value(&self.value)
    }
}

/// Every simple assignment `NAME = value` or `NAME: annotation = value`, in order, outside
/// strings (docstrings included) and comments. Augmented assignments (`+=`) and tuple
/// targets are not assignments of a name.
pub fn assignments(source: &str) -> Vec<Assignment> {
    let mut out = Vec::new();
    let lines: Vec<&str> = source.lines().collect();
    let mut i = 0;
    let mut in_triple: Option<&str> = None;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if let Some(q) = in_triple {
            if count_unescaped(line, q) % 2 == 1 {
                in_triple = None;
            }
            continue;
        }
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        // A statement that opens a triple-quoted string and does not close it.
        for q in ["\"\"\"", "'''"] {
            if count_unescaped(strip_comment(trimmed), q) % 2 == 1 {
                in_triple = Some(q);
            }
        }
        if in_triple.is_some() {
            continue;
        }
        let Some((name, after)) = split_target(trimmed) else {
            continue;
        };
        // Gather continuation lines while brackets are open or the line ends with `\`.
        let mut value = after.to_string();
        while (depth(&value) > 0 || value.trim_end().ends_with('\\')) && i < lines.len() {
            value.push('\n');
            value.push_str(lines[i]);
            i += 1;
        }
        out.push(Assignment {
            name,
            indent,
            value: strip_comment(&value).trim().to_string(),
        });
    }
    out
}

/// The last module-level assignment to `name`, as Python leaves it after running the file.
pub fn module_value(source: &str, name: &str) -> Option<PyValue> {
    assignments(source)
        .into_iter()
        .rfind(|a| a.indent == 0 && a.name == name)
        .map(|a| a.parse())
}

fn count_unescaped(line: &str, q: &str) -> usize {
    line.matches(q).count()
}

/// `line` without a trailing `# comment` that is outside strings.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Open brackets in `text`, outside strings and comments.
fn depth(text: &str) -> i32 {
    let mut d = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    for c in text.chars() {
        if comment {
            comment = c != '\n';
            continue;
        }
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') => comment = true,
            (None, '(' | '[' | '{') => d += 1,
            (None, ')' | ']' | '}') => d -= 1,
            _ => {}
        }
    }
    d
}

/// `NAME = rest` or `NAME: annotation = rest` -> (NAME, rest).
fn split_target(line: &str) -> Option<(String, &str)> {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(line.len());
    let name = &line[..end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let rest = line[end..].trim_start();
    let rest = if let Some(ann) = rest.strip_prefix(':') {
        // An annotation holds no `=` outside brackets; take up to the first one.
        let mut d = 0;
        let mut at = None;
        for (i, c) in ann.char_indices() {
            match c {
                '[' | '(' => d += 1,
                ']' | ')' => d -= 1,
                '=' if d == 0 => {
                    at = Some(i);
                    break;
                }
                _ => {}
            }
        }
        &ann[at?..]
    } else {
        rest
    };
    let value = rest.strip_prefix('=')?;
    if value.starts_with('=') {
        return None;
    }
    Some((name.to_string(), value.trim_start()))
}

/// Parses a value's source text.
pub fn parse_value(text: &str) -> PyValue {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Parser { s: &chars, i: 0 };
    match p.value() {
        Some(v) => {
            p.skip_ws();
            if p.i == chars.len() {
                v
            } else {
                PyValue::Other(text.trim().to_string())
            }
        }
        None => PyValue::Other(text.trim().to_string()),
    }
}

struct Parser<'a> {
    s: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == '\\' {
                self.i += 1;
            } else if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.i += 1;
                }
            } else {
                break;
            }
        }
    }

    fn value(&mut self) -> Option<PyValue> {
        self.skip_ws();
        let c = self.peek()?;
        if c == '(' || c == '[' {
            return self.seq(if c == '(' { ')' } else { ']' });
        }
        if let Some(s) = self.strings() {
            return Some(PyValue::Str(s));
        }
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            self.i += 1;
        }
        let word: String = self.s[start..self.i].iter().collect();
        self.skip_ws();
        if matches!(self.peek(), Some('(' | '[')) || word.is_empty() {
            // A call or a subscript: skip it whole, keep its text.
            let mut d = 0;
            while let Some(c) = self.peek() {
                match c {
                    '(' | '[' | '{' => d += 1,
                    ')' | ']' | '}' if d == 0 => break,
                    ')' | ']' | '}' => d -= 1,
                    ',' if d == 0 => break,
                    _ => {}
                }
                self.i += 1;
                if d == 0 && !matches!(self.peek(), Some('(' | '[' | '.')) {
                    break;
                }
            }
            let text: String = self.s[start..self.i].iter().collect();
            if text.is_empty() {
                return None;
            }
            return Some(PyValue::Other(text.trim().to_string()));
        }
        Some(match word.as_str() {
            "None" => PyValue::None,
            "True" => PyValue::Bool(true),
            "False" => PyValue::Bool(false),
            _ => PyValue::Other(word),
        })
    }

    fn seq(&mut self, close: char) -> Option<PyValue> {
        self.i += 1;
        let mut items = Vec::new();
        let mut commas = 0;
        loop {
            self.skip_ws();
            match self.peek()? {
                c if c == close => {
                    self.i += 1;
                    break;
                }
                ',' => {
                    self.i += 1;
                    commas += 1;
                }
                _ => items.push(self.value()?),
            }
        }
        // `("a")` is a parenthesised string, not a tuple.
        if close == ')' && items.len() == 1 && commas == 0 {
            return items.pop();
        }
        Some(PyValue::Seq(items))
    }

    /// One or more adjacent string literals, with optional r/u/b/f prefixes.
    fn strings(&mut self) -> Option<String> {
        let mut out: Option<String> = None;
        loop {
            self.skip_ws();
            let start = self.i;
            let mut raw = false;
            while let Some(c) = self.peek() {
                match c.to_ascii_lowercase() {
                    'r' => raw = true,
                    'u' | 'b' => {}
                    _ => break,
                }
                self.i += 1;
                if self.i - start > 2 {
                    break;
                }
            }
            let Some(q @ ('\'' | '"')) = self.peek() else {
                self.i = start;
                return out;
            };
            let triple = self.s.get(self.i..self.i + 3) == Some(&[q, q, q]);
            self.i += if triple { 3 } else { 1 };
            let mut s = String::new();
            loop {
                let c = self.peek()?;
                if triple {
                    if self.s.get(self.i..self.i + 3) == Some(&[q, q, q]) {
                        self.i += 3;
                        break;
                    }
                } else if c == q {
                    self.i += 1;
                    break;
                }
                if c == '\\' && !raw {
                    self.i += 1;
                    let e = self.peek()?;
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    s.push(c);
                }
                self.i += 1;
            }
            out.get_or_insert_with(String::new).push_str(&s);
        }
    }
}
