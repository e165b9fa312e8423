//! APPEND (RFC 3501 6.3.11) with APPENDUID (RFC 4315).

use bytes::Bytes;

use super::Reply;
use crate::imap::names;
use crate::imap::proto::encode::Code;
use crate::imap::proto::types::{AppendMessage, Mailbox};
use crate::imap::response::ImapError;
use crate::imap::selected::storage_flags;
use crate::imap::session::Session;
use crate::storage;

/// APPEND mailbox [flags] [date] literal. Acknowledged only once the message is durable.
pub async fn append(
    s: &mut Session,
    mb: &Mailbox,
    messages: Vec<AppendMessage>,
) -> Result<Reply, ImapError> {
    let name = names::from_wire(mb)?;
    let mut messages = messages.into_iter();
    let (Some(m), None) = (messages.next(), messages.next()) else {
        return Err(ImapError::NotSupported("MULTIAPPEND"));
    };
    if m.data.is_empty() {
        // As Dovecot: an empty message is almost certainly a client bug.
        return Err(ImapError::Cannot("Can't save a zero byte message"));
    }
    let (flags, keywords) = storage_flags(&m.flags)?;
    let message = storage::AppendMessage {
        data: Bytes::from(m.data),
        flags,
        keywords,
        internal_date: m.date.map(|d| d.unix_timestamp()),
    };
    let res = s
        .store()?
        .append(&name, message)
        .await
        .map_err(ImapError::destination)?;
    Ok(Reply::Ok(
        Some(Code::AppendUid(res.uidvalidity, vec![res.uid])),
        "Append completed.".into(),
    ))
}
