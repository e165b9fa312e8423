//! The POP3 maildrop: a snapshot of the user's INBOX taken at login, held under the per-user POP3
//! lock, with the deletions and downloads of the session applied only at QUIT (RFC 1939 UPDATE).
//!
//! - Message numbers are positions in the snapshot; mail arriving later is not shown.
//! - Messages flagged `\Deleted` (by IMAP, or by POP3 under the `keep` policies) are not offered,
//!   as Dovecot's `pop3_deleted_flag` hides them: a client that deleted them must not see them again.
//! - Sizes are the CRLF ("virtual") sizes storage keeps, which is exactly what RETR sends before
//!   dot-stuffing. The one exception is a stored message whose last line has no line end: RETR
//!   must end that line with CRLF before the terminating `.`, two octets the size does not count
//!   (as in Dovecot; MTAs never store such messages, IMAP APPEND can).
//! - UIDLs are `%08X%08X` of UID and UIDVALIDITY, Dovecot's default `pop3_uidl_format = %08Xu%08Xv`,
//!   so clients moving from Dovecot (whose UIDs storage adopts) do not download everything again.
//! - RETR and TOP stream the file in [`limits::MESSAGE_STREAM_CHUNK`] pieces through
//!   [`DotStuffer`] (`storage::stream`); a message is never loaded whole.

use std::sync::Arc;

use tracing::warn;

use super::response::Pop3Error;
use crate::auth::UserInfo;
use crate::config::{Config, Pop3DeletePolicy};
use crate::limits;
use crate::server::Shared;
use crate::server::conn::Conn;
use crate::storage::stream::{Convert, Piece, Pump, StreamBuffers};
use crate::storage::{
    Message, OpenOptions, Pop3Lock, StorageError, StoreOp, StoreRequest, SystemFlags, UserStore,
    View,
};

/// One message of the snapshot.
pub struct Entry {
    /// Storage UID.
    pub uid: u32,
    /// Octets RETR sends, not counting dot-stuffing.
    pub size: u64,
    /// DELE'd in this session.
    pub deleted: bool,
    /// RETR'd in this session (TOP does not count).
    pub retrieved: bool,
}

/// The deletion policy in force for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// What DELE + QUIT does.
    pub kind: Pop3DeletePolicy,
    /// For `keep-days`: days after the first download at which messages are expunged.
    pub keep_days: u32,
}

impl Policy {
    /// The policy of `user`: the users file's `pop3_delete_policy` and `pop3_keep_days` fields
    /// (with or without the `userdb_` prefix) over the `[pop3]` config.
    ///
    /// Before login, CAPA must announce the smallest retention any user may have (RFC 2449 6.7).
    /// So a per-user `keep-days` is honoured only when the server-wide policy is `keep-days` too,
    /// and never below the server-wide `keep_days`; otherwise it falls back to the safe side (the
    /// server-wide value, or `keep`, which expires nothing) with a warning in the log.
    pub fn for_user(cfg: &Config, user: &UserInfo) -> Policy {
        let global = Policy {
            kind: cfg.pop3.delete_policy,
            keep_days: cfg.pop3.keep_days,
        };
        let kind = match user.field("pop3_delete_policy") {
            None => global.kind,
            Some("delete") => Pop3DeletePolicy::Delete,
            Some("keep") => Pop3DeletePolicy::Keep,
            Some("keep-days") if global.kind == Pop3DeletePolicy::KeepDays => {
                Pop3DeletePolicy::KeepDays
            }
            Some("keep-days") => {
                warn!(user = %user.name, "per-user keep-days needs delete_policy = \"keep-days\" in [pop3]; keeping messages instead");
                Pop3DeletePolicy::Keep
            }
            Some(other) => {
                warn!(user = %user.name, value = other, "unknown pop3_delete_policy; using the configured one");
                global.kind
            }
        };
        let keep_days = match user.field("pop3_keep_days").map(str::parse::<u32>) {
            None => global.keep_days,
            Some(Ok(d)) if d >= global.keep_days => d,
            Some(_) => {
                warn!(user = %user.name, floor = global.keep_days, "pop3_keep_days is not a number of days at least [pop3] keep_days; using keep_days");
                global.keep_days
            }
        };
        Policy { kind, keep_days }
    }

