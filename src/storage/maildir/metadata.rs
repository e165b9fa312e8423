//! METADATA (RFC 5464) in a Maildir: one file per mailbox, `mailcove-metadata` in the mailbox's
//! directory (next to `mailcove-mailboxid`; INBOX's in the root), and the user's server entries
//! in `mailcove-server-metadata` in the root. RENAME moves the directory and so the entries;
//! DELETE removes the directory, so a mailbox created again has none. Each change rewrites the
//! file whole (temp file, fsync, rename, directory fsync) under the per-user lock, which also
//! makes the per-user byte total ([`crate::limits::MAX_METADATA_USER_BYTES`]) exact across
//! processes.
//!
//! The format is binary-safe, since a value may be a `literal8` with any octet:
//!
//! ```text
//! mailcove-metadata 1\n
//! <entry name>\t<value length>\n<value octets>\n     (once per entry, in name order)
//! ```
//!
//! An entry name never holds a tab or a newline (RFC 5464 3.2 forbids octets below 0x20).

use std::path::{Path, PathBuf};

use super::fsutil::{fsync_dir, read_small, write_atomic};
use super::user::UserCtx;
use crate::limits::{MAX_METADATA_ENTRIES, MAX_METADATA_USER_BYTES};
use crate::storage::metadata::{MetadataChange, MetadataMap, apply, map_bytes};
use crate::storage::names::MailboxName;
use crate::storage::{Result, StorageError};

/// The per-mailbox file.
pub(crate) const METADATA_FILE: &str = "mailcove-metadata";
/// The per-user file of the server entries, in the root.
pub(crate) const SERVER_METADATA_FILE: &str = "mailcove-server-metadata";
/// First line of both files.
const HEADER: &[u8] = b"mailcove-metadata 1\n";
/// Most octets a file may have: every entry's bytes plus its line (a name's length is counted
/// in the bytes; the tab, the digits and two newlines are at most 24 more).
const MAX_FILE_BYTES: usize = HEADER.len() + MAX_METADATA_USER_BYTES + MAX_METADATA_ENTRIES * 24;

/// The file's bytes for `map`.
pub(crate) fn encode(map: &MetadataMap) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    for (name, value) in map {
        out.extend_from_slice(name.as_bytes());
        out.push(b'\t');
        out.extend_from_slice(value.len().to_string().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// The map in a file's bytes; `None` when they are not what [`encode`] writes.
pub(crate) fn decode(data: &[u8]) -> Option<MetadataMap> {
    let mut rest = data.strip_prefix(HEADER)?;
    let mut map = MetadataMap::new();
    while !rest.is_empty() {
        let nl = memchr::memchr(b'\n', rest)?;
        let line = std::str::from_utf8(rest.get(..nl)?).ok()?;
        let (name, len) = line.split_once('\t')?;
        let len: usize = len.parse().ok()?;
        let value = rest.get(nl + 1..nl + 1 + len)?;
        if rest.get(nl + 1 + len) != Some(&b'\n') || name.is_empty() {
            return None;
        }
        map.insert(name.to_owned(), value.to_vec());
        rest = rest.get(nl + len + 2..)?;
    }
    Some(map)
}

/// The entries in `path`, none when the file is missing.
fn read(path: &Path) -> Result<MetadataMap> {
    let Some(data) = read_small(path, MAX_FILE_BYTES)? else {
        return Ok(MetadataMap::new());
    };
    decode(&data).ok_or_else(|| StorageError::Corrupt(format!("{} is unreadable", path.display())))
}

/// Writes `map` to `path` durably; an empty map removes the file.
fn write(path: &Path, map: &MetadataMap, fsync: bool) -> Result<()> {
    if !map.is_empty() {
        return write_atomic(path, &encode(map), fsync);
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::io("remove metadata", e)),
    }
    if fsync && let Some(dir) = path.parent() {
        fsync_dir(dir).map_err(|e| StorageError::io("fsync metadata", e))?;
    }
    Ok(())
}

impl UserCtx {
    /// The file of a mailbox's entries (`Some`) or of the server entries (`None`), checking
    /// that the mailbox exists.
    fn metadata_path(&self, mailbox: Option<&str>) -> Result<PathBuf> {
        let Some(name) = mailbox else {
            return Ok(self.root.join(SERVER_METADATA_FILE));
        };
        let n = self.parse(name, false)?;
        let dir = self.dir_of(&n);
        if !dir.join("cur").is_dir() {
            return Err(StorageError::NonExistent);
        }
        Ok(dir.join(METADATA_FILE))
    }

    pub(super) fn metadata_get(&self, mailbox: Option<&str>) -> Result<MetadataMap> {
        read(&self.metadata_path(mailbox)?)
    }

    pub(super) fn metadata_set(
        &self,
        mailbox: Option<&str>,
        changes: Vec<MetadataChange>,
    ) -> Result<()> {
        let path = self.metadata_path(mailbox)?;
        let _l = self.user_lock()?;
        let mut map = read(&path)?;
        let others = self.metadata_bytes_except(&path)?;
        apply(&mut map, changes, others)?;
        write(&path, &map, self.fsync())
    }

    /// What every metadata file of the user but `except` counts towards the user's total.
    fn metadata_bytes_except(&self, except: &Path) -> Result<u64> {
        let mut files = vec![
            self.root.join(SERVER_METADATA_FILE),
            self.root.join(METADATA_FILE),
        ];
        let rd =
            std::fs::read_dir(&self.root).map_err(|e| StorageError::io("list mailboxes", e))?;
        for ent in rd {
            let ent = ent.map_err(|e| StorageError::io("list mailboxes", e))?;
            if ent.file_name().as_encoded_bytes().first() == Some(&b'.') {
                files.push(ent.path().join(METADATA_FILE));
            }
        }
        let mut total = 0u64;
        for f in files.iter().filter(|f| f.as_path() != except) {
            total = total.saturating_add(map_bytes(&read(f)?));
        }
        Ok(total)
    }

    /// RENAME of INBOX (RFC 5464 4.1): the new mailbox gets a copy of INBOX's entries, and
    /// INBOX keeps them.
    pub(super) fn metadata_copy_inbox(&self, to: &MailboxName) -> Result<()> {
        let _l = self.user_lock()?;
        let map = read(&self.root.join(METADATA_FILE))?;
        if map.is_empty() {
            return Ok(());
        }
        let path = self.dir_of(to).join(METADATA_FILE);
        let others = self.metadata_bytes_except(&path)?;
        let mut copy = MetadataMap::new();
        apply(
            &mut copy,
            map.into_iter().map(|(k, v)| (k, Some(v))).collect(),
            others,
        )?;
        write(&path, &copy, self.fsync())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_binary_values_and_refuse_damage() {
        let mut m = MetadataMap::new();
        m.insert("/private/a".into(), b"line 1\r\nline 2".to_vec());
        m.insert("/shared/b".into(), vec![0, b'\n', b'\t', 255]);
        m.insert("/shared/empty".into(), Vec::new());
        let data = encode(&m);
        assert_eq!(decode(&data), Some(m));
        assert_eq!(decode(HEADER), Some(MetadataMap::new()));
        let cut = data.get(..data.len() - 1).expect("non-empty");
        assert_eq!(decode(cut), None);
        assert_eq!(decode(b"other 1\n"), None);
        assert_eq!(decode(b"mailcove-metadata 1\n/a\t99\nshort\n"), None);
    }
}
