//! The POP3 maildrop: a snapshot of the user's INBOX taken at login, held under the per-user POP3
//! lock, with the deletions and downloads of the session applied only at QUIT (RFC 1939 UPDATE).
//!
//! - Message numbers are positions in the snapshot; mail arriving later is not shown.
//! - Messages flagged `\Deleted` (by IMAP, or by POP3 under the `keep` policies) are not offered,
//!   as Dovecot's `pop3_deleted_flag` hides them: a client that deleted them must not see them again.
//! - Sizes are the CRLF ("virtual") sizes storage keeps, which is exactly what RETR sends before
//!   dot-stuffing.
//! - UIDLs are `%08X%08X` of UID and UIDVALIDITY, Dovecot's default `pop3_uidl_format = %08Xu%08Xv`,
//!   so clients moving from Dovecot (whose UIDs storage adopts) do not download everything again.

use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tracing::warn;

use super::response::Pop3Error;
use crate::auth::UserInfo;
use crate::config::Pop3DeletePolicy;
use crate::server::Shared;
use crate::server::conn::Conn;
use crate::storage::{
    OpenOptions, Pop3Lock, StorageError, StoreOp, StoreRequest, SystemFlags, UserStore, View,
};

/// Bytes read from a message file per step while streaming RETR/TOP.
const STREAM_CHUNK: usize = 64 * 1024;

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

/// The session's maildrop.
pub struct Maildrop {
    entries: Vec<Entry>,
    view: View,
    uidvalidity: u32,
    policy: Pop3DeletePolicy,
    mark_seen: bool,
    _store: Arc<dyn UserStore>,
    _lock: Pop3Lock,
}

/// The deletion policy of `user`: the users file's `pop3_delete_policy` field over the config.
fn policy_of(shared: &Shared, user: &UserInfo) -> (Pop3DeletePolicy, u32) {
    let cfg = shared.config();
    let policy = match user.field("pop3_delete_policy") {
        Some("delete") => Pop3DeletePolicy::Delete,
        Some("keep") => Pop3DeletePolicy::Keep,
        Some("keep-days") => Pop3DeletePolicy::KeepDays,
        Some(other) => {
            warn!(user = %user.name, value = other, "unknown pop3_delete_policy; using the configured one");
            cfg.pop3.delete_policy
        }
        None => cfg.pop3.delete_policy,
    };
    let days = user
        .field("pop3_keep_days")
        .and_then(|d| d.parse().ok())
        .unwrap_or(cfg.pop3.keep_days);
    (policy, days)
}

impl Maildrop {
    /// Locks the user's maildrop and takes the snapshot.
    pub async fn open(shared: &Arc<Shared>, user: &UserInfo) -> Result<Maildrop, Pop3Error> {
        let store = shared
            .storage
            .user(&crate::setup::storage_user(user))
            .await
            .map_err(Pop3Error::Storage)?;
        let lock = store.pop3_lock().await.map_err(|e| match e {
            StorageError::InUse => Pop3Error::InUse,
            e => Pop3Error::Storage(e),
        })?;
        let (policy, days) = policy_of(shared, user);
        if policy == Pop3DeletePolicy::KeepDays {
            store.pop3_expire(days).await.map_err(Pop3Error::Storage)?;
        }
        let view = store
            .open("INBOX", OpenOptions::POP3)
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
            mark_seen: shared.config().pop3.mark_seen_on_retr,
            _store: store,
            _lock: lock,
        })
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
            .fold((0, 0), |(n, size), e| (n + 1, size + e.size))
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
        format!("{:08X}{:08X}", e.uid, self.uidvalidity)
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

    /// RETR (`top` None) or TOP: queues `status` (the positive status line) once the message is
    /// open, then streams it dot-stuffed with CRLF line ends and the terminating `.` line.
    /// Opening first lets a message that vanished (an IMAP session expunged it after our
    /// snapshot) be answered with `-ERR` on a connection that goes on, instead of a `+OK`
    /// followed by a dropped connection.
    pub async fn send(
        &mut self,
        conn: &mut Conn,
        n: u32,
        top: Option<u64>,
        status: &[u8],
    ) -> Result<(), Pop3Error> {
        let idx = (n as usize).wrapping_sub(1);
        let uid = self.live(n)?.uid;
        let mut file = match self.view.open_message(uid).await {
            Ok(f) => f,
            Err(e) => {
                warn!(uid, error = %e, "cannot open message for RETR");
                return Err(Pop3Error::Storage(e));
            }
        };
        conn.queue(status);
        let mut stuffer = DotStuffer::new(top);
        let mut buf = vec![0u8; STREAM_CHUNK];
        let mut out = Vec::with_capacity(STREAM_CHUNK + STREAM_CHUNK / 8);
        loop {
            let read = file.file.read(&mut buf).await.map_err(|e| {
                warn!(uid, error = %e, "reading message failed");
                Pop3Error::Io
            })?;
            if read == 0 {
                break;
            }
            out.clear();
            let done = stuffer.feed(&buf[..read], &mut out);
            conn.send_direct(&out).await?;
            if done {
                break;
            }
        }
        out.clear();
        stuffer.finish(&mut out);
        conn.queue(&out);
        if top.is_none()
            && let Some(e) = self.entries.get_mut(idx)
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
        match self.policy {
            Pop3DeletePolicy::Delete => {
                self.add_flags(&deleted, SystemFlags::DELETED).await?;
                self.view.expunge(Some(&deleted)).await?;
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
        self.view.store(uids, request).await.map(|_| ())
    }
}

/// Turns stored bytes into a POP3 multi-line body: bare LF becomes CRLF, a line starting with `.`
/// gets another `.` (RFC 1939 3), and TOP stops after the header and `n` body lines.
struct DotStuffer {
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
    fn new(top: Option<u64>) -> Self {
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

    /// Converts `chunk` into `out`; returns true once TOP has everything it needs.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in chunk {
            if self.done {
                return true;
            }
            if self.at_line_start {
                if !self.in_header
                    && let Some(0) = self.body_lines_left
                {
                    self.done = true;
                    return true;
                }
                if b == b'.' {
                    out.push(b'.');
                }
                self.at_line_start = false;
                self.line_empty = true;
            }
            match b {
                b'\n' => {
                    if !self.prev_cr {
                        out.push(b'\r');
                    }
                    out.push(b'\n');
                    self.end_of_line();
                }
                b'\r' => {
                    out.push(b'\r');
                }
                // A bare CR inside a line is sent as it is, like any other byte.
                _ => {
                    out.push(b);
                    self.line_empty = false;
                }
            }
            self.prev_cr = b == b'\r';
            self.wrote_any = true;
            self.ends_with_newline = b == b'\n';
        }
        self.done
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
    fn finish(&mut self, out: &mut Vec<u8>) {
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

    #[test]
    fn crlf_and_dot_stuffing_at_any_chunk_size() {
        let input = b"Subject: x\n\n.hidden\r\nline\n..two\nlast";
        let want = b"Subject: x\r\n\r\n..hidden\r\nline\r\n...two\r\nlast\r\n.\r\n".to_vec();
        for chunk in 1..input.len() + 1 {
            assert_eq!(stuff(input, None, chunk), want, "chunk {chunk}");
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

    #[test]
    fn empty_message_is_just_the_terminator() {
        assert_eq!(stuff(b"", None, 4), b".\r\n".to_vec());
    }
}