    /// The EXPIRE capability for this user (TRANSACTION state).
    pub fn expire_capability(&self) -> String {
        match self.kind {
            Pop3DeletePolicy::KeepDays => format!("EXPIRE {}", self.keep_days),
            Pop3DeletePolicy::Delete | Pop3DeletePolicy::Keep => "EXPIRE NEVER".into(),
        }
    }

    /// The EXPIRE capability before login: the smallest retention of any user. Under a server-wide
    /// `keep-days`, users may have more (or NEVER), so `USER` tells clients to ask again later.
    pub fn expire_before_login(cfg: &Config) -> String {
        match cfg.pop3.delete_policy {
            Pop3DeletePolicy::KeepDays => format!("EXPIRE {} USER", cfg.pop3.keep_days),
            Pop3DeletePolicy::Delete | Pop3DeletePolicy::Keep => "EXPIRE NEVER".into(),
        }
    }
}

/// The session's maildrop.
pub struct Maildrop {
    entries: Vec<Entry>,
    view: View,
    uidvalidity: u32,
    policy: Policy,
    mark_seen: bool,
    /// Buffers RETR and TOP reuse from one message to the next.
    bufs: StreamBuffers,
    _store: Arc<dyn UserStore>,
    _lock: Pop3Lock,
}

impl Maildrop {
    /// Locks the user's maildrop, applies `keep-days` expiry, and takes the snapshot.
    pub async fn open(shared: &Arc<Shared>, user: &UserInfo) -> Result<Maildrop, Pop3Error> {
        let cfg = shared.config();
        let store = shared
            .storage
            .user(&crate::setup::storage_user(user))
            .await
            .map_err(Pop3Error::Storage)?;
        let lock = store.pop3_lock().await.map_err(|e| match e {
            StorageError::InUse => Pop3Error::InUse,
            e => Pop3Error::Storage(e),
        })?;
        let policy = Policy::for_user(&cfg, user);
        if policy.kind == Pop3DeletePolicy::KeepDays {
            // Expiry failing must not keep the user from their mail: it is retried next login.
            match store.pop3_expire(policy.keep_days).await {
                Ok(gone) if !gone.is_empty() => {
                    tracing::info!(
                        expunged = gone.len(),
                        days = policy.keep_days,
                        "keep-days expiry"
                    );
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "keep-days expiry failed"),
            }
        }
        let view = crate::metrics::storage(
            crate::metrics::StorageOp::Open,
            store.open("INBOX", OpenOptions::POP3),
        )
        .await
        .map_err(Pop3Error::Storage)?;
        let entries = view
            .messages()
            .iter()
            .filter(|m| !m.flags.system.contains(SystemFlags::DELETED))
            .map(|m| Entry {
                uid: m.uid,
                size: m.virt_size,
                deleted: false,
                retrieved: false,
            })
            .collect();
        Ok(Maildrop {
            entries,
            uidvalidity: view.uidvalidity(),
            view,
            policy,
            mark_seen: cfg.pop3.mark_seen_on_retr,
            bufs: StreamBuffers::new(),
            _store: store,
            _lock: lock,
        })
    }

    /// The deletion policy of this session's user.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Messages in the snapshot, deleted ones included (numbers stay stable).
    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// Number and total size of the messages not marked deleted.
    pub fn stat(&self) -> (usize, u64) {
        self.entries
            .iter()
            .filter(|e| !e.deleted)
            .fold((0, 0), |(n, size), e| (n + 1, size.saturating_add(e.size)))
    }

    /// Message `n` (1-based), unless it does not exist or is marked deleted.
    pub fn live(&self, n: u32) -> Result<&Entry, Pop3Error> {
        match self.entries.get((n as usize).wrapping_sub(1)) {
            None => Err(Pop3Error::NoSuchMessage(n)),
            Some(e) if e.deleted => Err(Pop3Error::MessageDeleted(n)),
            Some(e) => Ok(e),
        }
    }

