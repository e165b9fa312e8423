//! Helpers shared by the POP3 test files: putting mail into a Maildir the way an MTA does, logging
//! in, and looking at what is left on disk.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::{Client, Server, run_transcript};

static SEQ: AtomicU32 = AtomicU32::new(1);

/// Logs in once and quits, so the server creates the user's Maildir with its own owner.
pub fn create_maildir(s: &Server) {
    let mut c = login(s);
    run_transcript(&mut c, "C: QUIT\nS: +OK Logging out.");
}

/// A plain loopback session, logged in as demo.
pub fn login(s: &Server) -> Client {
    let mut c = s.pop3();
    assert!(c.line().starts_with("+OK"));
    run_transcript(
        &mut c,
        "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK Logged in, *",
    );
    c
}

/// Delivers `data` as Postfix does: a unique name in `tmp/`, written, fsynced, owned like the
/// Maildir, then renamed into `new/`. Returns the path in `new/`.
/// On the memory backend (`MAILCOVE_TEST_BACKEND=memory`) the message is APPENDed over IMAP
/// instead and the path returned is empty: tests that look at it are Maildir-only.
pub fn deliver(s: &Server, data: &[u8]) -> PathBuf {
    if crate::common::memory_backend() {
        s.append_message("demo", "demo", "INBOX", data);
        return PathBuf::new();
    }
    deliver_to(&s.maildir("demo"), data)
}

/// [`deliver`] into any Maildir root.
pub fn deliver_to(root: &Path, data: &[u8]) -> PathBuf {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    // Zero-padded: files written within one timestamp tick are ordered by name, like an MTA's.
    let name = format!("1700000000.M{n:08}P{}.testhost", std::process::id());
    let tmp = root.join("tmp").join(&name);
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let meta = std::fs::metadata(root).unwrap();
    std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid())).unwrap();
    let dest = root.join("new").join(&name);
    std::fs::rename(&tmp, &dest).unwrap();
    dest
}

/// A stored message file, wherever storage moved it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// File name in `cur/` or `new/`.
    pub name: String,
    /// Maildir flags after `:2,` (empty when none).
    pub flags: String,
}

/// The messages of the user's INBOX on disk.
pub fn stored(s: &Server) -> Vec<Stored> {
    let root = s.maildir("demo");
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(root.join(sub)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let flags = name
                .split_once(":2,")
                .map(|(_, f)| f.to_string())
                .unwrap_or_default();
            out.push(Stored { name, flags });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The stored message whose file name starts with the base name of `delivered`.
pub fn find(s: &Server, delivered: &Path) -> Option<Stored> {
    let base = delivered
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    stored(s)
        .into_iter()
        .find(|m| m.name.split(':').next() == Some(base.as_str()))
}

/// What a client must receive for a stored message: every bare LF sent as CRLF.
pub fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// A short test message with CRLF line ends.
pub fn msg(subject: &str, body: &str) -> Vec<u8> {
    format!("From: alice@example.org\r\nTo: demo@example.org\r\nSubject: {subject}\r\n\r\n{body}")
        .into_bytes()
}
