//! The chart's values table, from `helm/dbinit/values.schema.json` (every key the chart
//! accepts, its type and what the schema allows) with `values.yaml`'s default and the comment
//! above the key. An object whose every key `values.yaml` sets is the chart's own and gets a
//! row per key; one that accepts more keys than `values.yaml` sets (a Kubernetes type passed
//! through: `podSecurityContext`, `resources`, ...) is one row.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cell;

/// What `values.yaml` says about its keys: the comment right above each (no blank line
/// between), by dotted path, with `# -- ` and `# ` stripped and lines joined; and every key's
/// path in the file's order (the table follows it: JSON objects here come sorted).
#[derive(Debug, Default)]
pub struct Outline {
    /// Comment by dotted path.
    pub comments: BTreeMap<String, String>,
    /// Dotted paths in file order.
    pub order: Vec<String>,
}

/// Reads [`Outline`] from `values.yaml`'s text.
pub fn outline(yaml: &str) -> Outline {
    let mut out = Outline::default();
    let mut pending: Vec<String> = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for line in yaml.lines() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if t.is_empty() {
            pending.clear();
        } else if let Some(c) = t.strip_prefix('#') {
            let c = c.strip_prefix(' ').unwrap_or(c);
            pending.push(c.strip_prefix("-- ").unwrap_or(c).trim_end().to_string());
        } else if let Some(key) = key_of(t) {
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            let path: Vec<&str> = stack
                .iter()
                .map(|(_, k)| k.as_str())
                .chain([key.as_str()])
                .collect();
            let text = pending
                .iter()
                .map(String::as_str)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            if !text.is_empty() {
                out.comments.insert(path.join("."), text);
            }
            out.order.push(path.join("."));
            stack.push((indent, key));
            pending.clear();
        } else {
            pending.clear();
        }
    }
    out
}

fn key_of(t: &str) -> Option<String> {
    if t.starts_with('-') {
        return None;
    }
    let (k, rest) = t.split_once(':')?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let k = k.trim().trim_matches('"');
    k.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .then(|| k.to_string())
}

fn type_of(s: &Value) -> String {
    let t = match &s["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".into(),
    };
    match s["items"]["type"].as_str() {
        Some(i) if t == "array" => format!("array of {i}"),
        _ => t,
    }
}