    /// The messages not marked deleted, with their numbers.
    pub fn live_entries(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.deleted)
            .map(|(i, e)| (i + 1, e))
    }

    /// The unique-id listing of a message (RFC 1939 7: 1 to 70 characters 0x21-0x7E).
    pub fn uidl(&self, e: &Entry) -> String {
        uidl(e.uid, self.uidvalidity)
    }

    /// DELE: marks message `n` (already checked to be live).
    pub fn delete(&mut self, n: u32) {
        if let Some(e) = self.entries.get_mut((n as usize).wrapping_sub(1)) {
            e.deleted = true;
        }
    }

    /// RSET: unmarks every deletion.
    pub fn reset(&mut self) {
        for e in &mut self.entries {
            e.deleted = false;
        }
    }

    /// Opens live message `n` for RETR/TOP, before the positive status line is sent, so a message
    /// that vanished (expunged by IMAP) still gets a clean `-ERR`. Its first chunk is read in the
    /// same step: a typical message is then sent without another trip to a blocking thread.
    pub async fn open_message(&self, n: u32) -> Result<Message, Pop3Error> {
        let uid = self.live(n)?.uid;
        match crate::metrics::storage(
            crate::metrics::StorageOp::Fetch,
            self.view.open_message(uid, limits::MESSAGE_STREAM_CHUNK),
        )
        .await
        {
            Ok(f) => Ok(f),
            Err(StorageError::Expunged) => Err(Pop3Error::Expunged(n)),
            Err(e) => {
                warn!(uid, error = %e, "cannot open message");
                Err(Pop3Error::Storage(e))
            }
        }
    }

    /// RETR (`top` None) or TOP: streams `file` (of message `n`) dot-stuffed with CRLF line ends,
    /// then the terminating `.` line. The positive status line must already be queued. A read
    /// error midway cannot become an `-ERR` any more, so it ends the connection.
    ///
    /// The file is read to its end, whatever size storage recorded. A message that fits in what
    /// is left of [`limits::POP3_RETR_QUEUE_BYTES`] is queued whole with its status line and
    /// terminator, so a small cached RETR is one write to the client and no blocking-thread hop.
    pub async fn send(
        &mut self,
        conn: &mut Conn,
        n: u32,
        file: Message,
        top: Option<u64>,
    ) -> Result<(), Pop3Error> {
        let uid = file.uid;
        // One byte more than the recorded size, so a message of that size is read in one step
        // that also finds the end of the file.
        let chunk = usize::try_from(file.phys_size.saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(limits::MESSAGE_STREAM_CHUNK);
        let mut pump = Pump::start(
            file.content,
            file.head,
            (0, u64::MAX),
            chunk,
            DotStuffer::new(top),
            &mut self.bufs,
        );
        if conn.can_send_file() {
            pump.allow_file();
        }
        loop {
            let piece = match pump.next_piece().await {
                Ok(Some(piece)) => piece,
                Ok(None) => break,
                Err(e) => {
                    warn!(uid, error = %e, "reading message failed");
                    return Err(Pop3Error::Io);
                }
            };
            match piece {
                Piece::Bytes(out) => {
                    if conn.out().len() + out.len() <= limits::POP3_RETR_QUEUE_BYTES {
                        conn.queue(&out);
                    } else {
                        conn.send_direct(&out).await?;
                    }
                    pump.recycle(out);
                }
                Piece::File { file, offset, len } => {
                    conn.send_file(&file, offset, len).await?;
                }
            }
        }
        if let Some(stuffer) = pump.converter() {
            stuffer.finish(conn.out());
        }
        pump.finish(&mut self.bufs);
        if top.is_none()
            && let Some(e) = self.entries.get_mut((n as usize).wrapping_sub(1))
        {
            e.retrieved = true;
        }
        Ok(())
    }

    /// QUIT: applies the session's deletions under the policy, marks retrieved messages `\Seen`
    /// and records their download time. Returns how many messages were removed or hidden.
    pub async fn commit(&mut self) -> Result<usize, StorageError> {
        let deleted: Vec<u32> = self
            .entries
            .iter()
            .filter(|e| e.deleted)
            .map(|e| e.uid)
            .collect();
        let retrieved: Vec<u32> = self
            .entries
            .iter()
            .filter(|e| e.retrieved)
            .map(|e| e.uid)
            .collect();
        if self.mark_seen && !retrieved.is_empty() {
            self.add_flags(&retrieved, SystemFlags::SEEN).await?;
        }
        if !retrieved.is_empty() || !deleted.is_empty() {
            let mut downloaded = retrieved.clone();
            downloaded.extend(&deleted);
            downloaded.sort_unstable();
            downloaded.dedup();
            self.view.pop3_mark_downloaded(&downloaded).await?;
        }
        if deleted.is_empty() {
            return Ok(0);
        }
        match self.policy.kind {
            Pop3DeletePolicy::Delete => {
                self.add_flags(&deleted, SystemFlags::DELETED).await?;
                crate::metrics::storage(
                    crate::metrics::StorageOp::Expunge,
                    self.view.expunge(Some(&deleted)),
                )
                .await?;
            }
            Pop3DeletePolicy::Keep | Pop3DeletePolicy::KeepDays => {
                self.add_flags(&deleted, SystemFlags::DELETED.union(SystemFlags::SEEN))
                    .await?;
            }
        }
        Ok(deleted.len())
    }

    async fn add_flags(&mut self, uids: &[u32], flags: SystemFlags) -> Result<(), StorageError> {
        let request = StoreRequest {
            op: StoreOp::Add,
            flags,
            keywords: Vec::new(),
            unchanged_since: None,
        };
        crate::metrics::storage(
            crate::metrics::StorageOp::Store,
            self.view.store(uids, request),
        )
        .await
        .map(|_| ())
    }
}

