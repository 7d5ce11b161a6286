//! A string that never prints itself.

use std::fmt;
use std::str::FromStr;

/// A password or a URL that carries one. `Debug` and `Display` print `***`, so a secret
/// that ends up in a log line, an error or `--help` by accident shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value that must not be printed.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value, for the one place that needs it (a connection's config).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Replaces every occurrence of each secret in `text` with `***`: the last line of defence
/// before a message leaves the process (log, termination message, status ConfigMap).
pub fn scrub<'a>(text: &str, secrets: impl IntoIterator<Item = &'a Secret>) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        // Very short values would redact ordinary words; such passwords are not worth hiding
        // at that price, and the structured paths never print them anyway.
        if s.0.len() >= 4 && out.contains(&s.0) {
            out = out.replace(&s.0, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn scrub_replaces_every_occurrence() {
        let s = Secret::new("hunter2");
        assert_eq!(
            scrub("a hunter2 b hunter2", [&s]),
            "a *** b ***".to_string()
        );
        assert_eq!(scrub("nothing here", [&s]), "nothing here");
    }
}
