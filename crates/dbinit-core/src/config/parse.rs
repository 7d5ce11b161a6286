//! Small parsers shared by every setting, and the origin tracking that lets each error name
//! the environment variable and flag, or the config-file key, that an operator set.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Secret;
use crate::setting::{ConfigError, DURATION_FORMS, parse_duration};

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// A value with the names an operator knows it by, for error messages.
pub(super) struct Named<'a, T> {
    pub(super) value: Option<T>,
    pub(super) label: &'a str,
}

/// A setting's raw value that may be empty: Helm templates and `envFrom` produce `VAR=""`
/// all the time, and an empty value means "not set", for every optional setting.
pub(super) trait Blank {
    /// Whether the value is empty.
    fn is_blank(&self) -> bool;
}

impl Blank for String {
    fn is_blank(&self) -> bool {
        self.is_empty()
    }
}

impl Blank for PathBuf {
    fn is_blank(&self) -> bool {
        self.as_os_str().is_empty()
    }
}

impl Blank for Secret {
    fn is_blank(&self) -> bool {
        self.expose().is_empty()
    }
}

/// `None` for an empty value: the one rule that makes `VAR=""` mean unset.
pub(super) fn set<T: Blank>(v: Option<T>) -> Option<T> {
    v.filter(|v| !v.is_blank())
}

/// The first of the flag/env value and the file value, with the label of its origin; empty
/// values count as unset.
pub(super) fn pick<'a, T: Blank>(
    arg: Option<T>,
    env: &'a str,
    file: Option<T>,
    file_key: &'a str,
) -> Named<'a, T> {
    match set(arg) {
        Some(v) => Named {
            value: Some(v),
            label: env,
        },
        None => Named {
            value: set(file),
            label: file_key,
        },
    }
}

/// The flag of an environment variable: `DBINIT_LOCK_TIMEOUT` -> `--lock-timeout`,
/// `POSTGRES_PORT` -> `--postgres-port` (the naming every option follows).
pub(super) fn flag_of(env: &str) -> String {
    let name = env.strip_prefix("DBINIT_").unwrap_or(env);
    format!("--{}", name.to_ascii_lowercase().replace('_', "-"))
}

/// `POSTGRES_PORT (--postgres-port)` or `postgres.port in the config file`.
pub(super) fn describe(label: &str) -> String {
    if label.contains('.') || label.chars().any(|c| c.is_ascii_lowercase()) {
        format!("{label} in the config file")
    } else {
        format!("{label} ({})", flag_of(label))
    }
}

pub(super) fn invalid(label: &str, value: &str, why: &str) -> ConfigError {
    ConfigError(format!("invalid {}: {value:?} {why}", describe(label)))
}

/// A port as an operator (or Kubernetes) set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Port {
    /// The TCP port.
    pub(super) value: u16,
    /// Given in Kubernetes' service-link form `tcp://10.0.0.7:5432`, which Kubernetes
    /// injects as `<SERVICE>_PORT` into every pod of a namespace with a Service of that name:
    /// read for its port, but never as a sign that the operator configured anything.
    pub(super) service_link: bool,
}

/// Parses `5432`, or the service-link form `tcp://host:5432`.
pub(super) fn parse_port(label: &str, raw: &str) -> Result<Port> {
    let bad = || invalid(label, raw, "is not a TCP port (1-65535)");
    let (digits, service_link) = match raw.trim().strip_prefix("tcp://") {
        Some(addr) => (addr.rsplit_once(':').ok_or_else(bad)?.1, true),
        None => (raw.trim(), false),
    };
    match digits.parse::<u16>() {
        Ok(value) if value > 0 => Ok(Port {
            value,
            service_link,
        }),
        _ => Err(bad()),
    }
}

/// The warning for a port read from a service-link value.
pub(super) fn service_link_warning(label: &str, raw: &str, port: u16, used: bool) -> String {
    if used {
        format!(
            "{} is {raw:?}, the form Kubernetes injects for a Service of that name; using its port {port} (set the variable to a plain port, or `enableServiceLinks: false` in the pod spec, to silence this)",
            describe(label)
        )
    } else {
        format!(
            "{} is {raw:?}, the form Kubernetes injects for a Service of that name; ignored (set `enableServiceLinks: false` in the pod spec to silence this)",
            describe(label)
        )
    }
}

/// A duration option given by flag or environment variable `env`: `default` when unset; a bad
/// value is an error naming the variable and its flag.
pub fn duration_setting(raw: Option<String>, env: &str, default: Duration) -> Result<Duration> {
    duration(
        Named {
            value: set(raw),
            label: env,
        },
        default,
    )
}

pub(super) fn duration(n: Named<'_, String>, default: Duration) -> Result<Duration> {
    match n.value {
        None => Ok(default),
        Some(raw) => parse_duration(&raw)
            .ok_or_else(|| invalid(n.label, &raw, &format!("is not {DURATION_FORMS}"))),
    }
}

pub(super) fn nonempty(n: Named<'_, String>) -> Result<Option<String>> {
    Ok(set(n.value))
}

/// Reads a password file; one trailing newline (as `echo` and most editors leave) is dropped.
pub(super) fn read_secret_file(label: &str, path: &Path) -> Result<Secret> {
    let mut s = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "{}: cannot read the file {}: {e}",
            describe(label),
            path.display()
        ))
    })?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    if s.is_empty() {
        return Err(ConfigError(format!(
            "{}: the file {} is empty (expected the secret itself, one trailing newline allowed)",
            describe(label),
            path.display()
        )));
    }
    Ok(Secret::new(s))
}

/// One password from a literal, a file, or neither — never both.
pub(super) fn password(
    literal: Option<Secret>,
    literal_env: &str,
    file: Named<'_, PathBuf>,
) -> Result<Option<Secret>> {
    match (set(literal), file.value) {
        (Some(_), Some(_)) => Err(ConfigError(format!(
            "{literal_env} and {} are both set; use one of them",
            describe(file.label)
        ))),
        (Some(p), None) => Ok(Some(p)),
        (None, Some(path)) => read_secret_file(file.label, &path).map(Some),
        (None, None) => Ok(None),
    }
}

/// `explicit` from POSTGRES_X, `from_url` from DATABASE_URL: they must agree when both exist.
pub(super) fn agree<T: PartialEq + std::fmt::Display>(
    explicit: Option<T>,
    label: &str,
    from_url: Option<T>,
) -> Result<Option<T>> {
    match (explicit, from_url) {
        (Some(a), Some(b)) if a != b => Err(ConfigError(format!(
            "DATABASE_URL and {} disagree ({b} vs {a}); set one of them",
            describe(label)
        ))),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

/// Decodes `%XX` escapes of a URL part; `None` for a broken escape or invalid UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
