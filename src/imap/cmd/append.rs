//! APPEND (RFC 3501 6.3.11) with APPENDUID (RFC 4315).
//!
//! The message literal is streamed: the session's receiver announces it
//! ([`Framed::Stream`](crate::imap::proto::receive::Framed)) and this handler moves its data to
//! the mailbox's [`AppendStream`] chunk by chunk as it arrives, so memory per APPEND is one chunk
//! ([`INCOMING_MESSAGE_CHUNK`]), held as a permit of the global in-flight budget. Everything that
//! can be refused before the data comes (mailbox, flags, size against quota, budget) is refused
//! before `+`; a failure after it (quota reached mid-way, a write error) drops the partial
//! message and reads the rest of the literal to its end before the tagged NO, so the stream stays
//! in step. A client that disconnects mid-literal leaves nothing behind.

use std::time::Duration;

use bytes::Bytes;

use super::Reply;
use crate::imap::names;
use crate::imap::proto::encode::Code;
use crate::imap::proto::receive::{Framed, StreamRest};
use crate::imap::proto::types::{AppendMessage, Mailbox};
use crate::imap::response::ImapError;
use crate::imap::selected::storage_flags;
use crate::imap::session::{LiteralIn, Session};
use crate::inflight;
use crate::limits::{INCOMING_MESSAGE_CHUNK, INFLIGHT_WAIT_MS};
use crate::storage::{self, AppendStream};

/// APPEND mailbox [flags] [date] literal. Acknowledged only once the message is durable.
pub async fn append(
    s: &mut Session,
    mb: &Mailbox,
    messages: Vec<AppendMessage>,
) -> Result<Reply, ImapError> {
    if let Some(literal) = s.literal_in.take() {
        return streamed(s, mb, messages, literal).await;
    }
    let name = names::from_wire(mb, s.name_form())?;
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
    Ok(appended(res))
}

fn appended(res: storage::AppendResult) -> Reply {
    Reply::Ok(
        Some(Code::AppendUid(res.uidvalidity, vec![res.uid])),
        "Append completed.".into(),
    )
}

/// Everything settled before the client sends the data.
struct Prepared {
    sink: Box<dyn AppendStream>,
    permit: inflight::Permit,
    flags: storage::SystemFlags,
    keywords: Vec<String>,
    date: Option<i64>,
}

async fn prepare(
    s: &mut Session,
    mb: &Mailbox,
    messages: Vec<AppendMessage>,
    literal: LiteralIn,
) -> Result<Prepared, ImapError> {
    let name = names::from_wire(mb, s.name_form())?;
    let mut messages = messages.into_iter();
    let (Some(m), None) = (messages.next(), messages.next()) else {
        return Err(ImapError::NotSupported("MULTIAPPEND"));
    };
    if literal.len == 0 {
        // As Dovecot: an empty message is almost certainly a client bug.
        return Err(ImapError::Cannot("Can't save a zero byte message"));
    }
    let (flags, keywords) = storage_flags(&m.flags)?;
    let store = s.store()?;
    // Part of the budget stays free for LMTP: clients cannot hold up the MTA's deliveries.
    let limit = inflight::client_limit(s.shared.config().limits.max_inflight_message_bytes);
    let permit = inflight::global()
        .acquire(
            INCOMING_MESSAGE_CHUNK as u64,
            limit,
            Duration::from_millis(INFLIGHT_WAIT_MS),
        )
        .await
        .ok_or(ImapError::InFlightLimit)?;
    let mut sink = store
        .append_stream(&name)
        .await
        .map_err(ImapError::destination)?;
    sink.reserve(literal.len).map_err(ImapError::destination)?;
    Ok(Prepared {
        sink,
        permit,
        flags,
        keywords,
        date: m.date.map(|d| d.unix_timestamp()),
    })
}

/// How receiving the literal ended.
enum Received {
    /// The whole literal and its line arrived; `failure` says whether it could be kept.
    Done(Option<ImapError>),
    /// The client went away (or stayed silent past the idle timeout).
    Gone,
}

