//! A message received once and stored many times: LMTP DATA/BDAT for several recipients, and
//! `mailcove deliver`'s stdin.
//!
//! A small message stays in memory (up to [`SPOOL_MEMORY_MAX`], and only while the global
//! in-flight budget allows: its bytes are held in an [`inflight::Permit`]); a larger one moves to
//! an unlinked temporary file (`O_TMPFILE` in the system temporary directory, `TMPDIR`), which
//! the kernel frees when the last descriptor closes, so an aborted transfer or a crash leaves
//! nothing behind. The spool is a delivery concern: storage only ever sees the bytes, read back
//! in chunks of [`INCOMING_MESSAGE_CHUNK`] and written to an `AppendStream`.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::inflight::{self, Permit};
use crate::limits::{INCOMING_MESSAGE_CHUNK, SPOOL_MEMORY_MAX};

/// A message being received (see the module documentation).
#[derive(Debug)]
pub struct Spool {
    mem: Vec<u8>,
    file: Option<Arc<File>>,
    len: u64,
    permit: Permit,
    budget_limit: u64,
}

/// A received message, ready to be read any number of times (shared by the recipients' tasks).
#[derive(Debug, Clone)]
pub struct Spooled {
    data: SpooledData,
    len: u64,
}

#[derive(Debug, Clone)]
enum SpooledData {
    Memory {
        data: Bytes,
        /// The budget its bytes hold until every reader is done.
        _permit: Arc<Permit>,
    },
    File(Arc<File>),
}

/// Creates an unlinked temporary file: `O_TMPFILE` where the file system supports it, else a
/// uniquely named file removed right after it is opened.
fn unlinked_file(dir: &Path) -> io::Result<File> {
    let tmpfile = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    match tmpfile {
        Ok(f) => Ok(f),
        Err(_) => {
            let name = dir.join(format!(
                ".mailcove-spool-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&name)?;
            std::fs::remove_file(&name)?;
            Ok(f)
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("spool worker failed: {e}")))?
}

impl Spool {
    /// An empty spool whose memory counts against the process's in-flight budget, bounded by
    /// `budget_limit` (`limits.max_inflight_message_bytes`).
    pub fn new(budget_limit: u64) -> Spool {
        Spool {
            mem: Vec::new(),
            file: None,
            len: 0,
            permit: Permit::empty(inflight::global()),
            budget_limit,
        }
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing was received.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True once the message moved to a temporary file.
    pub fn on_disk(&self) -> bool {
        self.file.is_some()
    }

    /// Adds bytes at the end.
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            let fits = self.mem.len().saturating_add(data.len()) <= SPOOL_MEMORY_MAX
                && self.permit.try_grow(data.len() as u64, self.budget_limit);
            if fits {
                self.mem.extend_from_slice(data);
                self.len += data.len() as u64;
                return Ok(());
            }
            // Too large for memory, or the budget is spent: move to a file.
            let mut first = std::mem::take(&mut self.mem);
            first.extend_from_slice(data);
            let file = blocking(move || {
                let f = unlinked_file(&std::env::temp_dir())?;
                f.write_all_at(&first, 0)?;
                Ok(f)
            })
            .await?;
            self.permit.release();
            self.file = Some(Arc::new(file));
            self.len += data.len() as u64;
            return Ok(());
        }
        let file = self
            .file
            .clone()
            .ok_or_else(|| io::Error::other("no spool"))?;
        let (chunk, at) = (data.to_vec(), self.len);
        blocking(move || file.write_all_at(&chunk, at)).await?;
        self.len += data.len() as u64;
        Ok(())
    }

    /// The whole message, for reading.
    pub fn finish(self) -> Spooled {
        let len = self.len;
        let data = match self.file {
            Some(f) => SpooledData::File(f),
            None => SpooledData::Memory {
                data: Bytes::from(self.mem),
                _permit: Arc::new(self.permit),
            },
        };
        Spooled { data, len }
    }
}

impl Spooled {
    /// The message's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Up to [`INCOMING_MESSAGE_CHUNK`] bytes from `offset` (empty at the end).
    pub async fn read_chunk(&self, offset: u64) -> io::Result<Bytes> {
        let left = self.len.saturating_sub(offset);
        let want =
            usize::try_from(left).map_or(INCOMING_MESSAGE_CHUNK, |l| l.min(INCOMING_MESSAGE_CHUNK));
        if want == 0 {
            return Ok(Bytes::new());
        }
        match &self.data {
            SpooledData::Memory { data: b, .. } => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                Ok(b.slice(start..(start + want).min(b.len())))
            }
            SpooledData::File(f) => {
                let f = f.clone();
                blocking(move || {
                    let mut buf = vec![0u8; want];
                    f.read_exact_at(&mut buf, offset)?;
                    Ok(Bytes::from(buf))
                })
                .await
            }
        }
    }

    /// Calls `sink` with the message in chunks, in order.
    pub async fn for_each_chunk<F, Fut, E>(&self, mut sink: F) -> Result<(), E>
    where
        F: FnMut(Bytes) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
        E: From<io::Error>,
    {
        let mut offset = 0;
        while offset < self.len {
            let chunk = self.read_chunk(offset).await?;
            if chunk.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "spool shrank").into());
            }
            offset += chunk.len() as u64;
            sink(chunk).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(s: &Spooled) -> Vec<u8> {
        let mut out = Vec::new();
        s.for_each_chunk(|c| {
            out.extend_from_slice(&c);
            async { Ok::<_, io::Error>(()) }
        })
        .await
        .expect("read back");
        out
    }

    #[tokio::test]
    async fn small_messages_stay_in_memory_large_ones_spill() {
        let mut s = Spool::new(u64::MAX);
        s.write(b"hello ").await.expect("write");
        s.write(b"world").await.expect("write");
        assert!(!s.on_disk());
        let small = s.finish();
        assert_eq!(read_all(&small).await, b"hello world");

        let block: Vec<u8> = (0..=255u8).cycle().take(100_003).collect();
        let mut s = Spool::new(u64::MAX);
        let mut want = Vec::new();
        for _ in 0..5 {
            s.write(&block).await.expect("write");
            want.extend_from_slice(&block);
        }
        assert!(s.on_disk(), "500 kB is over SPOOL_MEMORY_MAX");
        let big = s.finish();
        assert_eq!(big.len(), want.len() as u64);
        assert_eq!(read_all(&big).await, want);
        // Read twice: every recipient gets the same bytes.
        assert_eq!(read_all(&big).await, want);
    }

    #[tokio::test]
    async fn a_spent_budget_sends_even_small_messages_to_disk() {
        let mut s = Spool::new(0);
        s.write(b"x").await.expect("write");
        assert!(s.on_disk());
        assert_eq!(read_all(&s.finish()).await, b"x");
    }
}
