//! Delivering one message to one recipient: the path shared by the LMTP session and the
//! `mailcove deliver` command, so both resolve recipients, pick folders, add headers and report
//! failures the same way.
//!
//! * A recipient `user+detail@domain` is looked up as written, then without its detail, then (when
//!   the users file lists bare names) as the bare local part. The auth module compares names
//!   ASCII-case-insensitively, so the domain is case-insensitive too.
//! * The message is stored with `Return-Path:` and `Delivered-To:` prepended, as Dovecot's LMTP
//!   does, using the line ending of the message's first line; nothing else changes.
//! * The target is the explicit folder (`deliver -m`) or the detail (when
//!   `save_to_detail_mailbox` is on) if that mailbox exists, else INBOX, as Dovecot's
//!   `lmtp_save_to_detail_mailbox` and LDA `-m` without autocreate.
//! * Success means durable: the storage's append fsyncs file and directory before returning.

use std::sync::Arc;

use thiserror::Error;

use crate::auth::{Authenticator, UserInfo};
use crate::config::{LmtpConfig, OverQuota};
use crate::spool::Spooled;
use crate::storage::{DeliveryId, Storage, StorageError, SystemFlags, UserStore};

/// How recipients are resolved and over-quota is answered (from `[lmtp]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Characters separating user and detail; empty disables details.
    pub delimiters: String,
    /// Deliver to the detail's mailbox when it exists.
    pub save_to_detail: bool,
    /// Permanent or temporary over-quota failures.
    pub over_quota: OverQuota,
}

impl From<&LmtpConfig> for DeliveryOptions {
    fn from(c: &LmtpConfig) -> Self {
        DeliveryOptions {
            delimiters: c.recipient_delimiter.clone(),
            save_to_detail: c.save_to_detail_mailbox,
            over_quota: c.over_quota,
        }
    }
}

/// Why a delivery (or a recipient) failed.
#[derive(Debug, Error)]
pub enum DeliverError {
    /// No such user (LMTP 550 5.1.1, deliver 67).
    #[error("user doesn't exist: {0}")]
    NoSuchUser(String),
    /// Over quota; permanent or temporary per configuration (552 5.2.2 / 452 4.2.2, 73 / 75).
    #[error("quota exceeded (mailbox for user is full)")]
    OverQuota {
        /// True when the configuration says to answer temporarily.
        temporary: bool,
    },
    /// The message is larger than `limits.max_message_size` (552 5.3.4, deliver 73).
    #[error("message too large")]
    TooBig,
    /// The mailbox cannot be written and retrying will not help, e.g. a user name that cannot
    /// form a mail path (LMTP 550 5.2.0, deliver 73).
    #[error("cannot store the message: {0}")]
    Permanent(String),
    /// Storage trouble worth retrying (451 4.3.0, deliver 75).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// A Sieve `reject`/`ereject` refused the message for this recipient (LMTP 550 5.7.1 with
    /// the script's reason, deliver 77 as `dovecot-lda -e`).
    #[error("rejected by the recipient's Sieve script: {0}")]
    Rejected(String),
}

impl DeliverError {
    /// Maps a storage failure.
    pub fn from_storage(e: StorageError, opts: &DeliveryOptions) -> Self {
        match e {
            StorageError::OverQuota => DeliverError::OverQuota {
                temporary: opts.over_quota == OverQuota::Temporary,
            },
            StorageError::Invalid(why) => DeliverError::Permanent(why.to_string()),
            other => DeliverError::Temporary(other.to_string()),
        }
    }
}

/// A resolved recipient: the address as given, its user, its detail, and the user's mail.
#[derive(Clone)]
pub struct Recipient {
    /// The address as the client gave it (used in `Delivered-To:` and replies).
    pub address: String,
    /// The user from the users file.
    pub user: UserInfo,
    /// The detail after the recipient delimiter, if any.
    pub detail: Option<String>,
    /// The user's mailboxes.
    pub store: Arc<dyn UserStore>,
    /// This delivery's id, set at DATA ([`message_digest`]), so a storage that remembers
    /// deliveries stores the MTA's retry of it once.
    pub delivery: Option<DeliveryId>,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipient")
            .field("address", &self.address)
            .field("user", &self.user.name)
            .field("detail", &self.detail)
            .finish()
    }
}

