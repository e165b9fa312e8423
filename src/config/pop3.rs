//! `[pop3]`: what POP3 does with deleted and downloaded messages, and its login delay.

use serde::{Deserialize, Serialize};

use super::Problems;

/// What POP3 does with messages a client deleted.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Pop3DeletePolicy {
    /// DELE + QUIT removes the messages.
    Delete,
    /// DELE + QUIT marks them \Deleted and \Seen and keeps them.
    Keep,
    /// Messages are removed `keep_days` days after they were first downloaded.
    KeepDays,
}

/// `[pop3]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Pop3Config {
    /// `delete`, `keep` or `keep-days`.
    pub delete_policy: Pop3DeletePolicy,
    /// Days for `keep-days`; also the least a user's `pop3_keep_days` may set.
    pub keep_days: u32,
    /// RETR marks the message \Seen for IMAP users of the same mailbox.
    pub mark_seen_on_retr: bool,
    /// Minimum seconds between two POP3 logins of a user, advertised as LOGIN-DELAY and
    /// enforced; 0 for none.
    pub login_delay_secs: u64,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            delete_policy: Pop3DeletePolicy::Delete,
            keep_days: 30,
            mark_seen_on_retr: true,
            login_delay_secs: 0,
        }
    }
}

impl Pop3Config {
    pub(super) fn validate(&self, out: &mut Problems) {
        if self.delete_policy == Pop3DeletePolicy::KeepDays && self.keep_days == 0 {
            out.add(
                "pop3.keep_days",
                "must be at least 1 with delete_policy = \"keep-days\"",
            );
        }
    }
}
