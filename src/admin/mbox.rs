//! `mailcove import|export -u USER --mbox FILE [MAILBOX]`: a mailbox from and to an mbox file.
//!
//! # The format: mboxrd
//!
//! Each message starts with a `From_` line, `From <sender> <asctime date>`
//! (`From MAILER-DAEMON Thu Jan  1 00:00:00 1970`), and is followed by one empty line. Inside a
//! message, a line that reads `From ` after any number of `>` gets one more `>` on export and
//! loses one on import (the mboxrd rule), so `From `, `>From ` and `>>From ` lines all come back
//! as they were; any line of the file that starts with `From ` starts a message.
//!
//! * INTERNALDATE is the date of the `From_` line, in UTC as RFC 4155 says (see
//!   [`from_line_date`] for the zones older writers add); export writes UTC. A `From_` line
//!   without a readable date imports with the current time.
//! * Flags travel in the header fields mutt and Dovecot use: `Status:` (`R` = `\Seen`; `O`,
//!   "old", means no more than "not new"), `X-Status:` (`A` = `\Answered`, `F` = `\Flagged`,
//!   `T` = `\Draft`, `D` = `\Deleted`) and `X-Keywords:` (keywords separated by spaces or
//!   commas). Export adds them as the last fields of the header; import takes them out of the
//!   header wherever they are and sets the flags, as Dovecot's mbox storage hides them. Other
//!   fields (`X-UID`, `X-IMAPbase`, `Content-Length`) stay part of the message.
//! * The empty line after a message is the separator, not part of the message. A message that
//!   does not end in a line feed gets one on export (and keeps it on import): every other
//!   message, including an empty one, comes back byte for byte, so `import(export(x))` holds
//!   the same messages (CRLF or LF line ends alike).
//! * A message without a header/body separator has nowhere to carry its flags: export writes it
//!   without them.
//!
//! # Bounded memory
//!
//! Import reads the file in pieces of at most [`MBOX_PIECE_BYTES`] (a line, or a part of a
//! longer line) and streams each message into the storage through
//! [`crate::storage::UserStore::append_stream`], in writes of about [`MBOX_CHUNK_BYTES`]; only a
//! message's header is gathered whole (at most [`MAX_HEADER_BYTES`], to find the flag fields).
//! Each message is committed, durably, before the next is read: an import that fails halfway
//! (over quota, say) has stored the messages before the failure, and says how many. Export reads
//! each message in ranges of [`MBOX_CHUNK_BYTES`]. Neither holds a whole message or mailbox.
//!
//! The file is opened with the rights of whoever runs the command, before it becomes the mail
//! user; export creates it (mode 0600) and refuses to overwrite an existing file. With `-A`,
//! `%u` in the file name stands for the user name (export requires it: one file per user).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::auth::UserInfo;
use crate::imap::proto::date::{Date, month_from_name};
use crate::imap::proto::types::is_atom_char;
use crate::limits::{MAX_HEADER_BYTES, MBOX_CHUNK_BYTES, MBOX_PIECE_BYTES};
use crate::storage::{AppendStream, OpenOptions, StorageError, SystemFlags, UserStore};

use super::output::{Cell, uid_set};
use super::{Target, start};

/// `mailcove import` and `mailcove export` arguments.
#[derive(Debug, clap::Args)]
pub struct MboxArgs {
    #[command(flatten)]
    target: Target,
    /// The mbox file; with -A, `%u` in it stands for the user name.
    #[arg(long)]
    mbox: PathBuf,
    /// Mailbox; INBOX when none is named (import creates it when missing).
    mailbox: Option<String>,
}

/// How export opens the mailbox: read-only, taking nothing from the user's next session.
const EXPORT_OPEN: OpenOptions = OpenOptions {
    read_only: true,
    claim_recent: false,
    watch: false,
};

