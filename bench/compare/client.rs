//! Minimal async IMAP, POP3 and LMTP clients: just enough protocol to drive both servers the
//! same way and to count what comes back (literals are read by their announced length, so a
//! body can never be mistaken for a tagged answer).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::TcpStream;

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Any byte stream: plain TCP or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A line-oriented connection with a read buffer.
pub struct Conn {
    io: BufReader<Box<dyn Stream>>,
}

/// How long a single answer may take before the benchmark gives up on a server.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

fn err(msg: String) -> Box<dyn std::error::Error + Send + Sync> {
    msg.into()
}

impl Conn {
    pub async fn plain(port: u16) -> Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.set_nodelay(true)?;
        Ok(Conn {
            io: BufReader::with_capacity(64 * 1024, Box::new(s)),
        })
    }

    /// A plain connection to `127.0.0.1:port` from the loopback address `from` (port chosen by
    /// the kernel), with a small read buffer: row 19 holds up to 50,000 of these, more than one
    /// source address has ephemeral ports for (`net.ipv4.ip_local_port_range`, about 28,000).
    pub async fn plain_from(from: std::net::Ipv4Addr, port: u16) -> Result<Conn> {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind((from, 0).into())?;
        let s = sock
            .connect((std::net::Ipv4Addr::LOCALHOST, port).into())
            .await?;
        s.set_nodelay(true)?;
        Ok(Conn {
            io: BufReader::with_capacity(4 * 1024, Box::new(s)),
        })
    }

    pub async fn tls(port: u16, config: Arc<rustls::ClientConfig>) -> Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.set_nodelay(true)?;
        let name = rustls_pki_types::ServerName::try_from("localhost")?;
        let t = tokio_rustls::TlsConnector::from(config)
            .connect(name, s)
            .await?;
        Ok(Conn {
            io: BufReader::with_capacity(16 * 1024, Box::new(t)),
        })
    }

    /// Switches to raw DEFLATE both ways (RFC 4978) after `COMPRESS DEFLATE` was answered OK.
    /// Bytes already buffered past the OK are the start of the server's compressed stream.
    pub fn compress(&mut self) {
        let early = self.io.buffer().to_vec();
        let placeholder: Box<dyn Stream> = Box::new(tokio::io::duplex(1).0);
        let inner = std::mem::replace(&mut self.io, BufReader::new(placeholder)).into_inner();
        let z = Deflated {
            inner,
            c: flate2::Compress::new(flate2::Compression::new(6), false),
            d: flate2::Decompress::new(false),
            zin: early,
            zpos: 0,
            zout: Vec::new(),
            zout_pos: 0,
            dirty: false,
        };
        self.io = BufReader::with_capacity(16 * 1024, Box::new(z));
    }

    pub async fn send(&mut self, data: &[u8]) -> Result<()> {
        self.io.get_mut().write_all(data).await?;
        self.io.get_mut().flush().await?;
        Ok(())
    }

    /// Reads exactly `n` octets and throws them away, the way [`Conn`] reads an IMAP literal it
    /// does not keep (through the same read buffer), so a physical reference
    /// (`reference.rs`) costs its client what a server's literal does.
    pub async fn skip(&mut self, n: u64) -> Result<()> {
        let copied = tokio::time::timeout(
            ANSWER_TIMEOUT,
            tokio::io::copy(&mut (&mut self.io).take(n), &mut tokio::io::sink()),
        )
        .await??;
        if copied != n {
            return Err(err("connection closed".into()));
        }
        Ok(())
    }

    /// One line without CRLF; an error at EOF.
    pub async fn line(&mut self) -> Result<Vec<u8>> {
        let mut l = Vec::new();
        let n = tokio::time::timeout(ANSWER_TIMEOUT, self.io.read_until(b'\n', &mut l)).await??;
        if n == 0 {
            return Err(err("connection closed".into()));
        }
        while l.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            l.pop();
        }
        Ok(l)
    }

    /// One IMAP response line with its literals folded in, read into `line` (reused, so a
    /// 100,000-line answer costs no allocation per line); returns its octets and those inside
    /// literals. The literal bytes are kept only when `keep` is set, so 100,000 envelopes do
    /// not pile up. No timeout of its own: the caller bounds the whole answer.
    async fn imap_line_into(&mut self, keep: bool, line: &mut Vec<u8>) -> Result<(u64, u64)> {
        line.clear();
        let mut bytes = 0u64;
        let mut literal_bytes = 0u64;
        loop {
            let start = line.len();
            if self.io.read_until(b'\n', line).await? == 0 {
                return Err(err("connection closed".into()));
            }
            while line.len() > start && line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            bytes += (line.len() - start) as u64 + 2;
            let literal = literal_len(&line[start..]);
            match literal {
                Some(n) => {
                    bytes += n;
                    literal_bytes += n;
                    if keep {
                        let mut buf = vec![0; n as usize];
                        self.io.read_exact(&mut buf).await?;
                        line.extend_from_slice(&buf);
                    } else {
                        let copied =
                            tokio::io::copy(&mut (&mut self.io).take(n), &mut tokio::io::sink())
                                .await?;
                        if copied != n {
                            return Err(err("literal cut short".into()));
                        }
                    }
                }
                None => return Ok((bytes, literal_bytes)),
            }
        }
    }
}

