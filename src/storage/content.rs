//! A stored message's bytes as they cross the storage trait: an async source readable by range
//! ([`MessageContent`]), never a file descriptor or a path.
//!
//! A backend hands out one [`Message`] per opened message ([`super::MailboxHandle::open_message`])
//! and reads many messages at once for parsing ([`super::MailboxHandle::read_messages`]). How the
//! bytes are fetched (page-cache reads on the runtime thread, blocking workers, memory) is the
//! backend's business: the protocol layers only ask for ranges, first with
//! [`MessageContent::read_now`] (answered at once when no waiting is needed) and otherwise with
//! [`MessageContent::read_at`].

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Result, header_end};

/// A stored message's bytes, readable by range. What a backend hands out for one message.
#[async_trait]
pub trait MessageContent: Send + Sync + 'static {
    /// Bytes stored as the backend recorded them (the physical size). Readers that want the
    /// whole message read until a short read rather than trust this, since a damaged store may
    /// hold more or fewer bytes.
    fn len(&self) -> u64;

    /// True for an empty message.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads into `buf` at `offset` only if that can be done without waiting (memory, the page
    /// cache); `None` means "would wait: use [`MessageContent::read_at`]". A short count means
    /// the message ended. The default never reads.
    fn read_now(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize>> {
        let _ = (offset, buf);
        None
    }

    /// Reads up to `len` bytes at `offset` into `buf` (cleared first, its capacity reused) and
    /// hands it back; fewer bytes only at the end of the message.
    async fn read_at(&self, offset: u64, len: usize, buf: Vec<u8>) -> Result<Vec<u8>>;

    /// An open file whose bytes at every offset are the message's bytes at that offset, when the
    /// backend keeps the message in one (so a range that needs no conversion can go from the
    /// page cache to a socket with `sendfile(2)`, see [`super::stream::Pump::allow_file`]).
    /// `None` (the default) for content that is not a file.
    fn file(&self) -> Option<Arc<std::fs::File>> {
        None
    }
}

/// Bytes in memory are message content too (a backend that keeps messages in memory, tests).
#[async_trait]
impl MessageContent for Bytes {
    fn len(&self) -> u64 {
        Bytes::len(self) as u64
    }

    fn read_now(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize>> {
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = self.get(from..).unwrap_or_default();
        let n = src.len().min(buf.len());
        buf.get_mut(..n)?.copy_from_slice(src.get(..n)?);
        Some(Ok(n))
    }

    async fn read_at(&self, offset: u64, len: usize, mut buf: Vec<u8>) -> Result<Vec<u8>> {
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = self.get(from..).unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(src.get(..len.min(src.len())).unwrap_or_default());
        Ok(buf)
    }
}

/// The first bytes of a message, read along with its open.
#[derive(Debug, Default)]
pub struct Head {
    /// The bytes, from offset 0.
    pub bytes: Vec<u8>,
    /// The message ended within them: nothing more to read.
    pub complete: bool,
}

/// One opened message.
pub struct Message {
    /// The message UID.
    pub uid: u32,
    /// Bytes stored.
    pub phys_size: u64,
    /// Bytes after converting bare LF to CRLF (what a client is told and sent).
    pub virt_size: u64,
    /// The bytes, by range.
    pub content: Arc<dyn MessageContent>,
    /// First bytes read along with the open, when the opener asked for them
    /// ([`super::View::open_message`] with `max_head`), so a small message costs one trip to the
    /// backend.
    pub head: Head,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("uid", &self.uid)
            .field("phys_size", &self.phys_size)
            .field("virt_size", &self.virt_size)
            .field("head", &self.head.bytes.len())
            .finish()
    }
}

/// What [`super::MailboxHandle::read_messages`] returns of each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPart {
    /// The header through the blank line that ends it, at most
    /// [`crate::limits::MAX_HEADER_BYTES`] (a longer "header" is cut there).
    Header,
    /// The message from its start, at most `cap` bytes.
    Whole {
        /// Most bytes returned.
        cap: usize,
    },
}