const FROM: &[u8] = b"From ";
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// 1 January 1970 was a Thursday.
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Runs `mailcove import`.
pub fn import(args: MboxArgs) -> Result<(), String> {
    let mailbox = args.mailbox.unwrap_or_else(|| "INBOX".into());
    let template = args.mbox;
    let (admin, files) = start(&args.target, |users| open_each(&template, users, false))?;
    let mut files: Vec<Option<(PathBuf, File)>> = files.into_iter().map(Some).collect();
    admin.run_and_print(&["mailbox", "imported", "uids"], async |i, _, store| {
        let (_, file) = files
            .get_mut(i)
            .and_then(Option::take)
            .ok_or("the mbox file is not open")?;
        match store.create(&mailbox, None).await {
            Ok(()) | Err(StorageError::AlreadyExists) => {}
            Err(e) => return Err(format!("{mailbox}: {e}")),
        }
        let reader = BufReader::with_capacity(MBOX_PIECE_BYTES, file);
        let uids = import_into(&*store, &mailbox, reader).await?;
        Ok(vec![vec![
            Cell::text(mailbox.clone()),
            Cell::Int(uids.len() as u64),
            Cell::text(uid_set(&uids)),
        ]])
    })
}

/// Runs `mailcove export`.
pub fn export(args: MboxArgs) -> Result<(), String> {
    let mailbox = args.mailbox.unwrap_or_else(|| "INBOX".into());
    let template = args.mbox;
    let (admin, files) = start(&args.target, |users| open_each(&template, users, true))?;
    let mut files: Vec<Option<(PathBuf, File)>> = files.into_iter().map(Some).collect();
    admin.run_and_print(&["mailbox", "exported", "file"], async |i, _, store| {
        let (path, file) = files
            .get_mut(i)
            .and_then(Option::take)
            .ok_or("the mbox file is not open")?;
        let n = export_from(&*store, &mailbox, file)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(vec![vec![
            Cell::text(mailbox.clone()),
            Cell::Int(n),
            Cell::text(path.display().to_string()),
        ]])
    })
}

/// Opens the file of every user (`%u` replaced by the name): to read, or created to write.
fn open_each(
    template: &Path,
    users: &[UserInfo],
    create: bool,
) -> Result<Vec<(PathBuf, File)>, String> {
    let text = template.to_string_lossy();
    let per_user = text.contains("%u");
    if create && users.len() > 1 && !per_user {
        return Err("with -A, --mbox must contain %u: export writes one file per user".into());
    }
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        let path = if per_user {
            PathBuf::from(text.replace("%u", &u.name))
        } else {
            template.to_path_buf()
        };
        let file = if create {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
        } else {
            File::open(&path)
        }
        .map_err(|e| format!("{}: {e}", path.display()))?;
        out.push((path, file));
    }
    Ok(out)
}

// ---- import ----------------------------------------------------------------------------------

/// Reads the next piece of the file into `piece`: through the next line feed, or
/// [`MBOX_PIECE_BYTES`] of a longer line. Empty at the end of the file.
fn next_piece(r: &mut impl BufRead, piece: &mut Vec<u8>) -> std::io::Result<()> {
    piece.clear();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        let room = MBOX_PIECE_BYTES.saturating_sub(piece.len());
        let window = buf.get(..buf.len().min(room)).unwrap_or_default();
        if let Some(i) = memchr::memchr(b'\n', window) {
            piece.extend_from_slice(window.get(..=i).unwrap_or_default());
            r.consume(i + 1);
            return Ok(());
        }
        let n = window.len();
        piece.extend_from_slice(window);
        r.consume(n);
        if piece.len() >= MBOX_PIECE_BYTES {
            return Ok(());
        }
    }
}

/// A line of `>`s then `From ` (mboxrd quoting): one `>` comes off on import.
fn is_quoted_from(line: &[u8]) -> bool {
    let gts = line.iter().take_while(|&&b| b == b'>').count();
    gts > 0 && line.get(gts..).is_some_and(|rest| rest.starts_with(FROM))
}