/// The UIDL of a message: Dovecot's default `%08Xu%08Xv`.
pub fn uidl(uid: u32, uidvalidity: u32) -> String {
    format!("{uid:08X}{uidvalidity:08X}")
}

impl Convert for DotStuffer {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
        DotStuffer::feed(self, chunk, out)
    }

    fn pass_through(&mut self, chunk: &[u8]) -> bool {
        DotStuffer::pass_through(self, chunk)
    }
}

/// Turns stored bytes into a POP3 multi-line body: bare LF becomes CRLF, a line starting with `.`
/// gets another `.` (RFC 1939 3), and TOP stops after the header and `n` body lines.
pub struct DotStuffer {
    at_line_start: bool,
    prev_cr: bool,
    in_header: bool,
    /// Body lines still to send (TOP), or None for the whole message.
    body_lines_left: Option<u64>,
    done: bool,
    wrote_any: bool,
    ends_with_newline: bool,
    line_empty: bool,
}

impl DotStuffer {
    /// A stuffer for RETR (`top` None) or `TOP msg n` (`top` Some(n)).
    pub fn new(top: Option<u64>) -> Self {
        DotStuffer {
            at_line_start: true,
            prev_cr: false,
            in_header: true,
            body_lines_left: top,
            done: false,
            wrote_any: false,
            ends_with_newline: true,
            line_empty: true,
        }
    }

