//! GETQUOTA (RFC 9208 4.1.1): the usage and limits of a quota root.
//!
//! Every user has exactly one quota root, named `""`, covering all of their mailboxes (the
//! storage keeps one usage per user: Maildir++ `maildirsize`, or the memory backend's counters).

use super::Reply;
use crate::imap::proto::encode;
use crate::imap::response::ImapError;
use crate::imap::session::Session;
use crate::storage::QuotaUsage;

/// The name of the user's only quota root.
pub const ROOT: &[u8] = b"";

/// GETQUOTA root: `* QUOTA "" (...)` for `""`, `NO [NONEXISTENT]` for any other name (RFC 9208
/// 4.1.1: "no such quota root").
pub async fn getquota(s: &mut Session, root: &[u8]) -> Result<Reply, ImapError> {
    if root != ROOT {
        return Err(ImapError::NoQuotaRoot);
    }
    let usage = s.store()?.quota().await?;
    write_quota(s.conn.out(), &usage);
    Reply::ok("Getquota completed.")
}

/// `* QUOTA "" (STORAGE used limit MESSAGE used limit)`, listing only the resources that have a
/// limit: RFC 9208 4.2.1 says a resource not named is not limited, so an unlimited user gets
/// `* QUOTA "" ()`. The ABNF's `quota-list` asks for at least one triplet, but 4.2.1's prose
/// allows the empty list and Dovecot sends it too, so clients expect it.
///
/// STORAGE is in units of 1024 octets (RFC 9208 5.1). Usage and limit are both rounded up, as
/// Dovecot does: a user with a few bytes stored sees 1, not 0, and a limit is never shown as
/// less than it is.
pub fn write_quota(out: &mut Vec<u8>, usage: &QuotaUsage) {
    let mut resources: Vec<(&str, u64, u64)> = Vec::with_capacity(2);
    if let Some(limit) = usage.bytes_limit {
        resources.push(("STORAGE", kib(usage.bytes_used), kib(limit)));
    }
    if let Some(limit) = usage.messages_limit {
        resources.push(("MESSAGE", usage.messages_used, limit));
    }
    encode::quota(out, ROOT, &resources);
}

/// Bytes in units of 1024 octets, rounded up.
pub fn kib(bytes: u64) -> u64 {
    bytes.div_ceil(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_in_kib_rounded_up_and_only_limited_resources_are_listed() {
        assert_eq!((kib(0), kib(1), kib(1024), kib(1025)), (0, 1, 1, 2));
        let mut out = Vec::new();
        write_quota(
            &mut out,
            &QuotaUsage {
                bytes_used: 1500,
                bytes_limit: Some(1 << 20),
                messages_used: 2,
                messages_limit: Some(10),
            },
        );
        assert_eq!(out, b"* QUOTA \"\" (STORAGE 2 1024 MESSAGE 2 10)\r\n");
        out.clear();
        write_quota(
            &mut out,
            &QuotaUsage {
                bytes_used: 1500,
                bytes_limit: None,
                messages_used: 2,
                messages_limit: Some(10),
            },
        );
        assert_eq!(out, b"* QUOTA \"\" (MESSAGE 2 10)\r\n");
        out.clear();
        write_quota(&mut out, &QuotaUsage::default());
        assert_eq!(out, b"* QUOTA \"\" ()\r\n");
    }
}
