//! Writing one body-section item: resolving the section, applying `<origin.count>`, and sending
//! the octets as a literal whose announced length is exactly what follows.
//!
//! Ranges of the stored message are streamed with [`Pump`]: chunks of [`MESSAGE_STREAM_CHUNK`]
//! are read and converted LF→CRLF (NUL→0x80, since IMAP literals may not carry NUL), the next
//! chunk while the current one is written when storage has to wait for it, so memory stays at three chunk
//! buffers however large the body is, and a client that stops reading blocks the write until the
//! connection's write timeout. A section small enough to join the queued output (a small message,
//! the end of a big one) is queued with the rest of the response instead of written on its own.
//! HEADER.FIELDS[.NOT] results are small and built in memory.
//!
//! Once a literal's length is on the wire the octets must follow; if the message then ends early or
//! a read fails, the stream cannot be resynchronised and the caller closes the connection
//! (Dovecot does the same when a message is shorter than its recorded size).

use super::plan::SectionItem;
use crate::imap::proto::encode::FetchResponse;
use crate::limits::{FETCH_FLUSH_BYTES, MESSAGE_STREAM_CHUNK};
use crate::mime::{ByteRange, LfToCrlf, MessageInfo, SectionPlan, header_fields, partial_window};
use crate::server::conn::Conn;
use crate::storage::stream::{Convert, Piece, Pump, StreamBuffers};
use crate::storage::{Message, StorageError};

/// IMAP literals may not hold NUL (RFC 3501 `CHAR8`); Dovecot sends 0x80 instead, which keeps
/// every size unchanged.
const NUL_REPLACEMENT: u8 = 0x80;

/// Buffers reused for every section of one FETCH command.
pub struct Scratch {
    bufs: StreamBuffers,
}

