//! Structured logs: human-readable by default, JSON with `--log-format json`. The filter comes
//! from `HELVETIA_LOG` (e.g. `debug`, `helvetia_server=debug`).

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

const SERVER_DEFAULT: &str = "info,sqlx=warn,tower_http=warn";

pub fn init_for_server(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("HELVETIA_LOG").unwrap_or_else(|_| EnvFilter::new(SERVER_DEFAULT));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Client commands print their own output; logs only for warnings or when asked for.
pub fn init_for_client() {
    let filter = EnvFilter::try_from_env("HELVETIA_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