    /// Converts `chunk` into `out`; returns true once TOP has everything it needs. Lines are
    /// found with `memchr` and copied whole.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
        if self.body_lines_left.is_none() {
            self.feed_whole(chunk, out);
            return false;
        }
        out.reserve(chunk.len());
        let mut rest = chunk;
        while let Some(&first) = rest.first() {
            if self.done {
                return true;
            }
            if self.at_line_start {
                if !self.in_header && self.body_lines_left == Some(0) {
                    self.done = true;
                    return true;
                }
                if first == b'.' {
                    out.push(b'.');
                }
                self.at_line_start = false;
                self.line_empty = true;
            }
            let (line, lf, tail) = match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    let (line, tail) = rest.split_at(i);
                    (line, true, tail.get(1..).unwrap_or_default())
                }
                None => (rest, false, &[][..]),
            };
            out.extend_from_slice(line);
            // Only the header's end needs to know whether a line is empty (CRs aside).
            if self.in_header && line.iter().any(|&b| b != b'\r') {
                self.line_empty = false;
            }
            let cr_before = line.last().map_or(self.prev_cr, |&b| b == b'\r');
            if lf {
                // A bare CR inside a line is sent as it is, like any other byte.
                if !cr_before {
                    out.push(b'\r');
                }
                out.push(b'\n');
                self.end_of_line();
            }
            self.prev_cr = !lf && cr_before;
            self.wrote_any = true;
            self.ends_with_newline = lf;
            rest = tail;
        }
        self.done
    }

    /// True when RETR sends `chunk` exactly as it is: no bare LF, no line starting with `.`
    /// (TOP, which counts lines, never passes through). The state then advances as if it had
    /// been fed, and the caller sends the stored bytes itself (`sendfile`). False, with nothing
    /// changed, otherwise.
    pub fn pass_through(&mut self, chunk: &[u8]) -> bool {
        let Some(&last) = chunk.last() else {
            return false;
        };
        if self.body_lines_left.is_some()
            || (self.at_line_start && chunk.first() == Some(&b'.'))
            || crate::mime::has_bare_lf(chunk, self.prev_cr)
            || memchr::memmem::find(chunk, b"\n.").is_some()
        {
            return false;
        }
        self.at_line_start = last == b'\n';
        self.prev_cr = last == b'\r';
        self.ends_with_newline = last == b'\n';
        self.wrote_any = true;
        true
    }

    /// `feed` for RETR, which needs neither the header's end nor a line count: the chunk is
    /// copied in runs between the places that change (a bare LF, a line starting with `.`),
    /// so a message with CRLF line ends and no such line is one copy.
    fn feed_whole(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let Some(&last) = chunk.last() else {
            return;
        };
        out.reserve(chunk.len() + chunk.len() / 64);
        if self.at_line_start && chunk.first() == Some(&b'.') {
            out.push(b'.');
        }
        // Bytes before `run` are in `out`.
        let mut run = 0;
        for lf in memchr::memchr_iter(b'\n', chunk) {
            let cr_before = match lf.checked_sub(1) {
                Some(i) => chunk.get(i) == Some(&b'\r'),
                None => self.prev_cr,
            };
            if !cr_before {
                out.extend_from_slice(chunk.get(run..lf).unwrap_or_default());
                out.push(b'\r');
                run = lf;
            }
            if chunk.get(lf + 1) == Some(&b'.') {
                out.extend_from_slice(chunk.get(run..=lf).unwrap_or_default());
                out.push(b'.');
                run = lf + 1;
            }
        }
        out.extend_from_slice(chunk.get(run..).unwrap_or_default());
        self.at_line_start = last == b'\n';
        self.prev_cr = last == b'\r';
        self.ends_with_newline = last == b'\n';
        self.wrote_any = true;
    }

    fn end_of_line(&mut self) {
        self.at_line_start = true;
        if self.in_header {
            if self.line_empty {
                self.in_header = false;
            }
        } else if let Some(n) = self.body_lines_left.as_mut() {
            *n = n.saturating_sub(1);
        }
    }

    /// Ends the body: a missing final line end is added, then the `.` line.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.wrote_any && !self.ends_with_newline && !self.done {
            if self.prev_cr {
                out.push(b'\n');
            } else {
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff(input: &[u8], top: Option<u64>, chunk: usize) -> Vec<u8> {
        let mut s = DotStuffer::new(top);
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            if s.feed(c, &mut out) {
                break;
            }
        }
        s.finish(&mut out);
        out
    }

    /// RETR of `input` in chunks of `chunk`, each chunk the stuffer passes through copied as it
    /// is (as `sendfile` sends it) and the others fed; also how many passed.
    fn stuff_passing(input: &[u8], chunk: usize) -> (Vec<u8>, usize) {
        let mut s = DotStuffer::new(None);
        let (mut out, mut passed) = (Vec::new(), 0);
        for c in input.chunks(chunk.max(1)) {
            if s.pass_through(c) {
                out.extend_from_slice(c);
                passed += 1;
            } else {
                s.feed(c, &mut out);
            }
        }
        s.finish(&mut out);
        (out, passed)
    }

    #[test]
    fn passing_chunks_through_gives_what_feeding_them_gives() {
        let inputs: [&[u8]; 6] = [
            b"Subject: x\r\n\r\nplain crlf\r\nlines only\r\n",
            b"Subject: x\r\n\r\n.dot\r\nline\r\n..two\r\nend",
            b"Subject: x\n\nbare lf\r\nmixed\n",
            b"Subject: x\r\n\r\nsplit cr\r\n\r\n.\r\nafter\r\n",
            b".first\r\nline\r\n",
            b"no line end at all",
        ];
        for input in inputs {
            let want = stuff(input, None, input.len());
            let mut some_passed = false;
            for chunk in 1..input.len() + 1 {
                let (got, passed) = stuff_passing(input, chunk);
                assert_eq!(
                    got,
                    want,
                    "{:?} chunk {chunk}",
                    String::from_utf8_lossy(input)
                );
                some_passed |= passed > 0;
            }
            assert!(some_passed, "{:?}", String::from_utf8_lossy(input));
        }
        // TOP counts lines: it never passes anything through.
        let mut s = DotStuffer::new(Some(1));
        assert!(!s.pass_through(b"Subject: x\r\n\r\nbody\r\n"));
        // A chunk with a line starting with "." or a bare LF is not passed, and the stuffer's
        // state stays as it was: the same chunk fed afterwards is converted from the same place.
        for c in [&b"a\r\n.b\r\n"[..], b"a\nb\r\n", b".a\r\n"] {
            let mut s = DotStuffer::new(None);
            assert!(!s.pass_through(c));
            let mut out = Vec::new();
            s.feed(c, &mut out);
            s.finish(&mut out);
            assert_eq!(out, stuff(c, None, c.len()));
        }
    }

    #[test]
    fn crlf_and_dot_stuffing_at_any_chunk_size() {
        let input = b"Subject: x\n\n.hidden\r\nline\n..two\nlast";
        let want = b"Subject: x\r\n\r\n..hidden\r\nline\r\n...two\r\nlast\r\n.\r\n".to_vec();
        for chunk in 1..input.len() + 1 {
            assert_eq!(stuff(input, None, chunk), want, "chunk {chunk}");
        }
    }

    /// The byte-at-a-time definition the line-wise `feed` must match.
    fn reference(input: &[u8], top: Option<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut at_start, mut prev_cr, mut in_header, mut empty) = (true, false, true, true);
        let mut left = top;
        let mut last = None;
        for &b in input {
            if at_start {
                if !in_header && left == Some(0) {
                    out.extend_from_slice(b".\r\n");
                    return out;
                }
                if b == b'.' {
                    out.push(b'.');
                }
                at_start = false;
                empty = true;
            }
            if b == b'\n' {
                if !prev_cr {
                    out.push(b'\r');
                }
                at_start = true;
                if in_header {
                    in_header = !empty;
                } else if let Some(n) = left.as_mut() {
                    *n = n.saturating_sub(1);
                }
            } else if b != b'\r' {
                empty = false;
            }
            out.push(b);
            prev_cr = b == b'\r';
            last = Some(b);
        }
        match last {
            Some(b'\n') | None => {}
            Some(b'\r') => out.push(b'\n'),
            Some(_) => out.extend_from_slice(b"\r\n"),
        }
        out.extend_from_slice(b".\r\n");
        out
    }

    #[test]
    fn random_inputs_and_chunkings_match_the_definition() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"\n\n\r..ab";
        for round in 0..3000 {
            let len = (next() % 120) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let top = match next() % 3 {
                0 => None,
                _ => Some(next() % 5),
            };
            let chunk = 1 + (next() % 13) as usize;
            assert_eq!(
                stuff(&input, top, chunk),
                reference(&input, top),
                "round {round}: {input:?} top {top:?} chunk {chunk}"
            );
        }
    }

    #[test]
    fn top_sends_header_and_n_body_lines() {
        let input = b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\nthree\r\n";
        for chunk in 1..input.len() + 1 {
            assert_eq!(
                stuff(input, Some(0), chunk),
                b"A: 1\r\nB: 2\r\n\r\n.\r\n".to_vec()
            );
            assert_eq!(
                stuff(input, Some(2), chunk),
                b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n.\r\n".to_vec()
            );
            assert_eq!(
                stuff(input, Some(99), chunk),
                [&input[..], b".\r\n"].concat()
            );
        }
        // A message without a body: TOP gives the header only.
        assert_eq!(stuff(b"A: 1\n", Some(5), 3), b"A: 1\r\n.\r\n".to_vec());
    }

    fn user(fields: &[(&str, &str)]) -> UserInfo {
        UserInfo {
            name: "u".into(),
            uid: None,
            gid: None,
            home: None,
            extra: fields
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect(),
        }
    }

    fn cfg(kind: Pop3DeletePolicy, days: u32) -> Config {
        let mut c = Config::default();
        c.pop3.delete_policy = kind;
        c.pop3.keep_days = days;
        c
    }

    #[test]
    fn per_user_policy_overrides_but_never_expires_sooner_than_announced() {
        use Pop3DeletePolicy::*;
        let p = |c: &Config, f: &[(&str, &str)]| {
            let p = Policy::for_user(c, &user(f));
            (p.kind, p.keep_days)
        };
        let del = cfg(Delete, 30);
        assert_eq!(p(&del, &[]), (Delete, 30));
        assert_eq!(
            p(&del, &[("userdb_pop3_delete_policy", "keep")]),
            (Keep, 30)
        );
        // keep-days per user needs keep-days server-wide (else CAPA before login would lie).
        assert_eq!(p(&del, &[("pop3_delete_policy", "keep-days")]), (Keep, 30));
        assert_eq!(p(&del, &[("pop3_delete_policy", "bogus")]), (Delete, 30));
        let kd = cfg(KeepDays, 7);
        assert_eq!(p(&kd, &[]), (KeepDays, 7));
        assert_eq!(
            p(&kd, &[("userdb_pop3_delete_policy", "delete")]),
            (Delete, 7)
        );
        assert_eq!(p(&kd, &[("pop3_keep_days", "90")]), (KeepDays, 90));
        assert_eq!(p(&kd, &[("pop3_keep_days", "3")]), (KeepDays, 7));
        assert_eq!(p(&kd, &[("pop3_keep_days", "x")]), (KeepDays, 7));
        // userdb_ wins over the bare key, as for every other field.
        assert_eq!(
            p(
                &kd,
                &[
                    ("pop3_delete_policy", "delete"),
                    ("userdb_pop3_delete_policy", "keep")
                ]
            ),
            (Keep, 7)
        );
    }

    #[test]
    fn expire_is_announced_per_rfc_2449() {
        use Pop3DeletePolicy::*;
        assert_eq!(
            Policy::expire_before_login(&cfg(Delete, 30)),
            "EXPIRE NEVER"
        );
        assert_eq!(Policy::expire_before_login(&cfg(Keep, 30)), "EXPIRE NEVER");
        assert_eq!(
            Policy::expire_before_login(&cfg(KeepDays, 5)),
            "EXPIRE 5 USER"
        );
        let user = Policy {
            kind: KeepDays,
            keep_days: 9,
        };
        assert_eq!(user.expire_capability(), "EXPIRE 9");
        let keep = Policy {
            kind: Keep,
            keep_days: 9,
        };
        assert_eq!(keep.expire_capability(), "EXPIRE NEVER");
    }

    #[test]
    fn uidl_is_dovecots_default_format() {
        assert_eq!(uidl(1, 0x5F3E_1A2B), "000000015F3E1A2B");
        assert_eq!(uidl(u32::MAX, 1), "FFFFFFFF00000001");
    }

    #[test]
    fn binary_bytes_pass_untouched_and_bare_cr_stays() {
        let input: Vec<u8> = (0u8..=255).collect();
        let out = stuff(&input, None, 7);
        // Only the LF (0x0A) gains a CR; the final line gets its CRLF and the terminator.
        let mut want: Vec<u8> = (0u8..10).collect();
        want.extend_from_slice(b"\r\n");
        want.extend(11u8..=255);
        want.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(out, want);
    }

    #[test]
    fn empty_message_is_just_the_terminator() {
        assert_eq!(stuff(b"", None, 4), b".\r\n".to_vec());
    }
}