impl Message {
    /// Up to `len` bytes at `offset` (fewer only at the end of the message): from the head when
    /// it holds them, else without waiting when the backend can, else by an async read.
    pub async fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        if let Some(held) = self.head.bytes.get(from..) {
            if held.len() >= len {
                return Ok(held.get(..len).unwrap_or_default().to_vec());
            }
            if self.head.complete {
                return Ok(held.to_vec());
            }
        }
        let mut buf = vec![0u8; len];
        if let Some(Ok(n)) = self.content.read_now(offset, &mut buf) {
            buf.truncate(n);
            return Ok(buf);
        }
        self.content.read_at(offset, len, buf).await
    }

    /// The whole message (to its actual end, whatever size was recorded). Tests and tools only:
    /// protocol code streams with [`super::stream::Pump`] instead.
    pub async fn read_all(&self) -> Result<Vec<u8>> {
        const STEP: usize = 64 * 1024;
        let mut out = Vec::new();
        loop {
            let got = self.read(out.len() as u64, STEP).await?;
            out.extend_from_slice(&got);
            if got.len() < STEP {
                return Ok(out);
            }
        }
    }

    /// The header, as [`ReadPart::Header`] describes it.
    pub async fn header(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut want = usize::try_from(self.phys_size).map_or(4096, |n| n.clamp(1, 4096));
        loop {
            let start = out.len();
            let got = self.read(start as u64, want).await?;
            let ended = got.len() < want;
            out.extend_from_slice(&got);
            if let Some(end) = header_end(&out, start.saturating_sub(3)) {
                out.truncate(end);
                return Ok(out);
            }
            if out.len() >= crate::limits::MAX_HEADER_BYTES {
                out.truncate(crate::limits::MAX_HEADER_BYTES);
                return Ok(out);
            }
            if ended {
                return Ok(out);
            }
            want = 16 * 1024;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(data: &'static [u8], head: usize) -> Message {
        let bytes = Bytes::from_static(data);
        Message {
            uid: 1,
            phys_size: data.len() as u64,
            virt_size: data.len() as u64,
            head: Head {
                bytes: data.get(..head).unwrap_or_default().to_vec(),
                complete: head >= data.len(),
            },
            content: Arc::new(bytes),
        }
    }

    #[tokio::test]
    async fn ranges_come_from_the_head_or_the_content() {
        let data = b"Subject: x\r\n\r\nbody\r\n";
        for head in [0, 3, 14, data.len()] {
            let m = message(data, head);
            assert_eq!(m.read(0, 7).await.ok(), Some(data[..7].to_vec()), "{head}");
            assert_eq!(
                m.read(9, 100).await.ok(),
                Some(data[9..].to_vec()),
                "{head}"
            );
            assert_eq!(m.read(99, 4).await.ok(), Some(Vec::new()), "{head}");
            assert_eq!(m.read_all().await.ok(), Some(data.to_vec()), "{head}");
            assert_eq!(m.header().await.ok(), Some(data[..14].to_vec()), "{head}");
        }
        let m = message(b"no blank line\r\n", 0);
        assert_eq!(m.header().await.ok(), Some(b"no blank line\r\n".to_vec()));
    }

    #[tokio::test]
    async fn bytes_read_at_reuses_and_clears_the_buffer() {
        let b = Bytes::from_static(b"0123456789");
        let got = b.read_at(8, 4, b"junk".to_vec()).await.ok();
        assert_eq!(got, Some(b"89".to_vec()));
        let mut buf = [0u8; 4];
        assert!(matches!(b.read_now(2, &mut buf), Some(Ok(4))));
        assert_eq!(&buf, b"2345");
        assert!(matches!(b.read_now(20, &mut buf), Some(Ok(0))));
    }
}
