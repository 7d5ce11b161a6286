//! Python's `configparser` format, as far as Alembic's `alembic.ini` uses it: `[sections]`,
//! `key = value` or `key: value` (keys lower-cased), comment lines, values continued on
//! indented lines, and `%(here)s` / `%%` interpolation. Anything it cannot expand is an
//! error, so a guess never stands in for what Alembic would read.

use std::collections::BTreeMap;

/// An ini file: section name -> key -> raw value.
#[derive(Debug, Default)]
pub struct Ini {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl Ini {
    /// Parses the text of an ini file.
    pub fn parse(text: &str) -> Self {
        let mut ini = Ini::default();
        let mut section: Option<String> = None;
        let mut key: Option<String> = None;
        for line in text.lines() {
            let trimmed = line.trim();
            let indented = line.starts_with([' ', '\t']);
            if trimmed.is_empty() {
                // An empty line inside a multi-line value belongs to it (configparser's
                // empty_lines_in_values); trailing ones are stripped at the end.
                if let (Some(s), Some(k)) = (&section, &key)
                    && let Some(v) = ini.sections.get_mut(s).and_then(|m| m.get_mut(k))
                {
                    v.push('\n');
                }
                continue;
            }
            if trimmed.starts_with(['#', ';']) && !indented {
                continue;
            }
            if indented && key.is_some() {
                if let (Some(s), Some(k)) = (&section, &key)
                    && let Some(v) = ini.sections.get_mut(s).and_then(|m| m.get_mut(k))
                {
                    if !v.is_empty() {
                        v.push('\n');
                    }
                    v.push_str(trimmed);
                }
                continue;
            }
            if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                section = Some(name.to_string());
                ini.sections.entry(name.to_string()).or_default();
                key = None;
                continue;
            }
            let Some(s) = &section else { continue };
            let split = trimmed.find(['=', ':']);
            let (k, v) = match split {
                Some(i) => (trimmed[..i].trim(), trimmed[i + 1..].trim()),
                None => (trimmed, ""),
            };
            let k = k.to_ascii_lowercase();
            ini.sections
                .entry(s.clone())
                .or_default()
                .insert(k.clone(), v.to_string());
            key = Some(k);
        }
        for m in ini.sections.values_mut() {
            for v in m.values_mut() {
                let t = v.trim_end_matches('\n').len();
                v.truncate(t);
            }
        }
        ini
    }

    /// The raw value of `key` in `section` (or in `[DEFAULT]`).
    pub fn raw(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .get(section)
            .and_then(|m| m.get(key))
            .or_else(|| self.sections.get("DEFAULT").and_then(|m| m.get(key)))
            .map(String::as_str)
    }

    /// The value of `key` with `%(name)s` expanded from `vars` and the section's own keys,
    /// and `%%` as `%`; an unknown name is an error naming it.
    pub fn get(
        &self,
        section: &str,
        key: &str,
        vars: &BTreeMap<&str, String>,
    ) -> Option<Result<String, String>> {
        let raw = self.raw(section, key)?;
        Some(self.expand(section, raw, vars, 0))
    }

    fn expand(
        &self,
        section: &str,
        raw: &str,
        vars: &BTreeMap<&str, String>,
        depth: usize,
    ) -> Result<String, String> {
        if depth > 10 {
            return Err(format!("interpolation too deep in {raw:?}"));
        }
        let mut out = String::new();
        let mut rest = raw;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(t) = tail.strip_prefix("%%") {
                out.push('%');
                rest = t;
            } else if let Some(t) = tail.strip_prefix("%(") {
                let Some(end) = t.find(")s") else {
                    return Err(format!("bad interpolation syntax in {raw:?}"));
                };
                let name = t[..end].to_ascii_lowercase();
                let value = match vars.get(name.as_str()) {
                    Some(v) => v.clone(),
                    None => match self.raw(section, &name) {
                        Some(r) => self.expand(section, r, vars, depth + 1)?,
                        None => {
                            return Err(format!("%({name})s in {raw:?} names nothing known"));
                        }
                    },
                };
                out.push_str(&value);
                rest = &t[end + 2..];
            } else {
                return Err(format!("bad interpolation syntax in {raw:?}"));
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_alembic_ini_as_configparser_does() {
        let ini = Ini::parse(
            "# a comment\n[alembic]\nscript_location = %(here)s/alembic\nVersion_Locations =\n    %(here)s/a\n    %(here)s/b\npath_separator: newline\nurl = driver://u:p%%40@h/db\n\n[other]\nx = 1\n",
        );
        let vars = BTreeMap::from([("here", "/app".to_string())]);
        assert_eq!(
            ini.get("alembic", "script_location", &vars)
                .expect("set")
                .expect("ok"),
            "/app/alembic"
        );
        assert_eq!(
            ini.get("alembic", "version_locations", &vars)
                .expect("set")
                .expect("ok"),
            "/app/a\n/app/b"
        );
        assert_eq!(ini.raw("alembic", "path_separator"), Some("newline"));
        assert_eq!(
            ini.get("alembic", "url", &vars).expect("set").expect("ok"),
            "driver://u:p%40@h/db"
        );
        assert_eq!(ini.raw("other", "x"), Some("1"));
        let bad = Ini::parse("[alembic]\nscript_location = %(nowhere)s/x\n");
        assert!(
            bad.get("alembic", "script_location", &vars)
                .expect("set")
                .is_err()
        );
    }
}