/// Raw DEFLATE over another stream, the client side of COMPRESS=DEFLATE: writes are compressed
/// and sync-flushed on `flush`, reads inflate what arrives.
struct Deflated {
    inner: Box<dyn Stream>,
    c: flate2::Compress,
    d: flate2::Decompress,
    /// Compressed bytes received, inflated from `zpos` on.
    zin: Vec<u8>,
    zpos: usize,
    /// Compressed bytes not written yet, from `zout_pos` on.
    zout: Vec<u8>,
    zout_pos: usize,
    /// Input taken since the last sync flush.
    dirty: bool,
}

fn bad_data(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

impl Deflated {
    /// Compresses `data` (all of it, and with `flush` until the output had room to spare).
    fn deflate(&mut self, data: &[u8], flush: flate2::FlushCompress) -> std::io::Result<()> {
        let mut rest = data;
        loop {
            self.zout.reserve(rest.len() / 2 + 1024);
            let before = self.c.total_in();
            self.c
                .compress_vec(rest, &mut self.zout, flush)
                .map_err(bad_data)?;
            rest = &rest[(self.c.total_in() - before) as usize..];
            if rest.is_empty() && self.zout.len() < self.zout.capacity() {
                return Ok(());
            }
        }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.zout_pos < self.zout.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.zout[self.zout_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.zout_pos += n;
        }
        self.zout.clear();
        self.zout_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Deflated {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            let out = buf.initialize_unfilled();
            if out.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let (in0, out0) = (this.d.total_in(), this.d.total_out());
            this.d
                .decompress(&this.zin[this.zpos..], out, flate2::FlushDecompress::None)
                .map_err(bad_data)?;
            let used = (this.d.total_in() - in0) as usize;
            let made = (this.d.total_out() - out0) as usize;
            this.zpos += used;
            if made > 0 {
                buf.advance(made);
                return Poll::Ready(Ok(()));
            }
            if this.zpos < this.zin.len() {
                if used == 0 {
                    return Poll::Ready(Err(bad_data("inflate stalled")));
                }
                continue;
            }
            this.zin.clear();
            this.zin.resize(16 * 1024, 0);
            this.zpos = 0;
            let mut rb = ReadBuf::new(&mut this.zin);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut rb);
            let n = rb.filled().len();
            this.zin.truncate(n);
            ready!(polled)?;
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl AsyncWrite for Deflated {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.zout.len() - this.zout_pos > 64 * 1024 {
            ready!(this.poll_drain(cx))?;
        }
        this.deflate(data, flate2::FlushCompress::None)?;
        this.dirty = true;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.dirty {
            this.deflate(&[], flate2::FlushCompress::Sync)?;
            this.dirty = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// `{n}` or `{n+}` at the end of a line.
fn literal_len(line: &[u8]) -> Option<u64> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// What a tagged IMAP command returned.
#[derive(Default, Debug)]
pub struct Answer {
    /// Untagged lines (literals folded in when kept).
    pub untagged: Vec<Vec<u8>>,
    pub untagged_count: u64,
    pub bytes: u64,
    /// Octets inside literals only (server-independent, unlike the text around them).
    pub literal_bytes: u64,
    pub status: String,
}

impl Answer {
    /// The numbers of `* SEARCH` lines.
    pub fn search_hits(&self) -> usize {
        self.untagged
            .iter()
            .filter(|l| l.starts_with(b"* SEARCH"))
            .map(|l| l.split(|&b| b == b' ').count().saturating_sub(2))
            .sum()
    }
    /// `* n EXISTS` if present.
    pub fn exists(&self) -> Option<u64> {
        self.untagged.iter().find_map(|l| parse_exists(l))
    }
}

/// `n` of a `* n EXISTS` line.
pub fn parse_exists(l: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(l).ok()?;
    let rest = s.strip_prefix("* ")?.strip_suffix(" EXISTS")?;
    rest.parse().ok()
}

/// An IMAP client on one connection.
pub struct Imap {
    pub c: Conn,
    tag: u64,
}

impl Imap {
    pub async fn connect(port: u16) -> Result<Imap> {
        let mut c = Conn::plain(port).await?;
        let g = c.line().await?;
        if !g.starts_with(b"* OK") {
            return Err(err(format!("greeting: {}", String::from_utf8_lossy(&g))));
        }
        Ok(Imap { c, tag: 0 })
    }

    /// [`Imap::connect`] from the loopback source address `from` ([`Conn::plain_from`]).
    pub async fn connect_from(from: std::net::Ipv4Addr, port: u16) -> Result<Imap> {
        let mut c = Conn::plain_from(from, port).await?;
        let g = c.line().await?;
        if !g.starts_with(b"* OK") {
            return Err(err(format!("greeting: {}", String::from_utf8_lossy(&g))));
        }
        Ok(Imap { c, tag: 0 })
    }

    pub async fn connect_tls(port: u16, config: Arc<rustls::ClientConfig>) -> Result<Imap> {
        let mut c = Conn::tls(port, config).await?;
        let g = c.line().await?;
        if !g.starts_with(b"* OK") {
            return Err(err("TLS greeting".into()));
        }
        Ok(Imap { c, tag: 0 })
    }

    /// Sends a command (no literal) and reads to its tagged answer. `keep` keeps untagged lines.
    pub async fn cmd(&mut self, command: &str, keep: bool) -> Result<Answer> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.c
            .send(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.finish(&tag, keep).await
    }

    /// Like `cmd`, but a NO/BAD answer is an error.
    pub async fn ok(&mut self, command: &str, keep: bool) -> Result<Answer> {
        let a = self.cmd(command, keep).await?;
        if !a.status.starts_with("OK") {
            return Err(err(format!("{command} -> {}", a.status)));
        }
        Ok(a)
    }

    /// Reads to the tagged answer. One timeout bounds the whole answer: a timer per line
    /// cost the client about as much CPU as the server spent on a 100,000-line FETCH, and on a
    /// shared machine that slows the figures of both servers alike.
    async fn finish(&mut self, tag: &str, keep: bool) -> Result<Answer> {
        tokio::time::timeout(ANSWER_TIMEOUT, self.read_answer(tag, keep)).await?
    }

    async fn read_answer(&mut self, tag: &str, keep: bool) -> Result<Answer> {
        let mut a = Answer::default();
        let mut line = Vec::new();
        loop {
            let (bytes, literal_bytes) = self.c.imap_line_into(keep, &mut line).await?;
            a.bytes += bytes;
            a.literal_bytes += literal_bytes;
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                a.status = String::from_utf8_lossy(&line[tag.len() + 1..]).into_owned();
                return Ok(a);
            }
            a.untagged_count += 1;
            if keep || line.ends_with(b" EXISTS") {
                a.untagged.push(line.clone());
            }
        }
    }

    pub async fn login(&mut self, user: &str, password: &str) -> Result<()> {
        self.ok(&format!("LOGIN {user} {password}"), false).await?;
        Ok(())
    }

    /// `COMPRESS DEFLATE` (RFC 4978), then DEFLATE both ways.
    pub async fn compress(&mut self) -> Result<()> {
        self.ok("COMPRESS DEFLATE", false).await?;
        self.c.compress();
        Ok(())
    }

    /// APPEND with a synchronising literal, as most clients still send it.
    pub async fn append(&mut self, mailbox: &str, flags: &str, msg: &[u8]) -> Result<Answer> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.c
            .send(format!("{tag} APPEND {mailbox} ({flags}) {{{}}}\r\n", msg.len()).as_bytes())
            .await?;
        let cont = self.c.line().await?;
        if !cont.starts_with(b"+") {
            return Err(err(format!(
                "APPEND refused: {}",
                String::from_utf8_lossy(&cont)
            )));
        }
        let mut data = msg.to_vec();
        data.extend_from_slice(b"\r\n");
        self.c.send(&data).await?;
        let a = self.finish(&tag, false).await?;
        if !a.status.starts_with("OK") {
            return Err(err(format!("APPEND -> {}", a.status)));
        }
        Ok(a)
    }

    /// MULTIAPPEND (RFC 3502): every message in one APPEND, as non-synchronizing literals
    /// (LITERAL+, which both servers announce), so no round trip is timed.
    pub async fn multiappend(&mut self, mailbox: &str, msgs: &[Vec<u8>]) -> Result<Answer> {
        let mut data = Vec::new();
        for msg in msgs {
            data.extend_from_slice(format!(" {{{}+}}\r\n", msg.len()).as_bytes());
            data.extend_from_slice(msg);
        }
        self.append_raw(mailbox, &data).await
    }

    /// `APPEND mailbox` followed by `args` as given (flags, dates, non-synchronizing literals)
    /// and CRLF, in one write; a NO/BAD answer is an error.
    pub async fn append_raw(&mut self, mailbox: &str, args: &[u8]) -> Result<Answer> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        let mut data = format!("{tag} APPEND {mailbox}").into_bytes();
        data.extend_from_slice(args);
        data.extend_from_slice(b"\r\n");
        self.c.send(&data).await?;
        let a = self.finish(&tag, false).await?;
        if !a.status.starts_with("OK") {
            return Err(err(format!("MULTIAPPEND -> {}", a.status)));
        }
        Ok(a)
    }

    /// Enters IDLE and waits for the continuation.
    pub async fn idle(&mut self) -> Result<()> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.c.send(format!("{tag} IDLE\r\n").as_bytes()).await?;
        loop {
            let l = self.c.line().await?;
            if l.starts_with(b"+") {
                return Ok(());
            }
            if l.starts_with(tag.as_bytes()) {
                return Err(err(format!("IDLE -> {}", String::from_utf8_lossy(&l))));
            }
        }
    }
}

/// A POP3 client.
pub struct Pop3 {
    pub c: Conn,
}

impl Pop3 {
    pub async fn connect(port: u16) -> Result<Pop3> {
        let mut c = Conn::plain(port).await?;
        let g = c.line().await?;
        if !g.starts_with(b"+OK") {
            return Err(err("POP3 greeting".into()));
        }
        Ok(Pop3 { c })
    }

    pub async fn cmd(&mut self, command: &str) -> Result<String> {
        self.c.send(format!("{command}\r\n").as_bytes()).await?;
        let l = self.c.line().await?;
        let s = String::from_utf8_lossy(&l).into_owned();
        if !s.starts_with("+OK") {
            return Err(err(format!("{command} -> {s}")));
        }
        Ok(s)
    }

    /// Reads a multi-line answer's body up to the final ".", returning its size in octets
    /// (each line counted without its trailing CR/LF bytes, plus 2). Lines are found in the read
    /// buffer in place: no allocation and no timer per line, so the client's cost per message
    /// stays well below either server's and the row measures the servers.
    pub async fn multiline(&mut self) -> Result<u64> {
        let mut total = 0;
        // The start of a line that began in an earlier buffer fill.
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let buf = tokio::time::timeout(ANSWER_TIMEOUT, self.c.io.fill_buf()).await??;
            if buf.is_empty() {
                return Err(err("connection closed".into()));
            }
            let mut start = 0;
            let mut end = None;
            for lf in memchr::memchr_iter(b'\n', buf) {
                let piece = buf.get(start..lf).unwrap_or_default();
                let line = if carry.is_empty() {
                    piece
                } else {
                    carry.extend_from_slice(piece);
                    &carry[..]
                };
                let len = line.len() - line.iter().rev().take_while(|&&b| b == b'\r').count();
                if line.get(..len) == Some(&b"."[..]) {
                    end = Some(lf + 1);
                    break;
                }
                total += len as u64 + 2;
                carry.clear();
                start = lf + 1;
            }
            let used = match end {
                Some(used) => used,
                None => {
                    carry.extend_from_slice(buf.get(start..).unwrap_or_default());
                    buf.len()
                }
            };
            self.c.io.consume(used);
            if end.is_some() {
                return Ok(total);
            }
        }
    }
}

