//! APPEND (RFC 3501 6.3.11) with APPENDUID (RFC 4315), MULTIAPPEND (RFC 3502), CATENATE
//! (RFC 4469), literal8 (RFC 3516 4.4) and `UTF8 (literal8)` (RFC 6855 4).
//!
//! Message literals are streamed: the session's receiver announces the first one
//! ([`Framed::Stream`](crate::imap::proto::receive::Framed)) and this handler moves its data to
//! the mailbox's [`AppendStream`] chunk by chunk as it arrives, so memory per APPEND is one chunk
//! ([`INCOMING_MESSAGE_CHUNK`]), held as a permit of the global in-flight budget. After each
//! literal the receiver hands over the text up to the next literal header (or the command's end),
//! which is parsed here ([`parse_append_tail`]) and tells where the next literal belongs: the
//! next message (MULTIAPPEND) or the next CATENATE part.
//!
//! Each message gets its own stream; when the command is complete, all of them are stored at
//! once, all or none ([`UserStore::commit_many`]), and one APPENDUID names their UIDs. Whatever
//! can be refused before a literal's data comes (mailbox, flags, size, quota, budget) is refused
//! before `+`; a failure after it (quota reached mid-way, a write error, a NUL in a plain
//! literal) drops the batch and reads the rest of the literal to its end before the tagged
//! answer; a following literal is refused (a synchronizing one is then never sent, a
//! non-synchronizing one is discarded with the rest of the command), so the stream stays in
//! step. A client that disconnects mid-command leaves nothing behind.

use std::sync::Arc;
use std::time::Duration;

use super::Reply;
use crate::imap::proto::encode::Code;
use crate::imap::proto::parse::{AppendAt, parse_append_tail};
use crate::imap::proto::receive::{Framed, StreamRest};
use crate::imap::proto::types::{AppendMessage, CatPart, Mailbox};
use crate::imap::response::ImapError;
use crate::imap::selected::storage_flags;
use crate::imap::session::{LiteralIn, Session};
use crate::imap::{catenate, names};
use crate::inflight;
use crate::limits::{
    INCOMING_MESSAGE_CHUNK, INFLIGHT_WAIT_MS, MAX_CATENATE_PARTS, MAX_MULTIAPPEND_MESSAGES,
};
use crate::storage::{self, AppendStream, PendingAppend, UserStore};

/// APPEND mailbox message...; acknowledged only once every message is durable.
pub async fn append(
    s: &mut Session,
    mb: &Mailbox,
    messages: Vec<AppendMessage>,
) -> Result<Reply, ImapError> {
    if let Some(literal) = s.literal_in.take() {
        return streamed(s, mb, messages, literal).await;
    }
    // The whole command is in hand: a CATENATE of URLs only, or a caller that does not stream.
    let mut batch = Batch::open(s, mb)?;
    let (events, pending) = events(Vec::new(), false, messages, false);
    if pending.is_some() {
        return Err(ImapError::Parse("APPEND needs the message as a literal"));
    }
    batch.run(s, events).await?;
    crate::metrics::storage(crate::metrics::StorageOp::Append, batch.commit()).await
}

/// One step of an APPEND, in the order of the command's text.
enum Event {
    /// A message starts (its data, parts and literal are not used).
    Begin(AppendMessage),
    /// Octets of the current message: its whole data, or a CATENATE TEXT part.
    Text {
        data: Vec<u8>,
        binary: bool,
        utf8: bool,
    },
    /// A CATENATE URL part.
    Url(Vec<u8>),
    /// The current message is complete.
    End,
}

/// What the streamed literal being received is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// Message octets (a message's data or a TEXT part), at `at`.
    Data {
        at: AppendAt,
        binary: bool,
        utf8: bool,
    },
    /// A CATENATE URL sent as a literal (held, at most a command line).
    Url,
}

impl Pending {
    fn at(self) -> AppendAt {
        match self {
            Pending::Data { at, .. } => at,
            Pending::Url => AppendAt::CatPart,
        }
    }
}