/// Imports every message of the mbox `reader` into `mailbox`; returns their UIDs in file order.
async fn import_into(
    store: &dyn UserStore,
    mailbox: &str,
    mut reader: impl BufRead,
) -> Result<Vec<u32>, String> {
    let mut uids = Vec::new();
    let failed = |uids: &Vec<u32>, e: String| {
        format!(
            "{mailbox}: {e} (after {} message(s) imported: {})",
            uids.len(),
            uid_set(uids)
        )
    };
    let mut piece = Vec::with_capacity(MBOX_PIECE_BYTES);
    let mut at_line_start = true;
    // The rest of a From_ line longer than a piece is skipped.
    let mut in_from_line = false;
    let mut current: Option<Incoming> = None;
    loop {
        next_piece(&mut reader, &mut piece).map_err(|e| format!("reading the mbox file: {e}"))?;
        if piece.is_empty() {
            break;
        }
        let line_start = at_line_start;
        at_line_start = piece.last() == Some(&b'\n');
        if line_start && piece.starts_with(FROM) {
            if let Some(m) = current.take() {
                uids.push(m.finish().await.map_err(|e| failed(&uids, e))?);
            }
            let stream = store
                .append_stream(mailbox)
                .await
                .map_err(|e| failed(&uids, e.to_string()))?;
            current = Some(Incoming::new(stream, from_line_date(&piece)));
            in_from_line = !at_line_start;
            continue;
        }
        if in_from_line {
            in_from_line = !at_line_start;
            continue;
        }
        let Some(m) = current.as_mut() else {
            if piece.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Err("not an mbox file: its first line is not a \"From \" line".into());
        };
        let data = if line_start && is_quoted_from(&piece) {
            piece.get(1..).unwrap_or_default()
        } else {
            piece.as_slice()
        };
        m.feed(data, line_start)
            .await
            .map_err(|e| failed(&uids, e))?;
    }
    if let Some(m) = current.take() {
        uids.push(m.finish().await.map_err(|e| failed(&uids, e))?);
    }
    Ok(uids)
}

/// One message being imported.
struct Incoming {
    stream: Box<dyn AppendStream>,
    date: Option<i64>,
    /// The header so far, until its blank line (`None` after it).
    header: Option<Vec<u8>>,
    /// The last piece, written only once the next one shows it is not the separator line; true
    /// when it is a whole empty line.
    held: Option<(Vec<u8>, bool)>,
    /// Bytes to write, in writes of about [`MBOX_CHUNK_BYTES`].
    out: Vec<u8>,
    flags: SystemFlags,
    keywords: Vec<String>,
}

impl Incoming {
    fn new(stream: Box<dyn AppendStream>, date: Option<i64>) -> Incoming {
        Incoming {
            stream,
            date,
            header: Some(Vec::new()),
            held: None,
            out: Vec::new(),
            flags: SystemFlags::EMPTY,
            keywords: Vec::new(),
        }
    }

    /// Takes one piece of the message (already unquoted).
    async fn feed(&mut self, data: &[u8], line_start: bool) -> Result<(), String> {
        let blank = line_start && (data == b"\n" || data == b"\r\n");
        if let Some(h) = self.header.as_mut() {
            if blank {
                let h = std::mem::take(h);
                self.header = None;
                let kept = self.take_flag_fields(&h);
                self.out.extend_from_slice(&kept);
                self.held = Some((data.to_vec(), data == b"\n"));
            } else {
                h.extend_from_slice(data);
                if h.len() > MAX_HEADER_BYTES {
                    // No header a reader would take: the message is kept as it is.
                    let h = std::mem::take(h);
                    self.header = None;
                    self.out.extend_from_slice(&h);
                }
            }
            return self.flush(false).await;
        }
        if let Some((prev, _)) = self.held.take() {
            self.out.extend_from_slice(&prev);
        }
        self.held = Some((data.to_vec(), line_start && data == b"\n"));
        self.flush(false).await
    }