async fn streamed(
    s: &mut Session,
    mb: &Mailbox,
    messages: Vec<AppendMessage>,
    literal: LiteralIn,
) -> Result<Reply, ImapError> {
    let p = match prepare(s, mb, messages, literal).await {
        Ok(p) => p,
        Err(e) => {
            s.receiver.refuse_literal(literal.synchronizing);
            return Err(e);
        }
    };
    // RFC 3501 7.5: the literal was accepted; ask for its data.
    if literal.synchronizing && s.conn.send(b"+ Ready for literal data\r\n").await.is_err() {
        return Ok(Reply::Close);
    }
    let Prepared {
        sink,
        permit,
        flags,
        keywords,
        date,
    } = p;
    let mut sink = Some(sink);
    let received = receive(s, &mut sink).await;
    drop(permit);
    match received {
        // Dropping the stream removes its temporary file.
        Received::Gone => Ok(Reply::Close),
        Received::Done(Some(e)) => Err(e),
        Received::Done(None) => {
            let sink = sink.ok_or(ImapError::Storage {
                error: storage::StorageError::Temporary("append stream lost".into()),
                trycreate: false,
            })?;
            let res = sink
                .commit(flags, keywords, date)
                .await
                .map_err(ImapError::destination)?;
            Ok(appended(res))
        }
    }
}

/// Moves the literal's data into `sink` as it arrives, up to the end of the command's line. After
/// a failure the rest is read and dropped (and `sink` is `None`).
async fn receive(s: &mut Session, sink: &mut Option<Box<dyn AppendStream>>) -> Received {
    let cfg = s.shared.config();
    let idle = Duration::from_secs(cfg.timeouts.imap_idle_secs);
    let max_buffer = 2 * cfg.limits.max_command_line + INCOMING_MESSAGE_CHUNK;
    drop(cfg);
    let mut failure = None;
    loop {
        let want = match s.receiver.poll(s.conn.buffered()) {
            Framed::LiteralData { available, left } => {
                // Gather a whole chunk before writing: one storage write per chunk, not per read.
                if available < INCOMING_MESSAGE_CHUNK && left > 0 && sink.is_some() {
                    INCOMING_MESSAGE_CHUNK
                } else {
                    if let Some(w) = sink.as_mut() {
                        let data = s.conn.buffered().get(..available).unwrap_or_default();
                        if let Err(e) = w.write(data).await {
                            failure = Some(ImapError::destination(e));
                            *sink = None;
                        }
                    }
                    s.receiver.take_literal(available);
                    s.conn.consume(available);
                    continue;
                }
            }
            Framed::StreamEnd { consumed, rest } => {
                s.conn.consume(consumed);
                let trailing = match rest {
                    StreamRest::End => None,
                    StreamRest::MoreMessages => Some(ImapError::NotSupported("MULTIAPPEND")),
                    StreamRest::Junk => Some(ImapError::Parse("Expected CRLF after the message.")),
                };
                // NUL only in a literal8 (RFC 3516 4.4): a plain literal with NUL is BAD.
                let trailing = if s.receiver.take_nul_in_plain_literal() {
                    Some(ImapError::Parse(
                        "NUL is not allowed in a literal; send binary data as a literal8 (~{n}).",
                    ))
                } else {
                    trailing
                };
                if let Some(e) = trailing {
                    *sink = None;
                    failure = failure.or(Some(e));
                }
                return Received::Done(failure);
            }
            Framed::Incomplete => max_buffer,
            other => {
                // The receiver is inside the literal: nothing else can come.
                tracing::warn!(framed = ?other, "unexpected frame inside an APPEND literal");
                *sink = None;
                return Received::Gone;
            }
        };
        match tokio::time::timeout(idle, s.conn.fill(want)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(Ok(_)) | Ok(Err(_)) => {
                tracing::debug!("client gone inside an APPEND literal");
                *sink = None;
                return Received::Gone;
            }
            Err(_) => {
                s.untagged("BYE Disconnected for inactivity.");
                *sink = None;
                return Received::Gone;
            }
        }
    }
}
