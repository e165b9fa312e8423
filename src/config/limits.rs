//! `[limits]`: caps on connections and sizes. Their defaults and reasons live in
//! [`crate::limits`].

use serde::{Deserialize, Serialize};

use super::Problems;
use crate::limits;

/// `[limits]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct LimitsConfig {
    /// Concurrent connections, all listeners together.
    pub max_connections: usize,
    /// Concurrent connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Concurrent logged-in connections of one user from one IP address.
    pub max_userip_connections: usize,
    /// Longest IMAP command line in bytes (literals not counted).
    pub max_command_line: usize,
    /// Largest message accepted by APPEND, LMTP and deliver, in bytes.
    pub max_message_size: u64,
    /// Message bytes buffered in memory over all connections at once (see `crate::inflight`).
    pub max_inflight_message_bytes: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: limits::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: limits::DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_userip_connections: limits::DEFAULT_MAX_USERIP_CONNECTIONS,
            max_command_line: limits::DEFAULT_MAX_COMMAND_LINE,
            max_message_size: limits::DEFAULT_MAX_MESSAGE_SIZE,
            max_inflight_message_bytes: limits::DEFAULT_MAX_INFLIGHT_MESSAGE_BYTES,
        }
    }
}

impl LimitsConfig {
    pub(super) fn validate(&self, out: &mut Problems) {
        for (k, v) in [
            ("limits.max_connections", self.max_connections),
            ("limits.max_connections_per_ip", self.max_connections_per_ip),
            ("limits.max_userip_connections", self.max_userip_connections),
        ] {
            if v == 0 {
                out.add(k, "must be at least 1");
            }
        }
        if self.max_command_line < 1024 {
            out.add(
                "limits.max_command_line",
                "must be at least 1024 bytes (RFC 2683 asks servers to accept 8000)",
            );
        }
        if self.max_message_size < 1024 {
            out.add("limits.max_message_size", "must be at least 1024 bytes");
        }
        // Every transfer takes one chunk of the budget before any data is asked for: a smaller
        // budget would refuse every APPEND and LMTP message after its wait.
        if self.max_inflight_message_bytes < limits::INCOMING_MESSAGE_CHUNK as u64 {
            out.add(
                "limits.max_inflight_message_bytes",
                format!("must be at least {} bytes", limits::INCOMING_MESSAGE_CHUNK),
            );
        }
    }
}