    /// Writes what is gathered when it is a chunk's worth (or `all`).
    async fn flush(&mut self, all: bool) -> Result<(), String> {
        if self.out.len() >= MBOX_CHUNK_BYTES || (all && !self.out.is_empty()) {
            self.stream
                .write(&self.out)
                .await
                .map_err(|e| e.to_string())?;
            self.out.clear();
        }
        Ok(())
    }

    /// Stores the message (the separator line left out) and returns its UID.
    async fn finish(mut self) -> Result<u32, String> {
        if let Some(h) = self.header.take() {
            // A header without its blank line ends the message: it stays as it is.
            self.out.extend_from_slice(&h);
        }
        if let Some((prev, separator)) = self.held.take()
            && !separator
        {
            self.out.extend_from_slice(&prev);
        }
        self.flush(true).await?;
        let done = self
            .stream
            .commit(self.flags, self.keywords, self.date)
            .await
            .map_err(|e| e.to_string())?;
        Ok(done.uid)
    }

    /// The header without its `Status:`, `X-Status:` and `X-Keywords:` fields, whose flags are
    /// taken.
    fn take_flag_fields(&mut self, header: &[u8]) -> Vec<u8> {
        let mut kept = Vec::with_capacity(header.len());
        // Inside a flag field: its continuation lines go too (those of X-Keywords are read).
        let mut skipping: Option<bool> = None;
        for line in header.split_inclusive(|&b| b == b'\n') {
            if let Some(keywords) = skipping
                && matches!(line.first(), Some(b' ' | b'\t'))
            {
                if keywords {
                    self.add_keywords(&String::from_utf8_lossy(line));
                }
                continue;
            }
            skipping = None;
            let field = |name: &[u8]| {
                line.get(..name.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(name))
                    .then(|| String::from_utf8_lossy(line.get(name.len()..).unwrap_or_default()))
            };
            if let Some(v) = field(b"status:") {
                if v.contains('R') {
                    self.flags = self.flags.union(SystemFlags::SEEN);
                }
                skipping = Some(false);
            } else if let Some(v) = field(b"x-status:") {
                for (c, f) in [
                    ('A', SystemFlags::ANSWERED),
                    ('F', SystemFlags::FLAGGED),
                    ('T', SystemFlags::DRAFT),
                    ('D', SystemFlags::DELETED),
                ] {
                    if v.contains(c) {
                        self.flags = self.flags.union(f);
                    }
                }
                skipping = Some(false);
            } else if let Some(v) = field(b"x-keywords:") {
                self.add_keywords(&v);
                skipping = Some(true);
            } else {
                kept.extend_from_slice(line);
            }
        }
        kept
    }

    /// Keywords of an `X-Keywords:` value (separated by spaces or commas); names IMAP cannot
    /// carry as a flag keyword are left out.
    fn add_keywords(&mut self, value: &str) {
        for k in value.split(|c: char| c == ',' || c.is_ascii_whitespace()) {
            let usable = !k.is_empty()
                && !k.starts_with('\\')
                && k.bytes().all(is_atom_char)
                && !self
                    .keywords
                    .iter()
                    .any(|have| have.eq_ignore_ascii_case(k));
            if usable {
                self.keywords.push(k.to_string());
            }
        }
    }
}