/// An LMTP client.
pub struct Lmtp {
    pub c: Conn,
}

impl Lmtp {
    pub async fn connect(port: u16) -> Result<Lmtp> {
        let mut c = Conn::plain(port).await?;
        let g = c.line().await?;
        if !g.starts_with(b"220") {
            return Err(err("LMTP greeting".into()));
        }
        let mut l = Lmtp { c };
        l.c.send(b"LHLO bench.example\r\n").await?;
        l.reply().await?;
        Ok(l)
    }

    /// Reads one (possibly multi-line) reply; an error unless 2xx or 3xx.
    async fn reply(&mut self) -> Result<String> {
        loop {
            let l = self.c.line().await?;
            let s = String::from_utf8_lossy(&l).into_owned();
            if s.len() < 4 || s.as_bytes()[3] != b'-' {
                if !(s.starts_with('2') || s.starts_with('3')) {
                    return Err(err(format!("LMTP: {s}")));
                }
                return Ok(s);
            }
        }
    }

    /// Delivers `msg` (CRLF lines, already dot-stuffed or free of leading dots) to `rcpts`.
    /// Returns the instant the end of data was sent.
    pub async fn deliver(&mut self, rcpts: &[String], msg: &[u8]) -> Result<Instant> {
        let mut head = String::from("MAIL FROM:<bench@example.net>\r\n");
        for r in rcpts {
            head.push_str(&format!("RCPT TO:<{r}>\r\n"));
        }
        head.push_str("DATA\r\n");
        // Pipelined like Postfix does (both servers announce PIPELINING).
        self.c.send(head.as_bytes()).await?;
        self.reply().await?;
        for _ in rcpts {
            self.reply().await?;
        }
        self.reply().await?;
        let mut data = msg.to_vec();
        data.extend_from_slice(b".\r\n");
        self.c.send(&data).await?;
        let sent = Instant::now();
        for _ in rcpts {
            self.reply().await?;
        }
        Ok(sent)
    }
}

/// A rustls client config trusting exactly the benchmark's self-signed certificate.
pub fn tls_config(cert_pem: &std::path::Path) -> Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::pem::PemObject;
    let cert = rustls_pki_types::CertificateDer::from_pem_file(cert_pem)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A message with CRLF line endings of about `size` bytes, for APPEND and LMTP.
pub fn small_message(size: usize, n: u64) -> Vec<u8> {
    // Every message this process makes is different (as real mail is: an MTA's Received: line
    // alone differs), so no server may take a delivery for a retry of an earlier one (the
    // PostgreSQL backend stores an LMTP delivery of identical bytes and envelope once).
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut m = format!(
        "From: Bench <bench@example.net>\r\nTo: <user@example.com>\r\nSubject: bench message {n}\r\nMessage-ID: <bench.{n}.{serial}.{}@example.net>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0100\r\n\r\n",
        std::process::id()
    )
    .into_bytes();
    let line = b"0123456789 the quick brown fox jumps over the lazy dog 0123456789\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    m
}

/// Percentile (0..=100) of a sample, in the sample's unit.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}