fn part_event(p: CatPart) -> Event {
    match p {
        CatPart::Text { data, binary, utf8 } => Event::Text { data, binary, utf8 },
        CatPart::Url(u) => Event::Url(u),
    }
}

/// Flattens parsed APPEND text into events. With `pending`, the last literal of the text is the
/// streamed one about to come: it is taken out of the events and described instead.
fn events(
    more_parts: Vec<CatPart>,
    message_done: bool,
    messages: Vec<AppendMessage>,
    pending: bool,
) -> (Vec<Event>, Option<Pending>) {
    let mut ev: Vec<Event> = more_parts.into_iter().map(part_event).collect();
    if message_done {
        ev.push(Event::End);
    }
    // Where the last literal sits.
    let mut last_at = AppendAt::CatPart;
    for mut m in messages {
        let data = std::mem::take(&mut m.data);
        let parts = m.catenate.take();
        let (binary, utf8) = (m.binary, m.utf8);
        ev.push(Event::Begin(m));
        match parts {
            Some(parts) => {
                last_at = AppendAt::CatPart;
                ev.extend(parts.into_iter().map(part_event));
            }
            None => {
                last_at = if utf8 {
                    AppendAt::Utf8Message
                } else {
                    AppendAt::Message
                };
                ev.push(Event::Text { data, binary, utf8 });
            }
        }
        ev.push(Event::End);
    }
    if !pending {
        return (ev, None);
    }
    if matches!(ev.last(), Some(Event::End)) {
        ev.pop();
    }
    let p = match ev.pop() {
        Some(Event::Text { binary, utf8, .. }) => {
            let at = match (last_at, utf8) {
                (AppendAt::CatPart, true) => AppendAt::Utf8CatPart,
                (at, _) => at,
            };
            Some(Pending::Data { at, binary, utf8 })
        }
        Some(Event::Url(_)) => Some(Pending::Url),
        _ => None,
    };
    (ev, p)
}

/// The message being built.
struct Current {
    sink: Box<dyn AppendStream>,
    flags: storage::SystemFlags,
    keywords: Vec<String>,
    date: Option<i64>,
    /// CATENATE parts so far.
    parts: usize,
}

/// The messages of one APPEND command (see the module documentation).
struct Batch {
    store: Arc<dyn UserStore>,
    name: String,
    max_size: u64,
    utf8_accept: bool,
    done: Vec<PendingAppend>,
    /// Octets of the messages in `done`.
    done_bytes: u64,
    cur: Option<Current>,
}

fn lost() -> ImapError {
    ImapError::Parse("APPEND message data out of place")
}

impl Batch {
    fn open(s: &Session, mb: &Mailbox) -> Result<Batch, ImapError> {
        let name = names::from_wire(mb, s.name_form())?;
        let store = s.store()?;
        Ok(Batch {
            store,
            name,
            max_size: s.shared.config().limits.max_message_size,
            utf8_accept: s.enabled.utf8_accept,
            done: Vec::new(),
            done_bytes: 0,
            cur: None,
        })
    }

    async fn run(&mut self, s: &mut Session, events: Vec<Event>) -> Result<(), ImapError> {
        for e in events {
            match e {
                Event::Begin(m) => self.begin(&m).await?,
                Event::Text { data, binary, utf8 } => {
                    self.part()?;
                    self.check_utf8(utf8)?;
                    self.announce(data.len() as u64, true)?;
                    self.write(&data, binary).await?;
                }
                Event::Url(url) => {
                    self.part()?;
                    self.url(s, &url).await?;
                }
                Event::End => self.end()?,
            }
        }
        Ok(())
    }

    fn check_utf8(&self, utf8: bool) -> Result<(), ImapError> {
        // RFC 6855 4: the UTF8 data item is valid only after ENABLE UTF8=ACCEPT.
        if utf8 && !self.utf8_accept {
            return Err(ImapError::NotEnabled("UTF8=ACCEPT"));
        }
        Ok(())
    }

