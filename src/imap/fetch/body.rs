//! Writing one body-section item: resolving the section, applying `<origin.count>`, and sending
//! the octets as a literal whose announced length is exactly what follows.
//!
//! Ranges of the stored file are streamed: read in chunks, converted LF→CRLF (NUL→0x80, since
//! IMAP literals may not carry NUL) and written with [`Conn::send_direct`] whenever the converted
//! bytes pass [`FETCH_FLUSH_BYTES`], so memory stays at two chunk buffers however large the body
//! is, and a client that stops reading blocks the write until the connection's write timeout.
//! HEADER.FIELDS[.NOT] results are small and built in memory.
//!
//! Once a literal's length is on the wire the octets must follow; if the file then ends early or
//! a read fails, the stream cannot be resynchronised and the caller closes the connection
//! (Dovecot does the same when a message is shorter than its recorded size).

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::plan::SectionItem;
use crate::imap::proto::encode::FetchResponse;
use crate::limits::{FETCH_FLUSH_BYTES, FETCH_READ_CHUNK};
use crate::mime::{ByteRange, LfToCrlf, MessageInfo, SectionPlan, header_fields, partial_window};
use crate::server::conn::Conn;
use crate::storage::{MessageFile, StorageError};

/// IMAP literals may not hold NUL (RFC 3501 `CHAR8`); Dovecot sends 0x80 instead, which keeps
/// every size unchanged.
const NUL_REPLACEMENT: u8 = 0x80;

/// Buffers reused for every section of one FETCH command.
pub struct Scratch {
    read: Vec<u8>,
    conv: Vec<u8>,
}

impl Scratch {
    /// Empty buffers; they grow to one read chunk and about twice that for converted output.
    pub fn new() -> Self {
        Scratch {
            read: Vec::new(),
            conv: Vec::new(),
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

/// Writes one section item of a message into the response `f`. `committed` becomes true once
/// bytes of the current response have been sent (after that the response cannot be withdrawn).
pub async fn write_section(
    conn: &mut Conn,
    f: &mut FetchResponse,
    item: &SectionItem,
    info: Option<&MessageInfo>,
    file: &mut MessageFile,
    scratch: &mut Scratch,
    committed: &mut bool,
) -> Result<(), SectionError> {
    let plan = if item.is_whole_message() {
        // The whole file with the storage's virtual size: exactly RFC822.SIZE, no parsing needed.
        SectionPlan::Range {
            range: ByteRange {
                start: 0,
                end: file.phys_size,
            },
            virtual_len: file.virt_size,
        }
    } else {
        match info {
            Some(info) => item.with_spec(|spec| info.resolve_section(spec)),
            None => {
                return Err(SectionError::Before(StorageError::Corrupt(
                    "section requested without a message structure".into(),
                )));
            }
        }
    };
    match plan {
        SectionPlan::Empty => {
            // A part that does not exist is an empty string, as Dovecot answers.
            f.section_value(conn.out(), &item.attr, b"");
            Ok(())
        }
        SectionPlan::Range { range, virtual_len } => {
            if range.end > file.phys_size {
                return Err(SectionError::Before(StorageError::Corrupt(format!(
                    "cached structure of UID {} points past the end of its file",
                    file.uid
                ))));
            }
            let (start, len) = window(item, virtual_len);
            if len == 0 {
                f.section_value(conn.out(), &item.attr, b"");
                return Ok(());
            }
            f.section_prefix(conn.out(), &item.attr, len, false);
            stream_range(conn, file, range, start, len, scratch, committed).await
        }
        SectionPlan::HeaderFields { header, not } => {
            if header.end > file.phys_size {
                return Err(SectionError::Before(StorageError::Corrupt(format!(
                    "cached structure of UID {} points past the end of its file",
                    file.uid
                ))));
            }
            let raw = read_range(file, header)
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

/// Reads a physical range into memory (a header block; the caller checked it lies in the file,
/// whose size the structure parser already bounded).
async fn read_range(file: &mut MessageFile, range: ByteRange) -> Result<Vec<u8>, StorageError> {
    file.file
        .seek(std::io::SeekFrom::Start(range.start))
        .await
        .map_err(|e| StorageError::io("seek message", e))?;
    let mut out = Vec::with_capacity(usize::try_from(range.len()).unwrap_or(0));
    (&mut file.file)
        .take(range.len())
        .read_to_end(&mut out)
        .await
        .map_err(|e| StorageError::io("read message", e))?;
    Ok(out)
}

/// Streams virtual bytes `[start, start + len)` of a physical range after the literal prefix
/// already queued in `conn`.
async fn stream_range(
    conn: &mut Conn,
    file: &mut MessageFile,
    range: ByteRange,
    start: u64,
    len: u64,
    scratch: &mut Scratch,
    committed: &mut bool,
) -> Result<(), SectionError> {
    let uid = file.uid;
    let broken = |what: String| SectionError::Broken(format!("UID {uid}: {what}"));
    file.file
        .seek(std::io::SeekFrom::Start(range.start))
        .await
        .map_err(|e| broken(format!("seek failed: {e}")))?;
    scratch.read.resize(FETCH_READ_CHUNK, 0);
    scratch.conv.clear();
    let mut conv = LfToCrlf::with_window(start, len).replace_nul(NUL_REPLACEMENT);
    let mut left = range.len();
    let mut sent = 0u64;
    while left > 0 && !conv.is_done() {
        let want = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(scratch.read.len());
        let buf = scratch.read.get_mut(..want).unwrap_or_default();
        let n = file
            .file
            .read(buf)
            .await
            .map_err(|e| broken(format!("read failed: {e}")))?;
        if n == 0 {
            break;
        }
        left -= n as u64;
        conv.feed(scratch.read.get(..n).unwrap_or_default(), &mut scratch.conv);
        if scratch.conv.len() >= FETCH_FLUSH_BYTES {
            *committed = true;
            sent += scratch.conv.len() as u64;
            conn.send_direct(&scratch.conv)
                .await
                .map_err(|e| broken(format!("client write failed: {e}")))?;
            scratch.conv.clear();
        }
    }
    sent += scratch.conv.len() as u64;
    if sent != len {
        return Err(broken(format!(
            "message file gave {sent} octets where {len} were announced"
        )));
    }
    conn.out().extend_from_slice(&scratch.conv);
    scratch.conv.clear();
    Ok(())
}
