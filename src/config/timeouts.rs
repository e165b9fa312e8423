//! `[timeouts]`: inactivity timeouts, never below the minimums the RFCs set.

use serde::{Deserialize, Serialize};

use super::Problems;
use crate::limits;

/// `[timeouts]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct TimeoutsConfig {
    /// IMAP autologout after this many seconds without a command (RFC 3501: at least 1800).
    pub imap_idle_secs: u64,
    /// POP3 autologout (RFC 1939: at least 600).
    pub pop3_idle_secs: u64,
    /// Seconds a client has to log in.
    pub preauth_secs: u64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            imap_idle_secs: limits::MIN_IMAP_IDLE_SECS,
            pop3_idle_secs: limits::MIN_POP3_IDLE_SECS,
            preauth_secs: limits::DEFAULT_PREAUTH_SECS,
        }
    }
}

impl TimeoutsConfig {
    pub(super) fn validate(&self, out: &mut Problems) {
        if self.imap_idle_secs < limits::MIN_IMAP_IDLE_SECS {
            out.add(
                "timeouts.imap_idle_secs",
                format!(
                    "must be at least {} (RFC 3501 section 5.4)",
                    limits::MIN_IMAP_IDLE_SECS
                ),
            );
        }
        if self.pop3_idle_secs < limits::MIN_POP3_IDLE_SECS {
            out.add(
                "timeouts.pop3_idle_secs",
                format!(
                    "must be at least {} (RFC 1939 section 3)",
                    limits::MIN_POP3_IDLE_SECS
                ),
            );
        }
        if self.preauth_secs == 0 {
            out.add("timeouts.preauth_secs", "must be at least 1");
        }
    }
}
