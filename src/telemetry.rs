//! Logging: JSON or text lines on stderr, level from `RUST_LOG` (default `info`).
//!
//! Spans carry the object key (`object=namespace/name`) for every line inside a reconcile, and
//! the CAMS client adds the action and RequestId to its events. Nothing secret is ever logged:
//! credentials have redacting `Debug` implementations and request URLs are never printed.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::cli::LogFormat;

/// Environment variable holding the log filter, e.g. `info` or `cams_operator=debug`.
pub const LOG_ENV: &str = "RUST_LOG";

/// Installs the global subscriber. Calling it twice keeps the first subscriber.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
