//! Logging, initialised once: `RUST_LOG` filter (default `info`), text or JSON on stderr.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Safe to call twice (the second call is ignored), so an
/// early error path can log before the full configuration is known.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// The log format from `LOG_FORMAT` alone, for errors raised before configuration resolves.
pub fn early_format() -> LogFormat {
    std::env::var("LOG_FORMAT")
        .ok()
        .and_then(|s| LogFormat::parse(&s))
        .unwrap_or_default()
}
