//! `[server]`: process-wide settings.

use std::path::PathBuf;

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
    /// Unix socket of `mailcove who`, `kick` and `reload` (mode 0600, owned by the daemon's
    /// user); empty turns it off.
    pub control_socket: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: default_hostname(),
            user: None,
            group: None,
            shutdown_grace_secs: limits::DEFAULT_SHUTDOWN_GRACE_SECS,
            control_socket: PathBuf::from(limits::DEFAULT_CONTROL_SOCKET),
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
        if self.control_socket.as_os_str().len() > limits::MAX_UNIX_SOCKET_PATH {
            out.add(
                "server.control_socket",
                format!(
                    "longer than {} bytes, the limit of a Unix socket path",
                    limits::MAX_UNIX_SOCKET_PATH
                ),
            );
        }
    }
}
