//! OBJECTID (RFC 8474) and SAVEDATE (RFC 8514) in a Maildir, kept where index rebuilds and
//! restarts cannot lose them:
//!
//! * MAILBOXID: a random id in `mailcove-mailboxid` in the mailbox's directory, made the first
//!   time it is asked for (CREATE asks at once) and written durably. RENAME moves the directory
//!   and so keeps it; DELETE removes the directory, so a mailbox created again gets a new one.
//! * SAVEDATE: the time a Maildir unique name starts with (`<secs>.M...`). Every APPEND, COPY,
//!   MOVE and delivery writes a file under a new name made at that moment, so the name records
//!   when the message was saved into this mailbox, and flag changes (which rename only the
//!   `:2,` part) do not touch it. A file an MTA delivered straight into the Maildir has the
//!   MTA's delivery time there (the Maildir convention); a name without it has no save date.
//!   Dovecot keeps the save date in its index cache and falls back to the file's ctime, which
//!   every flag change moves: the name is steadier and needs no `stat`.
//! * EMAILID: `M` and 24 hex digits: a `,E=<hex>` field of the name when there is one, else
//!   the first 96 bits of the SHA-256 of the name's unique part. COPY and MOVE write the
//!   source's key into the new file's name, so a copy keeps its EMAILID (RFC 8474 5.1); the
//!   unique part never changes while the file lives, so neither does the id.
//! * THREADID: not tracked (NIL), as Dovecot.

use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::filename;
use super::fsutil::{fsync_dir, read_small, write_atomic};
use crate::storage::{MessageObject, Result, StorageError, is_object_id};

/// The per-mailbox file holding its MAILBOXID (one line).
pub(crate) const MAILBOX_ID_FILE: &str = "mailcove-mailboxid";
/// Hex digits of an EMAILID key (96 bits: no two messages of a server will collide).
const EMAIL_KEY_HEX: usize = 24;
/// Random bytes of a MAILBOXID.
const MAILBOX_ID_BYTES: usize = 12;

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