/// The date of a `From_` line as Unix seconds: `From sender Www Mmm dd hh:mm[:ss] [zone] yyyy`.
///
/// RFC 4155 (section 2) has the date in UTC, as `ctime` writes it without a zone, and that is
/// what export writes. Older writers, which mbox(5) of mutt describes, put a zone before the
/// year: a numeric one (`+0100`) is applied, a named one (`CET DST`, `PST`) cannot be and is
/// skipped, the time then taken as UTC. Two-digit years are 1970 to 2069, as mbox(5) says.
fn from_line_date(line: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(line);
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    // words[0] is "From", words[1] the sender.
    let at = (2..words.len()).find(|&i| {
        words
            .get(i)
            .is_some_and(|w| month_from_name(w.as_bytes()).is_some())
    })?;
    let month = month_from_name(words.get(at)?.as_bytes())?;
    let day: u8 = words.get(at + 1)?.parse().ok()?;
    let mut hms = words.get(at + 2)?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m) = (hms.next()??, hms.next()??);
    let s = hms.next().flatten().unwrap_or(0);
    if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..=60).contains(&s) {
        return None;
    }
    let mut zone_secs = 0i64;
    let mut year = None;
    for w in words.iter().skip(at + 3).take(4) {
        if let Some(z) = numeric_zone(w) {
            zone_secs = z;
        } else if w.bytes().all(|b| b.is_ascii_digit()) {
            year = match (w.len(), w.parse::<u16>().ok()?) {
                (4, y) => Some(y),
                (2, y) if y >= 70 => Some(1900 + y),
                (2, y) => Some(2000 + y),
                _ => None,
            };
            break;
        }
    }
    let date = Date::new(year?, month, day)?;
    Some(date.days_since_epoch() * 86_400 + h * 3600 + m * 60 + s - zone_secs)
}

