//! Logging, initialised once: a filter (`DBINIT_LOG`, default `info`), text or JSON on stderr.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

impl LogFormat {
    /// Parses `text` (or `plain`) or `json`, in any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "text" | "plain" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// How to log, as configuration resolved it.
#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    /// Text or JSON.
    pub format: LogFormat,
    /// `RUST_LOG`-style filter, already checked by [`check_filter`]; `info` when unset.
    pub filter: Option<String>,
}

/// Checks a filter (`info`, `warn,dbinit_core=debug`); the error says what is wrong.
pub fn check_filter(filter: &str) -> Result<(), String> {
    EnvFilter::builder()
        .with_regex(false)
        .parse(filter)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Installs the global subscriber. Safe to call twice (the second call is ignored), so an
/// early error path can log before the full configuration is known.
pub fn init(log: &LogSettings) {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(log.filter.as_deref().unwrap_or_default());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}
