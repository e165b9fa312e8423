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
    /// Networks (`10.0.0.0/8`, `::1/128`, or a bare address) of the proxies allowed to send a
    /// PROXY protocol header on listeners with `proxy_protocol = true`; Dovecot's
    /// `haproxy_trusted_networks`.
    pub proxy_trusted_networks: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: default_hostname(),
            user: None,
            group: None,
            shutdown_grace_secs: limits::DEFAULT_SHUTDOWN_GRACE_SECS,
            control_socket: PathBuf::from(limits::DEFAULT_CONTROL_SOCKET),
            proxy_trusted_networks: Vec::new(),
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
        for (i, n) in self.proxy_trusted_networks.iter().enumerate() {
            if parse_network(n).is_none() {
                out.add(
                    format!("server.proxy_trusted_networks[{i}]"),
                    format!(
                        "`{n}` is not a network such as 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7"
                    ),
                );
            }
        }
    }

    /// `proxy_trusted_networks` parsed (entries that do not parse were refused by validation).
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.proxy_trusted_networks
            .iter()
            .filter_map(|n| parse_network(n))
            .collect()
    }
}

/// A network in CIDR notation, or a bare address as a network of one.
fn parse_network(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}