    async fn begin(&mut self, m: &AppendMessage) -> Result<(), ImapError> {
        if self.cur.is_some() {
            return Err(lost());
        }
        if self.done.len() >= MAX_MULTIAPPEND_MESSAGES {
            return Err(ImapError::Limit("Too many messages in one APPEND"));
        }
        let (flags, keywords) = storage_flags(&m.flags)?;
        let sink = self
            .store
            .append_stream(&self.name)
            .await
            .map_err(ImapError::destination)?;
        self.cur = Some(Current {
            sink,
            flags,
            keywords,
            date: m.date.map(|d| d.unix_timestamp()),
            parts: 0,
        });
        Ok(())
    }

    /// Counts one more CATENATE part (or the message's data) of the current message.
    fn part(&mut self) -> Result<(), ImapError> {
        let cur = self.cur.as_mut().ok_or_else(lost)?;
        cur.parts += 1;
        if cur.parts > MAX_CATENATE_PARTS {
            return Err(ImapError::Parse("too many CATENATE parts"));
        }
        Ok(())
    }

    /// `n` more octets are announced for the current message: refused (before `+`) when the
    /// message would pass the size limit (`[TOOBIG]`) or the batch the quota (`[OVERQUOTA]`).
    fn announce(&mut self, n: u64, synchronizing: bool) -> Result<(), ImapError> {
        let cur = self.cur.as_mut().ok_or_else(lost)?;
        let total = cur.sink.len().saturating_add(n);
        if total > self.max_size {
            return Err(ImapError::LiteralTooBig { synchronizing });
        }
        cur.sink
            .reserve(self.done_bytes.saturating_add(total))
            .map_err(ImapError::destination)
    }

    async fn write(&mut self, data: &[u8], binary: bool) -> Result<(), ImapError> {
        // RFC 3516 4.4: NUL octets only in a literal8.
        if !binary && memchr::memchr(0, data).is_some() {
            return Err(ImapError::Parse(
                "NUL octets are allowed only in a literal8 (~{n})",
            ));
        }
        let cur = self.cur.as_mut().ok_or_else(lost)?;
        if cur.sink.len().saturating_add(data.len() as u64) > self.max_size {
            return Err(ImapError::LiteralTooBig {
                synchronizing: true,
            });
        }
        cur.sink.write(data).await.map_err(ImapError::destination)
    }

    /// Copies the part a CATENATE URL names into the current message, chunk by chunk.
    async fn url(&mut self, s: &mut Session, url: &[u8]) -> Result<(), ImapError> {
        let mut src = catenate::resolve(s, &self.store, url).await?;
        // RFC 4469 4.2: a result over the size limit is TOOBIG.
        self.announce(src.copy.len, true)?;
        while let Some(chunk) = src.copy.next().await? {
            let res = self.write(&chunk, true).await;
            src.copy.recycle(chunk);
            res?;
        }
        src.copy.finish(&mut src.scratch);
        Ok(())
    }

    fn end(&mut self) -> Result<(), ImapError> {
        let cur = self.cur.take().ok_or_else(lost)?;
        if cur.sink.is_empty() {
            // As Dovecot: an empty message is almost certainly a client bug.
            return Err(ImapError::Cannot("Can't save a zero byte message"));
        }
        self.done_bytes = self.done_bytes.saturating_add(cur.sink.len());
        self.done.push(PendingAppend {
            stream: cur.sink,
            flags: cur.flags,
            keywords: cur.keywords,
            internal_date: cur.date,
        });
        Ok(())
    }

    async fn commit(mut self) -> Result<Reply, ImapError> {
        if self.cur.is_some() {
            return Err(lost());
        }
        if self.done.len() == 1
            && let Some(p) = self.done.pop()
        {
            let res = p
                .stream
                .commit(p.flags, p.keywords, p.internal_date)
                .await
                .map_err(ImapError::destination)?;
            return Ok(appended(res.uidvalidity, vec![res.uid]));
        }
        if self.done.is_empty() {
            return Err(ImapError::Parse("APPEND needs a message"));
        }
        let res = self
            .store
            .commit_many(std::mem::take(&mut self.done))
            .await
            .map_err(ImapError::destination)?;
        Ok(appended(res.uidvalidity, res.uids))
    }
}

