//! Log output through tracing: text or JSON lines on stderr (journald captures it under systemd).
//! The level can change on reload; the format is fixed at start.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::reload;

use crate::config::{LogFormat, LoggingConfig};

/// Changes the level filter of the running subscriber.
pub struct LogHandle {
    reload: Option<reload::Handle<EnvFilter, tracing_subscriber::Registry>>,
}

impl LogHandle {
    /// Applies a new level filter; a bad one was already rejected by config validation.
    pub fn set_level(&self, level: &str) {
        if let (Some(h), Ok(f)) = (&self.reload, EnvFilter::try_new(level)) {
            let _ = h.reload(f);
        }
    }
}

/// Installs the global subscriber. `MAILCOVE_LOG`, when set, overrides the configured level.
pub fn init(cfg: &LoggingConfig) -> LogHandle {
    let level = std::env::var("MAILCOVE_LOG").unwrap_or_else(|_| cfg.level.clone());
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let res = match cfg.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_current_span(true),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(false),
            )
            .try_init(),
    };
    LogHandle {
        reload: res.ok().map(|_| handle),
    }
}

/// A plain stderr subscriber for the short-lived subcommands.
pub fn init_cli() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_env("MAILCOVE_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .try_init();
}
