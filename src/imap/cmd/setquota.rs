//! SETQUOTA (RFC 9208 4.1.3): refused. Limits come from the configuration and the users file
//! (`mail.quota_bytes`, `userdb_quota_rule`), which an IMAP user may not change; the server does
//! not announce QUOTASET, and answers `NO [NOPERM]` as Dovecot does for a non-admin user.

use super::Reply;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// SETQUOTA root (limits): always `NO [NOPERM]` once the arguments parsed.
pub fn setquota(
    _s: &mut Session,
    _root: &[u8],
    _limits: &[(String, u64)],
) -> Result<Reply, ImapError> {
    Err(ImapError::NoPerm(
        "Quota can be changed only by the administrator",
    ))
}
