//! One client connection: the byte stream (plain or TLS), a bounded read buffer, an output buffer,
//! and the one STARTTLS/STLS upgrade path shared by IMAP and POP3.
//!
//! Buffers start empty and give memory back after a large command, because an idle connection should
//! cost a few kilobytes, not the size of the biggest command it ever sent.
//!
//! After IMAP `COMPRESS DEFLATE` the connection carries a [`Deflate`] layer between these buffers
//! and the stream: [`Conn::fill`] inflates into the read buffer (no more than it would have read),
//! [`Conn::flush`] and [`Conn::send_direct`] compress what they write. Code above `Conn` is the
//! same with and without compression.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::deflate::Deflate;
use super::sessions::Live;
use crate::limits;

/// The transport under a session.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
    /// A Unix domain socket (LMTP from a local MTA).
    Unix(UnixStream),
    /// Only during an upgrade: the stream has been moved into the handshake.
    Upgrading,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }
}

/// What a line read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its CRLF (or bare LF).
    Complete(Vec<u8>),
    /// The line was longer than allowed; it has been read and thrown away up to its end.
    TooLong,
    /// The peer closed the connection.
    Eof,
}

/// Facts about a connection fixed when it was accepted.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Process-unique connection number, for logs.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
    /// The client connects from loopback and the listener is not flagged `assume_remote`.
    pub loopback: bool,
    /// A trusted proxy's PROXY v2 header says the client reached it over TLS (`PP2_TYPE_SSL`):
    /// the proxy terminated TLS, so plaintext credentials are as safe as on our own TLS.
    pub tls_by_proxy: bool,
}

/// A client connection with its buffers.
pub struct Conn {
    stream: Stream,
    rbuf: Vec<u8>,
    rpos: usize,
    out: Vec<u8>,
    /// Fixed facts.
    pub info: ConnInfo,
    write_timeout: Duration,
    /// COMPRESS=DEFLATE (RFC 4978), once the client turned it on.
    deflate: Option<Box<Deflate>>,
    /// The session's entry in the live-session registry (`mailcove who`/`kick`), when registered:
    /// bytes in and out are counted here as protocol bytes (inside TLS, and uncompressed
    /// under COMPRESS=DEFLATE).
    pub live: Option<Arc<Live>>,
}

/// Capacity a buffer may keep while idle; anything above is given back.
const IDLE_BUFFER_KEEP: usize = 4096;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 4096;

impl Conn {
    /// Wraps an accepted stream.
    pub fn new(stream: Stream, info: ConnInfo) -> Self {
        Conn {
            stream,
            rbuf: Vec::new(),
            rpos: 0,
            out: Vec::new(),
            info,
            write_timeout: Duration::from_secs(limits::MIN_POP3_IDLE_SECS),
            deflate: None,
            live: None,
        }
    }

    /// The token `mailcove kick` cancels; one that never fires when the session is not registered.
    pub fn kick_token(&self) -> CancellationToken {
        match &self.live {
            Some(l) => l.kick_token(),
            None => CancellationToken::new(),
        }
    }

    /// Counts one client command for `mailcove who` and the session-end log line.
    pub fn count_command(&self) {
        if let Some(l) = &self.live {
            l.add_command();
        }
    }

    /// Records why the session ends (the first reason recorded wins).
    pub fn set_end(&self, reason: super::sessions::EndReason) {
        if let Some(l) = &self.live {
            l.set_end(reason);
        }
    }

    fn count_in(&self, n: usize) {
        if let Some(l) = &self.live {
            l.add_in(n);
        }
    }

    fn count_out(&self, n: usize) {
        if let Some(l) = &self.live {
            l.add_out(n);
        }
    }

    /// Sets how long a write may block on a client that reads nothing before the connection fails.
    pub fn set_write_timeout(&mut self, t: Duration) {
        self.write_timeout = t;
    }

