//! `[[listener]]`: the sockets to accept connections on, their protocol and TLS mode.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Problems;
use crate::limits;

/// Protocol served on a listener.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// IMAP4rev1 (RFC 3501).
    Imap,
    /// POP3 (RFC 1939).
    Pop3,
    /// LMTP (RFC 2033), for mail delivery by an MTA.
    Lmtp,
    /// ManageSieve (RFC 5804), for users' Sieve scripts (port 4190).
    ManageSieve,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Lmtp => "lmtp",
            Protocol::ManageSieve => "managesieve",
        })
    }
}

/// How TLS is used on a listener.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plaintext only; STARTTLS/STLS not offered.
    None,
    /// Plaintext first, upgraded by STARTTLS (IMAP) or STLS (POP3).
    Starttls,
    /// TLS from the first byte (ports 993 and 995, RFC 8314).
    Implicit,
}

/// One `[[listener]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct ListenerConfig {
    /// `imap`, `pop3` or `lmtp`.
    pub protocol: Protocol,
    /// `ip:port`; `[::]:143` for IPv6 (dual-stack where the OS allows). Empty for a Unix socket.
    pub address: String,
    /// `none`, `starttls` or `implicit`. LMTP listeners have no TLS (normalised to `none`).
    pub tls: TlsMode,
    /// Treat clients of this listener as remote even when they connect from loopback.
    /// Only for tests and for setups behind a local proxy.
    pub assume_remote: bool,
    /// LMTP only: a Unix socket path instead of `address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Permissions of the Unix socket, octal as a string (`"0660"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Owner of the Unix socket; default the user the daemon runs as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Group of the Unix socket; default the group the daemon runs as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Every connection starts with a HAProxy PROXY protocol header (v1 or v2), accepted only
    /// from `server.proxy_trusted_networks`; its client address then stands for the peer's.
    pub proxy_protocol: bool,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            protocol: Protocol::Imap,
            address: String::new(),
            tls: TlsMode::Starttls,
            assume_remote: false,
            path: None,
            mode: None,
            owner: None,
            group: None,
            proxy_protocol: false,
        }
    }
}

impl ListenerConfig {
    /// The Unix socket permissions: `mode` parsed as octal, default
    /// [`limits::DEFAULT_LMTP_SOCKET_MODE`]. None when `mode` is not octal (refused by validation).
    pub fn socket_mode(&self) -> Option<u32> {
        match &self.mode {
            None => Some(limits::DEFAULT_LMTP_SOCKET_MODE),
            Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
                .ok()
                .filter(|v| *v <= 0o777),
        }
    }

    /// Where the listener listens, for logs: the address or the socket path.
    pub fn endpoint(&self) -> String {
        match &self.path {
            Some(p) => format!("unix:{}", p.display()),
            None => self.address.clone(),
        }
    }
}

/// The endpoints of the listeners validated so far, to report one used twice.
#[derive(Default)]
struct Endpoints {
    addresses: Vec<SocketAddr>,
    paths: Vec<PathBuf>,
}

/// Checks every listener and that no address or socket path is used twice.
pub(super) fn validate_listeners(listeners: &[ListenerConfig], out: &mut Problems) {
    if listeners.is_empty() {
        out.add("listener", "at least one [[listener]] is needed");
    }
    let mut seen = Endpoints::default();
    for (i, l) in listeners.iter().enumerate() {
        l.validate(i, &mut seen, out);
    }
}

impl ListenerConfig {
    /// Checks `listener[i]`, a TCP address or a Unix socket but not both.
    fn validate(&self, i: usize, seen: &mut Endpoints, out: &mut Problems) {
        let key = |name: &str| format!("listener[{i}].{name}");
        let unix_keys = self.mode.is_some() || self.owner.is_some() || self.group.is_some();
        if self.protocol != Protocol::Lmtp && (self.path.is_some() || unix_keys) {
            out.add(
                key("path"),
                "Unix sockets (path, mode, owner, group) are for lmtp listeners only",
            );
        }
        if let Some(path) = &self.path {
            if !self.address.is_empty() {
                out.add(
                    key("address"),
                    "set either address (TCP) or path (Unix socket), not both",
                );
            }
            if path.as_os_str().is_empty() {
                out.add(key("path"), "must not be empty");
            } else if seen.paths.contains(path) {
                out.add(key("path"), format!("{} is used twice", path.display()));
            }
            seen.paths.push(path.clone());
            if self.socket_mode().is_none() {
                out.add(key("mode"), "must be octal permissions such as \"0660\"");
            }
            return;
        }
        if unix_keys {
            out.add(
                key("mode"),
                "mode, owner and group apply only to a Unix socket (path)",
            );
        }
        match self.address.parse::<SocketAddr>() {
            Ok(a) => {
                if seen.addresses.contains(&a) {
                    out.add(key("address"), format!("{a} is used twice"));
                }
                seen.addresses.push(a);
            }
            Err(_) => out.add(
                key("address"),
                format!(
                    "`{}` is not an ip:port address such as 0.0.0.0:143 or [::]:993",
                    self.address
                ),
            ),
        }
    }
}

/// Listeners with `proxy_protocol = true` need TCP and at least one trusted network: a PROXY
/// listener that trusts nobody would refuse every connection.
pub(super) fn validate_proxy(
    listeners: &[ListenerConfig],
    trusted_networks: usize,
    out: &mut Problems,
) {
    for (i, l) in listeners.iter().enumerate() {
        if !l.proxy_protocol {
            continue;
        }
        let key = format!("listener[{i}].proxy_protocol");
        if l.path.is_some() {
            out.add(
                key,
                "the PROXY protocol is for TCP listeners; a Unix socket has no client address",
            );
        } else if trusted_networks == 0 {
            out.add(
                key,
                "needs server.proxy_trusted_networks, the addresses of the proxies allowed to send the header",
            );
        }
    }
}