/// Splits `local+detail@domain` into (`local@domain`, `detail`) at the first delimiter character
/// of the local part; None when there is no delimiter.
pub fn split_detail(address: &str, delimiters: &str) -> Option<(String, String)> {
    let (local, domain) = match address.rsplit_once('@') {
        Some((l, d)) => (l, Some(d)),
        None => (address, None),
    };
    let pos = local.find(|c| delimiters.contains(c))?;
    let user = local.get(..pos)?;
    let detail = local.get(pos..)?.chars().skip(1).collect::<String>();
    if user.is_empty() {
        return None;
    }
    let base = match domain {
        Some(d) => format!("{user}@{d}"),
        None => user.to_string(),
    };
    Some((base, detail))
}

/// Finds the user of `address` (blocking: may re-read the users file). Returns the user and the
/// detail that was split off.
pub fn lookup(
    auth: &Authenticator,
    address: &str,
    delimiters: &str,
) -> Option<(UserInfo, Option<String>)> {
    let bare = |a: &str| a.rsplit_once('@').map(|(l, _)| l.to_string());
    if let Some(u) = auth.lookup(address) {
        return Some((u, None));
    }
    let split = split_detail(address, delimiters);
    if let Some((base, detail)) = &split
        && let Some(u) = auth.lookup(base)
    {
        return Some((u, Some(detail.clone())));
    }
    // Users files that list bare names serve one domain: the MTA already decided the domain is
    // ours, so `user@domain` is that user (Dovecot's `auth_username_format = %Ln`).
    if let Some(local) = bare(address)
        && let Some(u) = auth.lookup(&local)
    {
        return Some((u, None));
    }
    if let Some((base, detail)) = split
        && let Some(local) = bare(&base)
        && let Some(u) = auth.lookup(&local)
    {
        return Some((u, Some(detail)));
    }
    None
}

/// [`lookup`] in an SQL or LDAP database, trying the same names in the same order; `Err` when
/// the database cannot answer now.
pub async fn lookup_in_database(
    auth: &Authenticator,
    address: &str,
    delimiters: &str,
) -> Result<Option<(UserInfo, Option<String>)>, crate::auth::db::DbError> {
    let bare = |a: &str| a.rsplit_once('@').map(|(l, _)| l.to_string());
    let split = split_detail(address, delimiters);
    let mut candidates = vec![(address.to_string(), None)];
    if let Some((base, detail)) = &split {
        candidates.push((base.clone(), Some(detail.clone())));
    }
    if let Some(local) = bare(address) {
        candidates.push((local, None));
    }
    if let Some((base, detail)) = split
        && let Some(local) = bare(&base)
    {
        candidates.push((local, Some(detail)));
    }
    for (name, detail) in candidates {
        if let Some(u) = auth.lookup_user(&name, "lmtp").await? {
            return Ok(Some((u, detail)));
        }
    }
    Ok(None)
}

/// Resolves `address` to a recipient and opens its mail (creating the Maildir of a user who
/// never got mail).
pub async fn resolve(
    auth: &Arc<Authenticator>,
    storage: &Arc<dyn Storage>,
    address: &str,
    opts: &DeliveryOptions,
) -> Result<Recipient, DeliverError> {
    let a = auth.clone();
    let (addr, delims) = (address.to_string(), opts.delimiters.clone());
    let found = if auth.has_database() {
        // An SQL or LDAP database that is down is a temporary failure (451 4.3.0, exit 75).
        lookup_in_database(auth, address, &opts.delimiters)
            .await
            .map_err(|e| DeliverError::Temporary(format!("user lookup: {e}")))?
    } else {
        tokio::task::spawn_blocking(move || lookup(&a, &addr, &delims))
            .await
            .map_err(|e| DeliverError::Temporary(format!("user lookup: {e}")))?
    };
    let (user, detail) = found.ok_or_else(|| DeliverError::NoSuchUser(address.to_string()))?;
    let store = storage
        .user(&crate::setup::storage_user(&user))
        .await
        .map_err(|e| DeliverError::from_storage(e, opts))?;
    Ok(Recipient {
        address: address.to_string(),
        user,
        detail,
        store,
        delivery: None,
    })
}