fn appended(uidvalidity: u32, uids: Vec<u32>) -> Reply {
    Reply::Ok(
        Some(Code::AppendUid(uidvalidity, uids)),
        "Append completed.".into(),
    )
}

/// Refuses the streamed literal the receiver is in (if any) and answers `e`.
fn refuse(s: &mut Session, rest: Option<StreamRest>, e: ImapError) -> Result<Reply, ImapError> {
    if let Some(StreamRest::Next { synchronizing, .. }) = rest {
        s.receiver.refuse_literal(synchronizing);
    }
    Err(e)
}

async fn streamed(
    s: &mut Session,
    mb: &Mailbox,
    messages: Vec<AppendMessage>,
    literal: LiteralIn,
) -> Result<Reply, ImapError> {
    let first = Some(StreamRest::Next {
        header_at: 0,
        literal_len: literal.len,
        synchronizing: literal.synchronizing,
    });
    // Part of the budget stays free for LMTP: clients cannot hold up the MTA's deliveries.
    let limit = inflight::client_limit(s.shared.config().limits.max_inflight_message_bytes);
    let permit = inflight::global()
        .acquire(
            INCOMING_MESSAGE_CHUNK as u64,
            limit,
            Duration::from_millis(INFLIGHT_WAIT_MS),
        )
        .await;
    let Some(permit) = permit else {
        return refuse(s, first, ImapError::InFlightLimit);
    };
    let mut batch = match Batch::open(s, mb) {
        Ok(b) => b,
        Err(e) => return refuse(s, first, e),
    };
    let (evs, pending) = events(Vec::new(), false, messages, true);
    let Some(mut pending) = pending else {
        return refuse(s, first, lost());
    };
    if let Err(e) = batch.run(s, evs).await {
        return refuse(s, first, e);
    }
    let mut literal = literal;
    let reply = loop {
        let rest = Some(StreamRest::Next {
            header_at: 0,
            literal_len: literal.len,
            synchronizing: literal.synchronizing,
        });
        let accepted = match pending {
            Pending::Data { at, utf8, .. } => batch
                .part()
                .and_then(|()| batch.check_utf8(utf8))
                .and_then(|()| {
                    if literal.len == 0 && matches!(at, AppendAt::Message | AppendAt::Utf8Message) {
                        // As Dovecot: an empty message is almost certainly a client bug.
                        return Err(ImapError::Cannot("Can't save a zero byte message"));
                    }
                    batch.announce(literal.len, literal.synchronizing)
                }),
            Pending::Url => batch.part().and_then(|()| {
                if literal.len > s.shared.config().limits.max_command_line as u64 {
                    return Err(ImapError::LiteralTooBig {
                        synchronizing: literal.synchronizing,
                    });
                }
                Ok(())
            }),
        };
        if let Err(e) = accepted {
            break refuse(s, rest, e);
        }
        // RFC 3501 7.5: the literal was accepted; ask for its data.
        if literal.synchronizing && s.conn.send(b"+ Ready for literal data\r\n").await.is_err() {
            break Ok(Reply::Close);
        }
        let mut url = Vec::new();
        let (failure, rest, text) = match receive(s, &mut batch, pending, &mut url).await {
            Received::Gone => break Ok(Reply::Close),
            Received::Done {
                failure,
                rest,
                text,
            } => (failure, rest, text),
        };
        if let Some(e) = failure {
            break refuse(s, Some(rest), e);
        }
        if pending == Pending::Url
            && let Err(e) = batch.url(s, &url).await
        {
            break refuse(s, Some(rest), e);
        }
        let header_at = match rest {
            StreamRest::Next { header_at, .. } => Some(header_at),
            StreamRest::End | StreamRest::Junk => None,
        };
        let tail = match parse_append_tail(pending.at(), &text, header_at) {
            Ok(t) => t,
            Err(e) => break refuse(s, Some(rest), ImapError::from(&e)),
        };
        let (evs, next) = events(
            tail.more_parts,
            tail.message_done,
            tail.messages,
            header_at.is_some(),
        );
        if let Err(e) = batch.run(s, evs).await {
            break refuse(s, Some(rest), e);
        }
        match (rest, next) {
            (
                StreamRest::Next {
                    literal_len,
                    synchronizing,
                    ..
                },
                Some(next),
            ) => {
                pending = next;
                literal = LiteralIn {
                    len: literal_len,
                    synchronizing,
                };
            }
            (StreamRest::Next { .. }, None) => break refuse(s, Some(rest), lost()),
            (StreamRest::End | StreamRest::Junk, _) => {
                break crate::metrics::storage(crate::metrics::StorageOp::Append, batch.commit())
                    .await;
            }
        }
    };
    drop(permit);
    reply
}

