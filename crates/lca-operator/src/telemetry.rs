//! Logging set-up: human-readable at a terminal, JSON otherwise (in a pod), filtered by
//! `RUST_LOG` (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() || std::env::var_os("LCA_LOG_TEXT").is_some() {
        builder.init();
    } else {
        builder.json().flatten_event(true).init();
    }
}