static QUOTA_CHECK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Refuses a recipient that is already over quota, or would be with a message of `size` bytes
/// (as announced by MAIL FROM SIZE=), so the MTA learns it at RCPT time.
pub async fn check_quota(
    rcpt: &Recipient,
    size: u64,
    opts: &DeliveryOptions,
) -> Result<(), DeliverError> {
    let q = {
        // Workaround: the Maildir backend rebuilds a missing or long `maildirsize` through a
        // temporary file named by process id only, so two tasks of this process rebuilding at
        // once make one fail with ENOENT. Serialising the check here keeps RCPT from answering
        // 451 for that; reported to the storage owner.
        let _one_at_a_time = QUOTA_CHECK.lock().await;
        rcpt.store
            .quota()
            .await
            .map_err(|e| DeliverError::from_storage(e, opts))?
    };
    let bytes_over = q
        .bytes_limit
        .is_some_and(|l| q.bytes_used.saturating_add(size) > l);
    let messages_over = q
        .messages_limit
        .is_some_and(|l| q.messages_used.saturating_add(1) > l);
    if bytes_over || messages_over {
        return Err(DeliverError::OverQuota {
            temporary: opts.over_quota == OverQuota::Temporary,
        });
    }
    Ok(())
}

/// The message as stored for one recipient: `Return-Path:` and `Delivered-To:` first, written
/// with the line ending the message itself uses.
pub fn stamp(sender: &str, recipient: &str, message: &[u8]) -> Vec<u8> {
    let eol: &[u8] = match memchr::memchr(b'\n', message) {
        Some(i) if i == 0 || message.get(i - 1) != Some(&b'\r') => b"\n",
        _ => b"\r\n",
    };
    let mut out = Vec::with_capacity(message.len() + sender.len() + recipient.len() + 40);
    out.extend_from_slice(b"Return-Path: <");
    out.extend_from_slice(sender.as_bytes());
    out.push(b'>');
    out.extend_from_slice(eol);
    out.extend_from_slice(b"Delivered-To: ");
    out.extend_from_slice(recipient.as_bytes());
    out.extend_from_slice(eol);
    out.extend_from_slice(message);
    out
}

/// `Return-Path:` and `Delivered-To:` as [`stamp`] puts them before a message that starts with
/// `start` (enough of it to hold its first line end).
pub fn stamp_header(sender: &str, recipient: &str, start: &[u8]) -> Vec<u8> {
    let mut out = stamp(sender, recipient, start);
    out.truncate(out.len() - start.len());
    out
}

/// Where a message was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The mailbox it went to.
    pub mailbox: String,
    /// Its UID there.
    pub uid: u32,
}

/// Stores a spooled message for `rcpt` with `header` (from [`stamp_header`]) before it: into
/// `folder` if given and existing, else into the detail mailbox when configured and existing,
/// else INBOX. The message is streamed from the spool into the mailbox one chunk at a time.
/// Durable when it returns Ok.
pub async fn store_spooled(
    rcpt: &Recipient,
    folder: Option<&str>,
    header: &[u8],
    message: &Spooled,
    opts: &DeliveryOptions,
) -> Result<Stored, DeliverError> {
    let wanted = folder.map(str::to_string).or_else(|| {
        rcpt.detail
            .as_ref()
            .filter(|d| opts.save_to_detail && !d.is_empty())
            .cloned()
    });
    if let Some(name) = wanted.filter(|n| !n.eq_ignore_ascii_case("INBOX")) {
        match stream_into(rcpt, &name, header, message).await {
            Ok(uid) => return Ok(Stored { mailbox: name, uid }),
            // A detail or folder that is no usable mailbox falls back to INBOX.
            Err(StorageError::NonExistent | StorageError::InvalidName(_)) => {}
            Err(e) => return Err(DeliverError::from_storage(e, opts)),
        }
    }
    let uid = stream_into(rcpt, "INBOX", header, message)
        .await
        .map_err(|e| DeliverError::from_storage(e, opts))?;
    Ok(Stored {
        mailbox: "INBOX".to_string(),
        uid,
    })
}

