//! `[lmtp]`: delivery policy for LMTP and `mailcove deliver`.

use serde::{Deserialize, Serialize};

use super::Problems;

/// What LMTP and `deliver` answer when a recipient is over quota.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OverQuota {
    /// `552 5.2.2` (LMTP) / exit 73 (deliver): the MTA bounces the message.
    Permanent,
    /// `452 4.2.2` (LMTP) / exit 75 (deliver): the MTA keeps it queued and retries.
    Temporary,
}

/// `[lmtp]`: delivery by LMTP and by `mailcove deliver`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct LmtpConfig {
    /// Characters that separate a recipient's user from its detail (`user+detail`); empty
    /// disables details. Any one of them splits, at its first occurrence.
    pub recipient_delimiter: String,
    /// Deliver `user+folder` into `folder` when that mailbox exists (else INBOX), as Dovecot's
    /// `lmtp_save_to_detail_mailbox`.
    pub save_to_detail_mailbox: bool,
    /// `permanent` (552 5.2.2) or `temporary` (452 4.2.2), as Dovecot's `quota_full_tempfail`.
    pub over_quota: OverQuota,
}

impl Default for LmtpConfig {
    fn default() -> Self {
        LmtpConfig {
            recipient_delimiter: "+".to_string(),
            save_to_detail_mailbox: true,
            over_quota: OverQuota::Permanent,
        }
    }
}

impl LmtpConfig {
    pub(super) fn validate(&self, out: &mut Problems) {
        if self
            .recipient_delimiter
            .chars()
            .any(|c| c == '@' || c == '<' || c == '>' || c.is_whitespace() || c.is_control())
        {
            out.add(
                "lmtp.recipient_delimiter",
                "must not contain @, <, >, spaces or control characters",
            );
        }
    }
}