    /// True once TLS is active, by implicit TLS or an upgrade.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// The `tls-exporter` channel binding of this connection (RFC 9266: label
    /// `EXPORTER-Channel-Binding`, empty context, 32 bytes), on TLS 1.3 only: RFC 9266 section 2
    /// defines it for TLS 1.2 only with extended master secret, which rustls does not report.
    /// `None` without TLS, so SCRAM -PLUS is neither offered nor accepted there.
    pub fn tls_exporter(&self) -> Option<[u8; crate::auth::scram::TLS_EXPORTER_LEN]> {
        let Stream::Tls(tls) = &self.stream else {
            return None;
        };
        let (_, session) = tls.get_ref();
        if session.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            return None;
        }
        session
            .export_keying_material(
                [0u8; crate::auth::scram::TLS_EXPORTER_LEN],
                crate::auth::scram::TLS_EXPORTER_LABEL,
                Some(&[]),
            )
            .ok()
    }

    /// True once COMPRESS=DEFLATE is active.
    pub fn is_compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// Turns on DEFLATE both ways (RFC 4978). Call after the tagged OK of COMPRESS has been
    /// flushed, uncompressed. Bytes already received after the command are the start of the
    /// client's compressed stream (as in Dovecot, which stacks its inflater on the buffered
    /// input), so they move from the read buffer into the inflater.
    pub fn start_deflate(&mut self) {
        let pending = self.rbuf.split_off(self.rpos);
        self.rbuf = Vec::new();
        self.rpos = 0;
        self.deflate = Some(Box::new(Deflate::new(pending)));
    }

    /// True when plaintext credentials may be sent: over TLS, or from loopback.
    pub fn is_secure(&self) -> bool {
        self.is_tls() || self.info.loopback || self.info.tls_by_proxy
    }

    /// Unconsumed bytes received so far.
    pub fn buffered(&self) -> &[u8] {
        &self.rbuf[self.rpos..]
    }

    /// Marks `n` buffered bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.rpos = (self.rpos + n).min(self.rbuf.len());
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
            if self.rbuf.capacity() > IDLE_BUFFER_KEEP {
                self.rbuf = Vec::new();
            }
        }
    }

    /// Reads more bytes into the buffer, keeping at most `max_buffered` unconsumed bytes.
    /// Returns the number read; 0 means end of stream. Errors with `InvalidData` when the buffer is
    /// already full, so a caller that does not consume cannot make it grow without bound.
    ///
    /// Cancel-safe: bytes land in the buffer only once a read has completed, so it can race other
    /// futures in `select!` (IDLE waits on the client and the mailbox at once).
    pub async fn fill(&mut self, max_buffered: usize) -> io::Result<usize> {
        if self.rpos > 0 && self.rpos * 2 >= self.rbuf.len() {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        let have = self.rbuf.len() - self.rpos;
        if have >= max_buffered {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "input buffer limit reached",
            ));
        }
        let want = READ_CHUNK.min(max_buffered - have).max(1);
        let mut chunk = [0u8; READ_CHUNK];
        if let Some(z) = self.deflate.as_deref_mut() {
            // Waiting for input ends the response burst: give the compressor back.
            z.idle();
            loop {
                let n = z.inflate(&mut chunk[..want])?;
                if n > 0 {
                    self.rbuf.extend_from_slice(&chunk[..n]);
                    crate::metrics::bytes_in(n);
                    self.count_in(n);
                    return Ok(n);
                }
                if z.ended() {
                    return Ok(0);
                }
                if !z.wants_input() {
                    // Input is pending yet produced nothing: the inflater can make no progress.
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "DEFLATE stream stalled",
                    ));
                }
                // Cancel-safe as below: received bytes reach the inflater only after the read.
                let mut zchunk = [0u8; READ_CHUNK];
                let got = self.stream.read(&mut zchunk).await?;
                if got == 0 {
                    return Ok(0);
                }
                z.push_input(&zchunk[..got]);
            }
        }
        let n = self.stream.read(&mut chunk[..want]).await?;
        self.rbuf.extend_from_slice(&chunk[..n]);
        crate::metrics::bytes_in(n);
        self.count_in(n);
        Ok(n)
    }

    /// Reads one line of at most `max` bytes (without its line end). A longer line is read to its
    /// end and discarded, so the stream stays in step. Accepts CRLF and bare LF.
    pub async fn read_line(&mut self, max: usize) -> io::Result<Line> {
        let mut discarding = false;
        let mut scanned = 0;
        loop {
            let buf = self.buffered();
            if let Some(pos) = buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + pos;
                if discarding || end > max + 1 {
                    self.consume(end + 1);
                    return Ok(Line::TooLong);
                }
                let mut line = buf[..end].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.consume(end + 1);
                if line.len() > max {
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Complete(line));
            }
            scanned = buf.len();
            if buf.len() > max + 1 {
                // Keep the last byte: it may be the CR of a CRLF split across reads.
                let n = buf.len() - 1;
                self.consume(n);
                scanned = 1;
                discarding = true;
            }
            if self.fill(max + READ_CHUNK).await? == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// Queues bytes for sending.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// The output buffer, for writers that format straight into it.
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            crate::metrics::bytes_out(out.len());
            let sent = out.len();
            let (stream, deflate) = (&mut self.stream, &mut self.deflate);
            let res = tokio::time::timeout(self.write_timeout, async {
                match deflate.as_deref_mut() {
                    Some(z) => z.write(stream, &out).await?,
                    None => stream.write_all(&out).await?,
                }
                stream.flush().await
            })
            .await;
            self.out = out;
            self.out.clear();
            if self.out.capacity() > IDLE_BUFFER_KEEP {
                self.out = Vec::new();
            }
            match res {
                Ok(r) => {
                    r?;
                    self.count_out(sent);
                }
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client stopped reading",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Queues `bytes` and sends everything queued.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.queue(bytes);
        self.flush().await
    }

    /// Sends `bytes` directly, after what is queued (for streaming large bodies without copying them
    /// into the output buffer).
    pub async fn send_direct(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.flush().await?;
        crate::metrics::bytes_out(bytes.len());
        let (stream, deflate) = (&mut self.stream, &mut self.deflate);
        let write = async {
            match deflate.as_deref_mut() {
                // Compressed in bounded pieces, each burst ending with a sync flush.
                Some(z) => z.write(stream, bytes).await,
                None => stream.write_all(bytes).await,
            }
        };
        match tokio::time::timeout(self.write_timeout, write).await {
            Ok(r) => {
                r?;
                self.count_out(bytes.len());
                Ok(())
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client stopped reading",
            )),
        }
    }

    /// True when [`Conn::send_file`] can send a file range without reading it: plain TCP without
    /// COMPRESS (TLS and DEFLATE need the bytes in user space).
    pub fn can_send_file(&self) -> bool {
        matches!(self.stream, Stream::Plain(_)) && self.deflate.is_none()
    }

    /// Sends `len` bytes at `offset` of `file` after what is queued, with `sendfile(2)`: from the
    /// page cache to the socket, no copy through user space. Only when
    /// [`Conn::can_send_file`]; the bytes must be exactly what goes on the wire, and the file
    /// must hold all of them (a shorter file is an error, after part of the range went out).
    pub async fn send_file(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> io::Result<()> {
        self.flush().await?;
        let Stream::Plain(tcp) = &self.stream else {
            return Err(io::Error::other("sendfile needs a plain TCP connection"));
        };
        if self.deflate.is_some() {
            return Err(io::Error::other("sendfile cannot go under COMPRESS"));
        }
        let end = offset.saturating_add(len as u64);
        let mut off =
            i64::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let write = async {
            while u64::try_from(off).unwrap_or(u64::MAX) < end {
                let want = usize::try_from(end - off as u64).unwrap_or(usize::MAX);
                let n = tcp
                    .async_io(tokio::io::Interest::WRITABLE, || {
                        // The kernel reads from `off` and advances it.
                        nix::sys::sendfile::sendfile(tcp, file, Some(&mut off), want)
                            .map_err(io::Error::from)
                    })
                    .await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shorter than the range sent from it",
                    ));
                }
            }
            Ok(())
        };
        match tokio::time::timeout(self.write_timeout, write).await {
            Ok(r) => {
                r?;
                crate::metrics::bytes_out(len);
                self.count_out(len);
                Ok(())
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client stopped reading",
            )),
        }
    }

    /// Upgrades a plain connection to TLS (STARTTLS, STLS). Everything the client sent after the
    /// command and before the handshake is discarded unread: executing it would let an attacker
    /// inject commands into the protected session (CVE-2011-0411 class).
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        if self.deflate.is_some() {
            // RFC 4978 section 3: TLS goes under compression, never on top of it.
            return Err(io::Error::other("TLS cannot start inside COMPRESS"));
        }
        self.rbuf = Vec::new();
        self.rpos = 0;
        self.flush().await?;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(io::Error::other("TLS is already active"));
        };
        let hs = tokio::time::timeout(
            Duration::from_secs(limits::TLS_HANDSHAKE_SECS),
            acceptor.accept(tcp),
        )
        .await;
        match hs {
            Ok(Ok(tls)) => {
                self.stream = Stream::Tls(Box::new(tls));
                if let Some(l) = &self.live {
                    l.set_tls();
                }
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }

    /// Flushes and closes the write side.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stream.shutdown()).await;
    }
}

/// Accepts TLS on a freshly accepted socket (implicit TLS listeners).
pub async fn accept_tls(tcp: TcpStream, acceptor: &TlsAcceptor) -> io::Result<Stream> {
    match tokio::time::timeout(
        Duration::from_secs(limits::TLS_HANDSHAKE_SECS),
        acceptor.accept(tcp),
    )
    .await
    {
        Ok(Ok(tls)) => Ok(Stream::Tls(Box::new(tls))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}
