//! Logging: JSON or text lines on stderr, level from `RUST_LOG` (default `info`).
//!
//! Every line inside a reconcile carries the object key: JSON lines list their spans, and the
//! `reconcile` span has the field `object=namespace/name`; text lines print the span context.
//! CAMS calls log their action and RequestId. Nothing secret is ever logged: credentials have
//! redacting `Debug` implementations and request URLs (which carry the signature) are never
//! printed.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::LogFormat;

/// Environment variable holding the log filter, e.g. `info` or `cams_operator=debug`.
pub const LOG_ENV: &str = "RUST_LOG";

/// The filter from `RUST_LOG`, or `info`.
pub fn filter_from_env() -> EnvFilter {
    EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The operator's log subscriber in `format`, writing to `writer`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.with_ansi(false).finish()),
    }
}

/// Installs the global subscriber on stderr. Calling it twice keeps the first subscriber.
pub fn init(format: LogFormat) {
    let _ = tracing::subscriber::set_global_default(subscriber(
        format,
        filter_from_env(),
        std::io::stderr,
    ));
}
