//! TEMPORARY: the maildrop snapshot, to be built on the storage trait.
use super::response::Pop3Error;
use crate::auth::UserInfo;
use crate::server::Shared;
use crate::server::conn::Conn;
use crate::storage::StorageError;
use std::sync::Arc;

/// One message of the snapshot.
pub struct Entry {
    /// Storage UID.
    pub uid: u32,
    /// Octets RETR sends.
    pub size: u64,
    /// DELE'd in this session.
    pub deleted: bool,
}

/// The snapshot.
pub struct Maildrop {
    entries: Vec<Entry>,
}

impl Maildrop {
    /// Opens.
    pub async fn open(_s: &Arc<Shared>, _u: &UserInfo) -> Result<Maildrop, Pop3Error> {
        Ok(Maildrop {
            entries: Vec::new(),
        })
    }
    /// Count.
    pub fn count(&self) -> usize {
        self.entries.len()
    }
    /// Live count and size.
    pub fn stat(&self) -> (usize, u64) {
        let live = self.entries.iter().filter(|e| !e.deleted);
        let mut n = 0;
        let mut size = 0;
        for e in live {
            n += 1;
            size += e.size;
        }
        (n, size)
    }
    /// A live entry.
    pub fn live(&self, n: u32) -> Result<&Entry, Pop3Error> {
        match self.entries.get((n as usize).wrapping_sub(1)) {
            None => Err(Pop3Error::NoSuchMessage(n)),
            Some(e) if e.deleted => Err(Pop3Error::MessageDeleted(n)),
            Some(e) => Ok(e),
        }
    }
    /// Live entries with numbers.
    pub fn live_entries(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.deleted)
            .map(|(i, e)| (i + 1, e))
    }
    /// UIDL.
    pub fn uidl(&self, e: &Entry) -> String {
        format!("{:08x}", e.uid)
    }
    /// DELE.
    pub fn delete(&mut self, n: u32) {
        if let Some(e) = self.entries.get_mut((n as usize).wrapping_sub(1)) {
            e.deleted = true;
        }
    }
    /// RSET.
    pub fn reset(&mut self) {
        for e in &mut self.entries {
            e.deleted = false;
        }
    }
    /// RETR/TOP.
    pub async fn send(
        &mut self,
        _c: &mut Conn,
        _n: u32,
        _top: Option<u64>,
    ) -> Result<(), Pop3Error> {
        Err(Pop3Error::Storage(StorageError))
    }
    /// QUIT.
    pub async fn commit(&mut self) -> Result<usize, StorageError> {
        Ok(0)
    }
}
