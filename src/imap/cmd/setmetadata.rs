//! SETMETADATA (RFC 5464 4.3): sets or (with NIL) removes entries of a mailbox, or with the
//! mailbox `""` the user's server entries, all or none.
//!
//! * The configured server entries `/shared/admin` and `/shared/comment` are read-only:
//!   `NO [NOPERM]` (RFC 5464 3.3 asks for NO; RFC 5530's NOPERM says why).
//! * The storage checks the limits: a value over [`crate::limits::MAX_METADATA_VALUE_BYTES`]
//!   is `NO [METADATA MAXSIZE n]`, a new entry past [`crate::limits::MAX_METADATA_ENTRIES`] or
//!   past the user's [`crate::limits::MAX_METADATA_USER_BYTES`] is `NO [METADATA TOOMANY]`.
//! * `/private` and `/shared` are both the owner's to read and write (no ACL, as Dovecot
//!   without one), so `[METADATA NOPRIVATE]` is never sent.
//! * The answer is OK only once the entries are on disk; no METADATA response is sent (the RFC
//!   says SHOULD NOT).

use super::Reply;
use super::getmetadata::{READ_ONLY, target};
use crate::imap::proto::types::Mailbox;
use crate::imap::response::ImapError;
use crate::imap::session::Session;
use crate::storage::MetadataChange;

/// SETMETADATA mailbox (entry value ...).
pub async fn setmetadata(
    s: &mut Session,
    mb: &Mailbox,
    entries: Vec<MetadataChange>,
) -> Result<Reply, ImapError> {
    let target = target(s, mb)?;
    if target.is_none() && entries.iter().any(|(k, _)| READ_ONLY.contains(&k.as_str())) {
        return Err(ImapError::NoPerm(
            "The server's /shared/admin and /shared/comment are read-only",
        ));
    }
    let changed: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
    s.store()?.metadata_set(target.as_deref(), entries).await?;
    metadata_changed(s, target.as_deref(), &changed);
    Reply::ok("Setmetadata completed.")
}

/// The one place every successful SETMETADATA passes, after the change is durable: `mailbox` is
/// `None` for the server entries, `entries` the names set or removed. NOTIFY (RFC 5465
/// MailboxMetadataChange / ServerMetadataChange) hooks its event here.
pub fn metadata_changed(s: &mut Session, mailbox: Option<&str>, entries: &[String]) {
    tracing::debug!(
        mailbox = mailbox.unwrap_or(""),
        entries = entries.len(),
        "metadata changed"
    );
    if let Ok(store) = s.store() {
        store.publish_metadata_change(mailbox, entries);
    }
}