/// One streamed append of `header` + `message` into `mailbox`; nothing is stored on failure.
async fn stream_into(
    rcpt: &Recipient,
    mailbox: &str,
    header: &[u8],
    message: &Spooled,
) -> Result<u32, StorageError> {
    let mut w = rcpt.store.append_stream(mailbox).await?;
    if let Some(id) = rcpt.delivery {
        w.set_delivery(id);
    }
    w.reserve((header.len() as u64).saturating_add(message.len()))?;
    w.write(header).await?;
    let mut offset = 0;
    while offset < message.len() {
        let chunk = message
            .read_chunk(offset)
            .await
            .map_err(|e| StorageError::Temporary(format!("reading the spooled message: {e}")))?;
        if chunk.is_empty() {
            return Err(StorageError::Temporary(
                "spooled message ended early".into(),
            ));
        }
        offset += chunk.len() as u64;
        w.write(&chunk).await?;
    }
    let r = crate::metrics::storage(
        crate::metrics::StorageOp::Append,
        w.commit(SystemFlags::default(), Vec::new(), None),
    )
    .await?;
    Ok(r.uid)
}

/// The SHA-256 of a spooled message as the MTA sent it, for [`DeliveryId::new`].
pub async fn message_digest(message: &Spooled) -> std::io::Result<[u8; 32]> {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    message
        .for_each_chunk(|chunk| {
            h.update(&chunk);
            std::future::ready(Ok::<(), std::io::Error>(()))
        })
        .await?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&h.finalize());
    Ok(out)
}

/// Splits an mbox `From ` line off the top of a message (procmail and `mailbox_command` inputs
/// often start with one); returns the envelope sender it names, if any, and the message.
pub fn strip_mbox_from_line(message: &[u8]) -> (Option<String>, &[u8]) {
    if !message.starts_with(b"From ") {
        return (None, message);
    }
    let end = memchr::memchr(b'\n', message).map_or(message.len(), |i| i + 1);
    let line = message.get(5..end).unwrap_or_default();
    let sender = line
        .split(|b| *b == b' ' || *b == b'\r' || *b == b'\n')
        .next()
        .and_then(|s| std::str::from_utf8(s).ok())
        .filter(|s| !s.is_empty() && *s != "MAILER-DAEMON")
        .map(str::to_string);
    (sender, message.get(end..).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_split_at_the_first_delimiter_of_the_local_part() {
        assert_eq!(
            split_detail("bob+lists+rust@Example.org", "+"),
            Some(("bob@Example.org".into(), "lists+rust".into()))
        );
        assert_eq!(
            split_detail("bob-x", "+-"),
            Some(("bob".into(), "x".into()))
        );
        assert_eq!(split_detail("bob@ex+ample.org", "+"), None);
        assert_eq!(split_detail("+x@example.org", "+"), None);
        assert_eq!(split_detail("bob+x@example.org", ""), None);
        assert_eq!(
            split_detail("bob+@example.org", "+"),
            Some(("bob@example.org".into(), String::new()))
        );
    }

    #[test]
    fn headers_use_the_message_line_ending() {
        assert_eq!(
            stamp("a@b", "c+d@e", b"Subject: x\r\n\r\nbody\r\n"),
            b"Return-Path: <a@b>\r\nDelivered-To: c+d@e\r\nSubject: x\r\n\r\nbody\r\n".to_vec()
        );
        assert_eq!(
            stamp("", "c@e", b"Subject: x\n\nbody\n"),
            b"Return-Path: <>\nDelivered-To: c@e\nSubject: x\n\nbody\n".to_vec()
        );
        assert_eq!(
            stamp("", "c@e", b""),
            b"Return-Path: <>\r\nDelivered-To: c@e\r\n".to_vec()
        );
    }

    #[test]
    fn the_header_alone_matches_the_stamped_message() {
        for m in [
            &b"Subject: x\r\n\r\nbody\r\n"[..],
            b"Subject: x\n\nbody\n",
            b"",
        ] {
            let mut h = stamp_header("a@b", "c@e", m);
            h.extend_from_slice(m);
            assert_eq!(h, stamp("a@b", "c@e", m));
        }
    }

    #[test]
    fn mbox_from_line() {
        let (s, m) = strip_mbox_from_line(b"From alice@x Mon Jan  1 00:00:00 2024\nSubject: y\n");
        assert_eq!(s.as_deref(), Some("alice@x"));
        assert_eq!(m, b"Subject: y\n");
        let (s, m) = strip_mbox_from_line(b"From: alice@x\n");
        assert_eq!(s, None);
        assert_eq!(m, b"From: alice@x\n");
        let (s, m) = strip_mbox_from_line(b"From MAILER-DAEMON Mon\r\nX: 1\r\n");
        assert_eq!(s, None);
        assert_eq!(m, b"X: 1\r\n");
    }
}