fn valid_key(v: &str) -> bool {
    v.len() == EMAIL_KEY_HEX
        && v.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The EMAILID key of a message file name: its `,E=` field, else a hash of its unique part.
pub(crate) fn email_key(name: &str) -> String {
    let base = filename::base_of(name);
    let mut fields = base.split(',');
    let unique = fields.next().unwrap_or(base);
    if let Some(v) = fields.find_map(|f| f.strip_prefix("E="))
        && valid_key(v)
    {
        return v.to_owned();
    }
    let digest = Sha256::digest(unique.as_bytes());
    hex(digest.get(..EMAIL_KEY_HEX / 2).unwrap_or_default())
}

/// A copy's base name: a new unique name that carries the source's EMAILID key.
pub(crate) fn copy_base(phys: u64, virt: u64, source_name: &str) -> String {
    format!(
        "{},E={}",
        filename::new_base(phys, virt),
        email_key(source_name)
    )
}

/// What RFC 8474 and RFC 8514 say of the message stored under `name`.
pub(crate) fn object_of(uid: u32, name: &str) -> MessageObject {
    MessageObject {
        uid,
        save_date: filename::delivery_time(name),
        email_id: format!("M{}", email_key(name)),
        thread_id: None,
    }
}

fn read_id(path: &Path) -> Result<Option<String>> {
    let Some(raw) = read_small(path, 512)? else {
        return Ok(None);
    };
    let id = String::from_utf8_lossy(&raw).trim().to_owned();
    if is_object_id(&id) {
        Ok(Some(id))
    } else {
        // Never a valid id, so no client can have cached it: a new one is safe.
        tracing::warn!(file = %path.display(), "unreadable MAILBOXID file, making a new id");
        Ok(None)
    }
}

fn new_mailbox_id() -> Result<String> {
    let mut bytes = [0u8; MAILBOX_ID_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| StorageError::io("read /dev/urandom", e))?;
    // A letter first (RFC 8474 8.1: no leading digit or dash).
    Ok(format!("F{}", hex(&bytes)))
}

/// The mailbox GUID in a `dovecot-uidlist` header (`3 V.. N.. G<32 hex>`), which Dovecot
/// answers as MAILBOXID: adopted, so clients of a mailbox taken over from Dovecot keep theirs.
fn dovecot_guid(dir: &Path) -> Option<String> {
    use std::io::BufRead;
    let f = std::fs::File::open(dir.join(super::dovecot::UIDLIST_FILE)).ok()?;
    let mut header = String::new();
    // The header line is short; a longer one is not Dovecot's.
    std::io::BufReader::new(f.take(1024))
        .read_line(&mut header)
        .ok()?;
    guid_of_header(&header)
}

fn guid_of_header(header: &str) -> Option<String> {
    let mut fields = header.split_whitespace();
    if !matches!(fields.next(), Some("2" | "3")) {
        return None;
    }
    fields
        .filter_map(|f| f.strip_prefix('G'))
        .find(|g| g.len() == 32 && g.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

/// The MAILBOXID of the mailbox in `dir`, made and stored durably the first time (Dovecot's
/// mailbox GUID when its `dovecot-uidlist` has one, else a random id).
pub(crate) fn mailbox_id(dir: &Path, fsync: bool) -> Result<String> {
    let path = dir.join(MAILBOX_ID_FILE);
    let existing = path.exists();
    if let Some(id) = read_id(&path)? {
        return Ok(id);
    }
    if !dir.join("cur").is_dir() {
        return Err(StorageError::NonExistent);
    }
    let id = match dovecot_guid(dir) {
        Some(guid) => guid,
        None => new_mailbox_id()?,
    };
    if existing {
        // A damaged file: replace it.
        write_atomic(&path, format!("{id}\n").as_bytes(), fsync)?;
        return Ok(id);
    }
    // Written under a temporary name, then linked into place: a link fails when another
    // process made the file first, and then its id is the one.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        "{MAILBOX_ID_FILE}.tmp.{}.{seq}",
        std::process::id()
    ));
    let written = (|| -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .mode(0o600)
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(format!("{id}\n").as_bytes())?;
        if fsync {
            f.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(StorageError::io("write mailbox id", e));
    }
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if fsync {
                fsync_dir(dir).map_err(|e| StorageError::io("fsync mailbox", e))?;
            }
            Ok(id)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_id(&path)?
            .ok_or_else(|| StorageError::Temporary("mailbox id being replaced".into())),
        Err(e) => Err(StorageError::io("store mailbox id", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_keeps_the_email_key_and_a_flag_change_keeps_both() {
        let src = "1700000000.M1P2Q3.host,S=10,W=11:2,S";
        let key = email_key(src);
        assert_eq!(key.len(), EMAIL_KEY_HEX);
        // Flags are not part of the key.
        assert_eq!(email_key("1700000000.M1P2Q3.host,S=10,W=11:2,FS"), key);
        let copy = copy_base(10, 11, src);
        assert_eq!(email_key(&copy), key);
        // A copy of a copy still carries the first key.
        assert_eq!(email_key(&copy_base(10, 11, &copy)), key);
        // Another message has another key.
        assert_ne!(email_key("1700000000.M1P2Q4.host,S=10,W=11:2,S"), key);
        // A malformed carried key is ignored: the id comes from the unique part.
        assert_eq!(
            email_key("1700000000.M1P2Q3.host,S=10,E=XYZ"),
            email_key("1700000000.M1P2Q3.host,S=10")
        );
    }

    #[test]
    fn dovecots_mailbox_guid_is_adopted() {
        let g = "3085f01b7f11094c501100008c4a11c1";
        assert_eq!(
            guid_of_header(&format!("3 V1275660208 N25022 G{g}\n")).as_deref(),
            Some(g)
        );
        assert_eq!(guid_of_header("1 1275660208 25022\n"), None);
        assert_eq!(guid_of_header("3 V1 N2 G2f1c8e0b\n"), None, "not 128 bits");
        assert_eq!(guid_of_header("3 V1 N2\n"), None);
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        std::fs::write(
            dir.path().join("dovecot-uidlist"),
            format!("3 V1 N1 G{g}\n"),
        )
        .expect("write uidlist");
        assert_eq!(mailbox_id(dir.path(), false).expect("id"), g);
        // Kept in our file from then on.
        std::fs::remove_file(dir.path().join("dovecot-uidlist")).expect("rm");
        assert_eq!(mailbox_id(dir.path(), false).expect("id"), g);
        // Without a uidlist: a new random id, the same when asked again.
        let other = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(other.path().join("cur")).expect("mkdir");
        let id = mailbox_id(other.path(), true).expect("id");
        assert!(
            is_object_id(&id) && id.starts_with('F') && id.len() == 25,
            "{id}"
        );
        assert_eq!(mailbox_id(other.path(), true).expect("id"), id);
        // A damaged file is replaced.
        std::fs::write(other.path().join(MAILBOX_ID_FILE), "not an id!\n").expect("write");
        let new = mailbox_id(other.path(), false).expect("id");
        assert!(is_object_id(&new) && new != id);
    }

    #[test]
    fn object_ids_are_valid_and_the_save_date_is_the_name_time() {
        let o = object_of(7, "1234567890.M1P2Q3.host,S=10:2,");
        assert!(is_object_id(&o.email_id));
        assert!(o.email_id.starts_with('M'));
        assert_eq!(o.save_date, Some(1_234_567_890));
        assert_eq!(o.thread_id, None);
        assert_eq!(object_of(7, "weird-name:2,").save_date, None);
    }
}
