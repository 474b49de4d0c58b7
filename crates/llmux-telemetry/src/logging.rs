//! `LOG_LEVEL` / `LOG_FORMAT` → a global tracing subscriber writing to stderr.

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object per line (default: machines read logs).
    #[default]
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

impl Format {
    /// Parses `json` / `pretty` (case-insensitive); anything else is `None`.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "pretty" | "text" => Some(Self::Pretty),
            _ => None,
        }
    }
}

/// Installs the global subscriber. `level` is a tracing filter (`info`, `debug`,
/// `llmux=debug,hyper=warn`…); an invalid one falls back to `info`.
pub fn init(level: &str, format: Format) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    crate::access_log::use_json(format == Format::Json);
    let _ = match format {
        Format::Json => builder.json().flatten_event(true).try_init(),
        Format::Pretty => builder.try_init(),
    };
}
