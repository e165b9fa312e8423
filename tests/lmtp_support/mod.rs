//! Helpers shared by the LMTP and deliver tests: a server with an LMTP listener and users with
//! quotas, and reading what landed in a Maildir.
#![allow(dead_code)]

use std::path::Path;

use crate::common::{Builder, Server, cheap_argon2, free_port};

/// A users-file line for `name` with extra fields.
pub fn user_line(name: &str, extra: &str) -> String {
    format!("{name}:{}::::::{extra}", cheap_argon2("pw"))
}

/// The `[[listener]]` table of an LMTP listener on a TCP port.
pub fn lmtp_listener(port: u16) -> String {
    format!("[[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:{port}\"\n")
}

/// Starts a server with an LMTP listener; returns it and the LMTP port.
pub fn start(b: Builder) -> (Server, u16) {
    let port = free_port();
    let s = b.config(&lmtp_listener(port)).start();
    (s, port)
}

/// The standard cast: `demo`, `full` (1-byte quota) and `other`.
pub fn users() -> Vec<String> {
    vec![
        user_line("demo", ""),
        user_line("full", "userdb_quota_rule=*:storage=1b"),
        user_line("other@example.org", ""),
    ]
}

/// Every message file of a Maildir folder (`""` for INBOX), sorted by content.
pub fn stored(root: &Path, folder: &str) -> Vec<Vec<u8>> {
    let dir = if folder.is_empty() {
        root.to_path_buf()
    } else {
        root.join(format!(".{folder}"))
    };
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in rd {
            out.push(std::fs::read(e.unwrap().path()).unwrap());
        }
    }
    out.sort();
    out
}

/// Creates a Maildir++ folder the server (which may run as nobody) can write.
pub fn make_folder(root: &Path, folder: &str) {
    let fresh = !root.exists();
    let dir = root.join(format!(".{folder}"));
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        crate::common::chmod(&dir.join(sub), 0o777);
    }
    crate::common::chmod(&dir, 0o777);
    if fresh {
        crate::common::chmod(root, 0o777);
    }
}

/// `Return-Path` and `Delivered-To` as the server adds them (CRLF messages).
pub fn stamped(sender: &str, rcpt: &str, message: &[u8]) -> Vec<u8> {
    let mut v = format!("Return-Path: <{sender}>\r\nDelivered-To: {rcpt}\r\n").into_bytes();
    v.extend_from_slice(message);
    v
}