impl Scratch {
    /// Empty buffers; they grow to one read chunk and two converted ones.
    pub fn new() -> Self {
        Scratch {
            bufs: StreamBuffers::new(),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a section could not be written.
#[derive(Debug)]
pub enum SectionError {
    /// Nothing of this item was written; the command can still fail cleanly.
    Before(StorageError),
    /// The literal was announced, so the connection must be closed.
    Broken(String),
}

/// Sends one chunk of a literal being streamed: into the output buffer while it stays under
/// [`FETCH_FLUSH_BYTES`], else straight to the client (after which the response is `committed`:
/// it can no longer be withdrawn).
pub(super) async fn send_chunk(
    conn: &mut Conn,
    chunk: &[u8],
    committed: &mut bool,
) -> std::io::Result<()> {
    if conn.out().len() + chunk.len() <= FETCH_FLUSH_BYTES {
        conn.out().extend_from_slice(chunk);
        return Ok(());
    }
    *committed = true;
    conn.send_direct(chunk).await
}

/// Where the bytes of a section item are: the whole message with the storage's virtual size
/// (exactly RFC822.SIZE, no parsing needed), else the section resolved in the parsed structure.
fn section_plan(
    item: &SectionItem,
    info: Option<&MessageInfo>,
    msg: &Message,
) -> Result<SectionPlan, StorageError> {
    if item.is_whole_message() {
        return Ok(SectionPlan::Range {
            range: ByteRange {
                start: 0,
                end: msg.phys_size,
            },
            virtual_len: msg.virt_size,
        });
    }
    match info {
        Some(info) => Ok(item.with_spec(|spec| info.resolve_section(spec))),
        None => Err(StorageError::Corrupt(
            "section requested without a message structure".into(),
        )),
    }
}

/// Writes one section item of a message into the response `f`. `committed` becomes true once
/// bytes of the current response have been sent (after that the response cannot be withdrawn).
pub async fn write_section(
    conn: &mut Conn,
    f: &mut FetchResponse,
    item: &SectionItem,
    info: Option<&MessageInfo>,
    msg: &mut Message,
    scratch: &mut Scratch,
    committed: &mut bool,
) -> Result<(), SectionError> {
    let plan = section_plan(item, info, msg).map_err(SectionError::Before)?;
    match plan {
        SectionPlan::Empty => {
            // A part that does not exist is an empty string, as Dovecot answers.
            f.section_value(conn.out(), &item.attr, b"");
            Ok(())
        }
        SectionPlan::Range { range, virtual_len } => {
            if range.end > msg.phys_size {
                return Err(SectionError::Before(StorageError::Corrupt(format!(
                    "cached structure of UID {} points past the end of the message",
                    msg.uid
                ))));
            }
            let (start, len) = window(item, virtual_len);
            if len == 0 {
                f.section_value(conn.out(), &item.attr, b"");
                return Ok(());
            }
            f.section_prefix(conn.out(), &item.attr, len, false);
            stream_range(conn, msg, range, start, len, scratch, committed).await
        }
        SectionPlan::HeaderFields { header, not } => {
            if header.end > msg.phys_size {
                return Err(SectionError::Before(StorageError::Corrupt(format!(
                    "cached structure of UID {} points past the end of the message",
                    msg.uid
                ))));
            }
            let raw = read_range(msg, header)
                .await
                .map_err(SectionError::Before)?;
            let fields = header_fields(&raw, &item.field_names(), not);
            let total = fields.len() as u64;
            let (start, len) = window(item, total);
            let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            LfToCrlf::with_window(start, len)
                .replace_nul(NUL_REPLACEMENT)
                .feed(&fields, &mut bytes);
            if bytes.is_empty() {
                f.section_value(conn.out(), &item.attr, b"");
            } else {
                f.section_prefix(conn.out(), &item.attr, bytes.len() as u64, false);
                conn.out().extend_from_slice(&bytes);
            }
            Ok(())
        }
    }
}

/// `(start, len)` in virtual space after `<origin.count>` (RFC 3501 6.4.5: an origin past the end
/// gives an empty string, a count past the end gives the rest).
fn window(item: &SectionItem, total: u64) -> (u64, u64) {
    match item.partial {
        Some((origin, count)) => partial_window(total, origin, count),
        None => (0, total),
    }
}

/// Reads a physical range into memory (a header block; the caller checked it lies in the
/// message, whose size the structure parser already bounded): from the head read along with the
/// open, or from storage, at once when it can answer without waiting.
async fn read_range(msg: &Message, range: ByteRange) -> Result<Vec<u8>, StorageError> {
    let len = usize::try_from(range.len())
        .map_err(|_| StorageError::Corrupt("header range too large".into()))?;
    msg.read(range.start, len).await
}

impl Convert for LfToCrlf {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
        LfToCrlf::feed(self, chunk, out);
        self.is_done()
    }

    fn pass_through(&mut self, chunk: &[u8]) -> bool {
        LfToCrlf::pass_through(self, chunk)
    }
}

/// Streams virtual bytes `[start, start + len)` of a physical range after the literal prefix
/// already queued in `conn`.
async fn stream_range(
    conn: &mut Conn,
    msg: &mut Message,
    range: ByteRange,
    start: u64,
    len: u64,
    scratch: &mut Scratch,
    committed: &mut bool,
) -> Result<(), SectionError> {
    let uid = msg.uid;
    let broken = |what: String| SectionError::Broken(format!("UID {uid}: {what}"));
    let conv = LfToCrlf::with_window(start, len).replace_nul(NUL_REPLACEMENT);
    let head = std::mem::take(&mut msg.head);
    let mut pump = Pump::start(
        msg.content.clone(),
        head,
        (range.start, range.end),
        MESSAGE_STREAM_CHUNK,
        conv,
        &mut scratch.bufs,
    );
    if conn.can_send_file() {
        pump.allow_file();
    }
    let mut sent = 0u64;
    loop {
        let piece = match pump.next_piece().await {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(e) => return Err(broken(format!("read failed: {e}"))),
        };
        match piece {
            Piece::Bytes(chunk) => {
                sent += chunk.len() as u64;
                send_chunk(conn, &chunk, committed)
                    .await
                    .map_err(|e| broken(format!("client write failed: {e}")))?;
                pump.recycle(chunk);
            }
            Piece::File { file, offset, len } => {
                sent += len as u64;
                *committed = true;
                conn.send_file(&file, offset, len)
                    .await
                    .map_err(|e| broken(format!("client write failed: {e}")))?;
            }
        }
    }
    pump.finish(&mut scratch.bufs);
    if sent != len {
        return Err(broken(format!(
            "storage gave {sent} octets where {len} were announced"
        )));
    }
    Ok(())
}

/// The octets FETCH `BODY[section]<partial>` sends for `item`, read chunk by chunk to be copied
/// into a new message (CATENATE URL parts, RFC 4469 3: "as if the literal returned in a FETCH
/// BODY response were put in place"). The same section resolution and LF→CRLF conversion as
/// [`write_section`], except that NUL octets are kept as stored: they are copied, not sent.
pub struct SectionCopy {
    pump: Option<Pump<LfToCrlf>>,
    small: Option<Vec<u8>>,
    /// How many octets it gives in all.
    pub len: u64,
    /// False when the section names a part the message does not have (FETCH answers it as an
    /// empty string; CATENATE refuses it, RFC 4469 4.1).
    pub exists: bool,
    given: u64,
}

impl SectionCopy {
    /// Resolves `item` in `msg` (`info` is its parsed structure, needed unless the item is the
    /// whole message) and starts reading.
    pub async fn open(
        item: &SectionItem,
        info: Option<&MessageInfo>,
        msg: &mut Message,
        scratch: &mut Scratch,
    ) -> Result<SectionCopy, StorageError> {
        let plan = section_plan(item, info, msg)?;
        let small = |bytes: Vec<u8>| SectionCopy {
            pump: None,
            len: bytes.len() as u64,
            small: Some(bytes),
            exists: true,
            given: 0,
        };
        match plan {
            SectionPlan::Empty => Ok(SectionCopy {
                exists: false,
                ..small(Vec::new())
            }),
            SectionPlan::Range { range, virtual_len } => {
                if range.end > msg.phys_size {
                    return Err(StorageError::Corrupt(format!(
                        "cached structure of UID {} points past the end of the message",
                        msg.uid
                    )));
                }
                let (start, len) = window(item, virtual_len);
                if len == 0 {
                    return Ok(small(Vec::new()));
                }
                let head = std::mem::take(&mut msg.head);
                let pump = Pump::start(
                    msg.content.clone(),
                    head,
                    (range.start, range.end),
                    MESSAGE_STREAM_CHUNK,
                    LfToCrlf::with_window(start, len),
                    &mut scratch.bufs,
                );
                Ok(SectionCopy {
                    pump: Some(pump),
                    small: None,
                    len,
                    exists: true,
                    given: 0,
                })
            }
            SectionPlan::HeaderFields { header, not } => {
                if header.end > msg.phys_size {
                    return Err(StorageError::Corrupt(format!(
                        "cached structure of UID {} points past the end of the message",
                        msg.uid
                    )));
                }
                let raw = read_range(msg, header).await?;
                let fields = header_fields(&raw, &item.field_names(), not);
                let (start, len) = window(item, fields.len() as u64);
                let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                LfToCrlf::with_window(start, len).feed(&fields, &mut bytes);
                Ok(small(bytes))
            }
        }
    }

    /// The next chunk; `None` at the end. A message shorter than its recorded size is an error.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, StorageError> {
        let chunk = match (&mut self.pump, self.small.take()) {
            (_, Some(bytes)) => Some(bytes).filter(|b| !b.is_empty()),
            (Some(pump), None) => pump.next().await?,
            (None, None) => None,
        };
        match chunk {
            Some(c) => {
                self.given += c.len() as u64;
                Ok(Some(c))
            }
            None if self.given != self.len => Err(StorageError::Corrupt(format!(
                "storage gave {} octets where {} were expected",
                self.given, self.len
            ))),
            None => Ok(None),
        }
    }

    /// Gives a chunk's buffer back for the next read.
    pub fn recycle(&mut self, chunk: Vec<u8>) {
        if let Some(p) = &mut self.pump {
            p.recycle(chunk);
        }
    }

    /// Returns the buffers to `scratch`.
    pub fn finish(self, scratch: &mut Scratch) {
        if let Some(p) = self.pump {
            p.finish(&mut scratch.bufs);
        }
    }
}
