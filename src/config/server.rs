//! `[server]`: process-wide settings.

use serde::{Deserialize, Serialize};

use super::Problems;
use crate::limits;

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ServerConfig {
    /// Name used in greetings and generated certificates.
    pub hostname: String,
    /// System user to switch to after binding the ports when started as root.
    pub user: Option<String>,
    /// System group to switch to; defaults to the user's primary group.
    pub group: Option<String>,
    /// Seconds sessions get to say BYE after SIGTERM before the process exits.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: default_hostname(),
            user: None,
            group: None,
            shutdown_grace_secs: limits::DEFAULT_SHUTDOWN_GRACE_SECS,
        }
    }
}

fn default_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

impl ServerConfig {
    pub(super) fn validate(&self, out: &mut Problems) {
        if let Some(user) = &self.user
            && user.is_empty()
        {
            out.add("server.user", "must not be empty when set");
        }
    }
}