/// `+hhmm` or `-hhmm` as seconds east of UTC.
fn numeric_zone(w: &str) -> Option<i64> {
    let (sign, digits) = match w.as_bytes().first()? {
        b'+' => (1, w.get(1..)?),
        b'-' => (-1, w.get(1..)?),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let (hh, mm) = (n / 100, n % 100);
    (hh < 24 && mm < 60).then_some(sign * (hh * 3600 + mm * 60))
}

// ---- export ----------------------------------------------------------------------------------

/// The `From_` line of a message with INTERNALDATE `secs` (UTC, asctime); a date beyond the
/// years 0 to 9999 is written as the epoch.
fn from_line(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let Some(date) = Date::from_days_since_epoch(days) else {
        return "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n".to_string();
    };
    let weekday = usize::try_from(days.rem_euclid(7))
        .ok()
        .and_then(|i| WEEKDAYS.get(i))
        .unwrap_or(&"Thu");
    let month = MONTHS
        .get(usize::from(date.month()).saturating_sub(1))
        .unwrap_or(&"Jan");
    format!(
        "From MAILER-DAEMON {weekday} {month} {:>2} {:02}:{:02}:{:02} {}\n",
        date.day(),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        date.year()
    )
}

/// The flag fields export adds to a header, each ended by `eol`.
fn flag_fields(flags: SystemFlags, keywords: &[&str], eol: &str) -> String {
    let mut s = String::new();
    s.push_str("Status: ");
    if flags.contains(SystemFlags::SEEN) {
        s.push('R');
    }
    s.push('O');
    s.push_str(eol);
    let x: String = [
        ('A', SystemFlags::ANSWERED),
        ('D', SystemFlags::DELETED),
        ('F', SystemFlags::FLAGGED),
        ('T', SystemFlags::DRAFT),
    ]
    .into_iter()
    .filter(|(_, f)| flags.contains(*f))
    .map(|(c, _)| c)
    .collect();
    if !x.is_empty() {
        s.push_str("X-Status: ");
        s.push_str(&x);
        s.push_str(eol);
    }
    if !keywords.is_empty() {
        s.push_str("X-Keywords: ");
        s.push_str(&keywords.join(" "));
        s.push_str(eol);
    }
    s
}

/// Adds the mboxrd `>` to lines that read `From ` after any `>`s, across chunk boundaries.
#[derive(Debug, Default)]
struct Quoter {
    /// Inside a line, past where quoting is decided.
    mid: bool,
    /// At a line start: `>`s seen, then bytes of `From ` matched.
    gts: usize,
    matched: usize,
    /// The last byte written.
    last: Option<u8>,
}

impl Quoter {
    fn write(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        if let Some(&b) = data.last() {
            self.last = Some(b);
        }
        while let Some((&b, rest)) = data.split_first() {
            if self.mid {
                match memchr::memchr(b'\n', data) {
                    Some(i) => {
                        out.extend_from_slice(data.get(..=i).unwrap_or_default());
                        data = data.get(i + 1..).unwrap_or_default();
                        self.mid = false;
                    }
                    None => {
                        out.extend_from_slice(data);
                        return;
                    }
                }
                continue;
            }
            if self.matched == 0 && b == b'>' {
                self.gts += 1;
                data = rest;
            } else if FROM.get(self.matched) == Some(&b) {
                self.matched += 1;
                data = rest;
                if self.matched == FROM.len() {
                    out.push(b'>');
                    self.flush_probe(out);
                    self.mid = true;
                }
            } else {
                // Not a From_ line: what was held back goes out as it was, and `b` is an
                // ordinary byte of the line (a line feed ends it at once).
                self.flush_probe(out);
                self.mid = true;
            }
        }
    }

    fn flush_probe(&mut self, out: &mut Vec<u8>) {
        out.extend(std::iter::repeat_n(b'>', self.gts));
        out.extend_from_slice(FROM.get(..self.matched).unwrap_or_default());
        self.gts = 0;
        self.matched = 0;
    }

    /// Ends the message: what is held back goes out.
    fn finish(&mut self, out: &mut Vec<u8>) {
        self.flush_probe(out);
        self.mid = false;
    }
}

/// Length of the blank line that ends a header block (`\r\n` or `\n`).
fn blank_len(block: &[u8]) -> usize {
    if block == b"\r\n" || block.ends_with(b"\n\r\n") {
        2
    } else {
        1
    }
}

/// Writes every message of `mailbox` to `file` as mboxrd; returns how many.
async fn export_from(store: &dyn UserStore, mailbox: &str, file: File) -> Result<u64, String> {
    let io = |e: std::io::Error| format!("writing: {e}");
    let failed = |e: StorageError| format!("{mailbox}: {e}");
    let mut view = store.open(mailbox, EXPORT_OPEN).await.map_err(failed)?;
    let uids: Vec<u32> = view.messages().iter().map(|m| m.uid).collect();
    let dates = view.internal_dates(&uids).await.map_err(failed)?;
    let mut w = BufWriter::with_capacity(MBOX_CHUNK_BYTES, file);
    let mut buf = Vec::with_capacity(MBOX_CHUNK_BYTES + MBOX_CHUNK_BYTES / 8);
    let mut count = 0u64;
    for meta in view.messages().iter() {
        let msg = match view.open_message(meta.uid, 0).await {
            Ok(m) => m,
            // Expunged by another session since the view was taken.
            Err(StorageError::Expunged) => continue,
            Err(e) => return Err(failed(e)),
        };
        w.write_all(from_line(dates.get(meta.uid).unwrap_or(0)).as_bytes())
            .map_err(io)?;
        let mut q = Quoter::default();
        let mut offset = 0u64;
        let header = msg.header().await.map_err(failed)?;
        if let Some(block) = crate::storage::header_block(&header) {
            let n = blank_len(block);
            let (fields, blank) = block.split_at(block.len().saturating_sub(n));
            let eol = if n == 2 { "\r\n" } else { "\n" };
            let keywords = view.keyword_names(&meta.flags.keywords);
            q.write(fields, &mut buf);
            q.write(
                flag_fields(meta.flags.system, &keywords, eol).as_bytes(),
                &mut buf,
            );
            q.write(blank, &mut buf);
            offset = block.len() as u64;
        }
        loop {
            let chunk = msg.read(offset, MBOX_CHUNK_BYTES).await.map_err(failed)?;
            q.write(&chunk, &mut buf);
            w.write_all(&buf).map_err(io)?;
            buf.clear();
            offset += chunk.len() as u64;
            if chunk.len() < MBOX_CHUNK_BYTES {
                break;
            }
        }
        q.finish(&mut buf);
        if q.last.is_some_and(|b| b != b'\n') {
            buf.push(b'\n');
        }
        buf.push(b'\n');
        w.write_all(&buf).map_err(io)?;
        buf.clear();
        count += 1;
    }
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(parts: &[&[u8]]) -> Vec<u8> {
        let mut q = Quoter::default();
        let mut out = Vec::new();
        for p in parts {
            q.write(p, &mut out);
        }
        q.finish(&mut out);
        out
    }

    #[test]
    fn quoting_adds_one_gt_to_from_lines_across_chunks() {
        let text: &[u8] = b"From a\n>From b\n>>From c\nFrom\nFro\n>x\nFromage\n";
        let want: &[u8] = b">From a\n>>From b\n>>>From c\nFrom\nFro\n>x\nFromage\n";
        assert_eq!(quote(&[text]), want);
        // Split at every byte: the answer is the same.
        for i in 0..text.len() {
            let (a, b) = text.split_at(i);
            assert_eq!(quote(&[a, b]), want, "split at {i}");
        }
        // A message ending inside a probe keeps its bytes.
        assert_eq!(quote(&[b"x\n>>Fro"]), b"x\n>>Fro");
    }

    #[test]
    fn unquoting_takes_one_gt() {
        assert!(is_quoted_from(b">From x\n"));
        assert!(is_quoted_from(b">>From x\n"));
        assert!(!is_quoted_from(b"From x\n"));
        assert!(!is_quoted_from(b">Fro\n"));
    }

    #[test]
    fn from_line_dates_round_trip() {
        for secs in [0i64, 1_700_000_000, 951_782_400, 1_767_225_599, -86_400] {
            let line = from_line(secs);
            assert_eq!(from_line_date(line.as_bytes()), Some(secs), "{line}");
        }
        assert_eq!(
            from_line(0),
            "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"
        );
        assert_eq!(
            from_line(1_700_000_000),
            "From MAILER-DAEMON Tue Nov 14 22:13:20 2023\n"
        );
        // mutt and others: a zone name before the year, or a sender that looks like a month.
        assert_eq!(
            from_line_date(b"From Mar@example.org Thu Jan  1 00:00:00 PST 1970\n"),
            Some(0)
        );
        assert_eq!(from_line_date(b"From someone\n"), None);
        // mbox(5): a numeric zone applies, two words of a named one are skipped, two-digit
        // years are 1970 to 2069, seconds may be missing.
        assert_eq!(
            from_line_date(b"From a Thu Jan  1 01:30:00 +0130 1970\n"),
            Some(0)
        );
        assert_eq!(
            from_line_date(b"From a Fri Jun 23 02:56:55 CET DST 2000\n"),
            Some(961_729_015)
        );
        assert_eq!(from_line_date(b"From a Thu Jan  1 00:01 70\n"), Some(60));
        assert_eq!(
            from_line_date(b"From a Sat Jan  1 00:00:00 00\n"),
            Some(946_684_800)
        );
    }

    #[test]
    fn flag_fields_are_taken_out_of_the_header() {
        let mut m = Incoming {
            stream: Box::new(NoStream),
            date: None,
            header: None,
            held: None,
            out: Vec::new(),
            flags: SystemFlags::EMPTY,
            keywords: Vec::new(),
        };
        let kept = m.take_flag_fields(
            b"Subject: s\r\nStatus: RO\r\nX-Status: AF\r\nX-Keywords: $Label1, work\r\n  todo\r\nTo: b\r\n",
        );
        assert_eq!(kept, b"Subject: s\r\nTo: b\r\n");
        assert_eq!(
            m.flags,
            SystemFlags::SEEN
                .union(SystemFlags::ANSWERED)
                .union(SystemFlags::FLAGGED)
        );
        assert_eq!(m.keywords, ["$Label1", "work", "todo"]);
        assert_eq!(
            flag_fields(m.flags, &["$Label1", "work", "todo"], "\n"),
            "Status: RO\nX-Status: AF\nX-Keywords: $Label1 work todo\n"
        );
    }

    /// Export then import through a real backend (the in-memory one): a message with lines far
    /// longer than a piece, a `From ` in the middle of a long line right at a piece boundary,
    /// CRLF, an empty message and one without a final line feed.
    #[tokio::test]
    async fn export_then_import_gives_the_messages_back() -> Result<(), String> {
        use crate::storage::memory::{MemoryOptions, MemoryStorage};
        use crate::storage::{AppendMessage, Storage, StorageUser};
        let e = |e: StorageError| e.to_string();
        let storage = MemoryStorage::new(MemoryOptions::default()).map_err(e)?;
        let user = storage
            .user(&StorageUser {
                name: "t".into(),
                home: None,
                quota_bytes: None,
                quota_messages: None,
                location: None,
            })
            .await
            .map_err(e)?;
        let mut big = b"Subject: big\n\n".to_vec();
        big.resize(big.len() + 2 * MBOX_PIECE_BYTES, b'x');
        big.extend_from_slice(b"From mid-line, at a piece boundary\nFrom a line start\n");
        big.resize(big.len() + MBOX_CHUNK_BYTES - 3, b'y');
        big.extend_from_slice(b"\n>From quoted once\n");
        let messages: [(&[u8], SystemFlags, &[&str]); 4] = [
            (
                &big,
                SystemFlags::SEEN.union(SystemFlags::FLAGGED),
                &["$Label1"],
            ),
            (b"Subject: small\r\n\r\nx\r\n", SystemFlags::DRAFT, &[]),
            (b"", SystemFlags::EMPTY, &[]),
            (
                b"Subject: last\n\nno line feed at the end",
                SystemFlags::EMPTY,
                &[],
            ),
        ];
        user.create("src", None).await.map_err(e)?;
        user.create("dst", None).await.map_err(e)?;
        for (i, (data, flags, keywords)) in messages.iter().enumerate() {
            let msg = AppendMessage {
                data: bytes::Bytes::copy_from_slice(data),
                flags: *flags,
                keywords: keywords.iter().map(|k| (*k).to_string()).collect(),
                internal_date: Some(1_700_000_000 + i as i64),
            };
            user.append("src", msg).await.map_err(e)?;
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("x.mbox");
        let file = File::create(&path).map_err(|e| e.to_string())?;
        assert_eq!(export_from(&*user, "src", file).await?, 4);
        let file = File::open(&path).map_err(|e| e.to_string())?;
        let uids = import_into(&*user, "dst", BufReader::new(file)).await?;
        assert_eq!(uids, [1, 2, 3, 4]);

        let mut view = user.open("dst", EXPORT_OPEN).await.map_err(e)?;
        let dates = view.internal_dates(&uids).await.map_err(e)?;
        for (i, (data, flags, keywords)) in messages.iter().enumerate() {
            let uid = uids[i];
            let got = view
                .open_message(uid, 0)
                .await
                .map_err(e)?
                .read_all()
                .await
                .map_err(e)?;
            let mut want = data.to_vec();
            if i == 3 {
                want.push(b'\n');
            }
            assert_eq!(got, want, "message {i}");
            let meta = view.messages().iter().nth(i).cloned();
            let meta = meta.ok_or("message missing")?;
            assert_eq!(meta.flags.system, *flags, "message {i}");
            assert_eq!(view.keyword_names(&meta.flags.keywords), *keywords);
            assert_eq!(dates.get(uid), Some(1_700_000_000 + i as i64));
        }
        Ok(())
    }

    /// An append stream that is never written (for the header test).
    struct NoStream;

    #[async_trait::async_trait]
    impl AppendStream for NoStream {
        async fn write(&mut self, _: &[u8]) -> crate::storage::Result<()> {
            Err(StorageError::Cannot("test"))
        }
        fn reserve(&mut self, _: u64) -> crate::storage::Result<()> {
            Ok(())
        }
        fn len(&self) -> u64 {
            0
        }
        fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
            self
        }
        async fn commit(
            self: Box<Self>,
            _: SystemFlags,
            _: Vec<String>,
            _: Option<i64>,
        ) -> crate::storage::Result<crate::storage::AppendResult> {
            Err(StorageError::Cannot("test"))
        }
    }
}