/// How receiving a literal ended.
enum Received {
    /// The whole literal arrived, and the text after it up to the next literal header or the
    /// command's end; `failure` says whether its data could be kept.
    Done {
        failure: Option<ImapError>,
        rest: StreamRest,
        text: Vec<u8>,
    },
    /// The client went away (or stayed silent past the idle timeout).
    Gone,
}

/// Moves the literal's data into the batch's current message (or into `url`) as it arrives,
/// then takes the text after it. After a failure the rest of the literal is read and dropped.
async fn receive(
    s: &mut Session,
    batch: &mut Batch,
    pending: Pending,
    url: &mut Vec<u8>,
) -> Received {
    let cfg = s.shared.config();
    let idle = Duration::from_secs(cfg.timeouts.imap_idle_secs);
    let max_buffer = 2 * cfg.limits.max_command_line + INCOMING_MESSAGE_CHUNK;
    drop(cfg);
    let mut failure: Option<ImapError> = None;
    loop {
        let want = match s.receiver.poll(s.conn.buffered()) {
            Framed::LiteralData { available, left } => {
                // Gather a whole chunk before writing: one storage write per chunk, not per read.
                if available < INCOMING_MESSAGE_CHUNK && left > 0 && failure.is_none() {
                    INCOMING_MESSAGE_CHUNK
                } else {
                    if failure.is_none() {
                        let data = s.conn.buffered().get(..available).unwrap_or_default();
                        let res = match pending {
                            Pending::Data { binary, .. } => batch.write(data, binary).await,
                            Pending::Url => {
                                url.extend_from_slice(data);
                                Ok(())
                            }
                        };
                        if let Err(e) = res {
                            failure = Some(e);
                            // Nothing of this command is stored now.
                            batch.cur = None;
                            batch.done.clear();
                        }
                    }
                    s.receiver.take_literal(available);
                    s.conn.consume(available);
                    continue;
                }
            }
            Framed::StreamEnd { consumed, rest } => {
                let text = s
                    .conn
                    .buffered()
                    .get(..consumed)
                    .unwrap_or_default()
                    .to_vec();
                s.conn.consume(consumed);
                return Received::Done {
                    failure,
                    rest,
                    text,
                };
            }
            Framed::Incomplete => max_buffer,
            other => {
                // The receiver is inside the literal: nothing else can come.
                tracing::warn!(framed = ?other, "unexpected frame inside an APPEND literal");
                return Received::Gone;
            }
        };
        // `mailcove kick` ends an upload too: this is where the command reads from the client.
        // Nothing of the message is stored (the batch is dropped uncommitted).
        let kick = s.conn.kick_token();
        let read = tokio::select! {
            _ = kick.cancelled() => {
                s.untagged(crate::imap::session::KICKED_BYE);
                tracing::info!("disconnected by administrator during APPEND");
                return Received::Gone;
            }
            r = tokio::time::timeout(idle, s.conn.fill(want)) => r,
        };
        match read {
            Ok(Ok(n)) if n > 0 => {}
            Ok(Ok(_)) | Ok(Err(_)) => {
                tracing::debug!("client gone inside an APPEND literal");
                return Received::Gone;
            }
            Err(_) => {
                s.untagged("BYE Disconnected for inactivity.");
                s.conn.set_end(crate::server::sessions::EndReason::Timeout);
                return Received::Gone;
            }
        }
    }
}