/// What the schema allows beyond the type, in words.
fn allowed(s: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(e) = s["enum"].as_array() {
        // An empty string among the choices is written as words: `` would print two backticks.
        let v: Vec<String> = e
            .iter()
            .map(plain)
            .filter(|x| !x.is_empty())
            .map(|x| format!("`{x}`"))
            .collect();
        let empty = if v.len() < e.len() { "empty, or " } else { "" };
        parts.push(format!("{empty}one of {}", v.join(", ")));
    }
    match (s["minimum"].as_i64(), s["maximum"].as_i64()) {
        (Some(a), Some(b)) => parts.push(format!("{a} to {b}")),
        (Some(a), None) => parts.push(format!("at least {a}")),
        (None, Some(b)) => parts.push(format!("at most {b}")),
        _ => {}
    }
    match (s["minLength"].as_u64(), s["maxLength"].as_u64()) {
        (_, Some(0)) => parts.push("empty".into()),
        (Some(1), Some(n)) => parts.push(format!("1 to {n} characters")),
        (Some(1), None) => parts.push("not empty".into()),
        (_, Some(n)) => parts.push(format!("at most {n} characters")),
        _ => {}
    }
    if let Some(p) = s["pattern"].as_str() {
        parts.push(format!("matches `{p}`"));
    }
    if let Some(any) = s["anyOf"].as_array() {
        let alts: Vec<String> = any.iter().map(allowed).filter(|a| !a.is_empty()).collect();
        parts.push(alts.join(", or "));
    }
    if s["propertyNames"].is_object() {
        parts.push(format!("keys: {}", allowed(&s["propertyNames"])));
    }
    if let Some(t) = s["additionalProperties"]["type"].as_str() {
        parts.push(format!("values: {t}"));
    }
    if let Some(r) = s["items"]["required"].as_array() {
        let v: Vec<String> = r.iter().map(|x| format!("`{}`", plain(x))).collect();
        parts.push(format!("each with {}", v.join(", ")));
    }
    parts.join("; ")
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn default_cell(v: Option<&Value>) -> String {
    match v {
        None => "—".into(),
        Some(Value::String(s)) if s.is_empty() => "`\"\"`".into(),
        Some(Value::String(s)) => format!("`{s}`"),
        Some(other) => format!("`{other}`"),
    }
}

/// Whether `values.yaml` sets every key the object's schema knows (the chart's own object).
fn expands(schema: &Value, default: Option<&Value>) -> bool {
    let (Some(props), Some(Value::Object(d))) = (schema["properties"].as_object(), default) else {
        return false;
    };
    props.keys().all(|k| d.contains_key(k))
}

fn rows(schema: &Value, defaults: &Value, notes: &Outline, prefix: &str, out: &mut String) {
    let Some(props) = schema["properties"].as_object() else {
        return;
    };
    let path_of = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    let mut keys: Vec<(&String, &Value)> = props.iter().collect();
    keys.sort_by_key(|(k, _)| {
        let at = notes.order.iter().position(|p| *p == path_of(k));
        (at.is_none(), at)
    });
    for (key, s) in keys {
        let path = path_of(key);
        let default = defaults.get(key);
        let note = notes
            .comments
            .get(&path)
            .map(|n| cell(n))
            .unwrap_or_default();
        if expands(s, default) {
            if !note.is_empty() {
                out.push_str(&format!("| `{path}` | object | | | {note} |\n"));
            }
            rows(s, default.unwrap_or(&Value::Null), notes, &path, out);
            continue;
        }
        let mut allow = allowed(s);
        if let Some(p) = s["properties"].as_object() {
            let keys: Vec<String> = p.keys().map(|k| format!("`{k}`")).collect();
            let k = format!("keys {}", keys.join(", "));
            allow = if allow.is_empty() {
                k
            } else {
                format!("{allow}; {k}")
            };
        }
        out.push_str(&format!(
            "| `{path}` | {} | {} | {} | {note} |\n",
            type_of(s),
            default_cell(default),
            cell(&allow)
        ));
    }
}

/// The values table as markdown, for the page's `generated:values` region.
pub fn markdown(schema: &str, values_yaml: &str) -> Result<String, String> {
    let schema: Value =
        serde_json::from_str(schema).map_err(|e| format!("values.schema.json: {e}"))?;
    let defaults: Value =
        serde_saphyr::from_str(values_yaml).map_err(|e| format!("values.yaml: {e}"))?;
    let notes = outline(values_yaml);
    let mut out =
        String::from("| value | type | default | allowed | what |\n|---|---|---|---|---|\n");
    rows(&schema, &defaults, &notes, "", &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_attach_to_the_key_below_them() {
        let yaml = "# Section.\n#\n# More.\npg:\n  # -- The host.\n  host: db\n\n  port: 1\nlist:\n  - a: 1\n# -- Top.\ntop: x\n";
        let o = outline(yaml);
        let c = &o.comments;
        assert_eq!(o.order, vec!["pg", "pg.host", "pg.port", "list", "top"]);
        assert_eq!(c["pg"], "Section. More.");
        assert_eq!(c["pg.host"], "The host.");
        assert!(!c.contains_key("pg.port"));
        assert_eq!(c["top"], "Top.");
        assert!(!c.contains_key("list.a"));
    }

    #[test]
    fn own_objects_expand_and_kubernetes_ones_do_not() {
        let schema = r#"{"properties": {
            "pg": {"type": "object", "properties": {"port": {"type": "integer", "minimum": 1, "maximum": 65535}}},
            "ctx": {"type": "object", "properties": {"runAsUser": {"type": "integer"}, "fsGroup": {"type": "integer"}}},
            "mode": {"type": "string", "enum": ["a", "b"]}}}"#;
        let md = markdown(
            schema,
            "pg:\n  port: 5432\nctx:\n  runAsUser: 1\n# -- The mode.\nmode: a\n",
        )
        .expect("markdown");
        assert!(
            md.contains("| `pg.port` | integer | `5432` | 1 to 65535 |  |"),
            "{md}"
        );
        assert!(
            md.contains("| `ctx` | object | `{\"runAsUser\":1}` | keys `fsGroup`, `runAsUser` |"),
            "{md}"
        );
        assert!(
            md.contains("| `mode` | string | `a` | one of `a`, `b` | The mode. |"),
            "{md}"
        );
    }

    #[test]
    fn an_empty_choice_is_written_in_words() {
        let schema = r#"{"properties": {"tool": {"type": "string", "enum": ["", "x", "y"]}}}"#;
        let md = markdown(schema, "# -- The tool.\ntool: \"\"\n").expect("markdown");
        assert!(
            md.contains("| `tool` | string | `\"\"` | empty, or one of `x`, `y` | The tool. |"),
            "{md}"
        );
    }
}
