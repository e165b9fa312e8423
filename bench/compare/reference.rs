//! Physical references for rows 3 and 5 (issue 23): the same Maildir files copied over loopback
//! by a raw `sendfile(2)`, so the table shows how far each server is from what the machine
//! allows for those bytes.
//!
//! The reference server is a plain thread with a blocking loopback listener. Its protocol is one
//! request line per transfer (the file's index, `"3\r\n"`), answered with that file's byte range
//! and nothing else: it opens the file and `sendfile`s the range, as a server with no protocol
//! work at all would. The client is the benchmark's own [`Conn`], reading the announced count
//! through the same 64 KiB read buffer it reads a server's literal with ([`Conn::skip`]), so
//! the figures differ from the servers' only by the server side. The bytes are those on disk
//! (LF line ends, as the corpus is written and as Dovecot stores mail); the servers send a few
//! percent more (CRLF, and for POP3 dot-stuffing and status lines).
//!
//! Row 3's reference: the 10 MB message whole, then the byte range of its part 2 (5.3 MB), each
//! timed per request on one connection as row 3 times one FETCH (median of five times as many
//! repetitions as the servers get, after one warm-up). Row 5's reference: connect, then every message file of the `pop` maildrop one
//! after the other on that connection, one request each (as RETR asks for each), timed from
//! connect to the last byte; the median of the passes after one warm-up pass, as row 5.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::client::{Conn, Result};
use crate::rows::{Measured, Plan, REF_REPS_PER_REP, median};

/// One file range the reference server can send.
#[derive(Clone, Debug)]
struct Piece {
    path: PathBuf,
    start: u64,
    len: u64,
}

/// Starts the reference server on a free loopback port; it serves connections one at a time
/// until the process ends.
fn serve(pieces: Vec<Piece>) -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if let Err(e) = answer(stream, &pieces) {
                eprintln!("    reference server: {e}");
            }
        }
    });
    Ok(port)
}

/// Answers one connection: each request line names a piece, sent with `sendfile`.
fn answer(stream: TcpStream, pieces: &[Piece]) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let Some(p) = line
            .trim()
            .parse::<usize>()
            .ok()
            .and_then(|i| pieces.get(i))
        else {
            return Err(std::io::Error::other(format!("bad request {line:?}")));
        };
        let file = std::fs::File::open(&p.path)?;
        send_range(&file, &mut out, p.start, p.len)?;
        out.flush()?;
    }
}

/// `sendfile` of `[start, start + len)` of `file` to `sock`, until all of it is sent.
fn send_range(
    file: &std::fs::File,
    sock: &mut TcpStream,
    start: u64,
    len: u64,
) -> std::io::Result<()> {
    let mut off = i64::try_from(start).map_err(std::io::Error::other)?;
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(1 << 30);
        // SAFETY: both descriptors are open for the call; the kernel reads `off` and advances it.
        let n = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, want) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::Error::other("file shorter than its range"));
        }
        left -= n as u64;
    }
    Ok(())
}

/// Every message file of a Maildir folder (cur and new), in name order (the order the corpus
/// wrote them, which is the servers' message order), with its size.
fn folder_files(dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        for e in std::fs::read_dir(dir.join(sub))? {
            let e = e?;
            files.push((e.path(), e.metadata()?.len()));
        }
    }
    files.sort_by(|a, b| a.0.file_name().cmp(&b.0.file_name()));
    Ok(files)
}

/// The physical byte range of the huge message's part 2 (its 5.3 MB base64 attachment, the
/// part row 3 fetches as `BODY[2]`): from after the part header's blank line to the line end
/// before the next boundary.
fn part2_range(data: &[u8]) -> Result<(u64, u64)> {
    let find = |hay: &[u8], needle: &[u8]| memchr::memmem::find(hay, needle);
    let marker = find(data, b"name=\"middle.bin\"").ok_or("no part 2 in the huge message")?;
    let start = marker + find(&data[marker..], b"\n\n").ok_or("no part 2 body")? + 2;
    let end = start
        + find(&data[start..], b"\n--huge-boundary-7f3a").ok_or("no boundary after part 2")?;
    Ok((start as u64, (end - start) as u64))
}

/// Milliseconds of each of `reps` requests for piece `index` (of `n` octets) on one connection.
async fn timed_requests(port: u16, index: usize, n: u64, reps: usize) -> Result<Vec<f64>> {
    let mut c = Conn::plain(port).await?;
    let mut times = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        c.send(format!("{index}\r\n").as_bytes()).await?;
        c.skip(n).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(times)
}

/// Milliseconds of each of `passes` passes, each a new connection requesting every piece (of
/// `sizes` octets) one after the other; the connection is closed before the next pass (the
/// server answers one connection at a time).
async fn timed_passes(port: u16, sizes: &[u64], passes: usize) -> Result<Vec<f64>> {
    let mut times = Vec::new();
    for _ in 0..passes {
        let t = Instant::now();
        let mut c = Conn::plain(port).await?;
        for (i, &n) in sizes.iter().enumerate() {
            c.send(format!("{i}\r\n").as_bytes()).await?;
            c.skip(n).await?;
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(times)
}

/// Row 3's references: `sendfile` of the 10 MB message file whole, and of its part 2's range.
pub async fn huge_reference(corpus: &Path, plan: &Plan, m: &mut Measured) -> Result<()> {
    let files = folder_files(&corpus.join("big/.huge"))?;
    let (path, size) = files
        .iter()
        .max_by_key(|(_, n)| *n)
        .cloned()
        .ok_or("no huge message")?;
    let (start, len) = part2_range(&std::fs::read(&path)?)?;
    let pieces = vec![
        Piece {
            path: path.clone(),
            start: 0,
            len: size,
        },
        Piece { path, start, len },
    ];
    let port = serve(pieces.clone())?;
    for (i, key) in ["ref_10mb_body", "ref_10mb_part2"].into_iter().enumerate() {
        let n = pieces[i].len;
        // One warm-up, then the repetitions, each its own request as each FETCH is: as many
        // as row 3's (a few milliseconds each), so the figures move less with the machine's load.
        let mut v = timed_requests(port, i, n, REF_REPS_PER_REP * plan.reps + 1).await?;
        v.remove(0);
        m.set(key, median(v));
        m.check(&format!("{key}_bytes"), n);
    }
    Ok(())
}

/// Row 5's reference: every file of the `pop` maildrop, one request each on one connection.
pub async fn pop3_reference(corpus: &Path, plan: &Plan, m: &mut Measured) -> Result<()> {
    let files = folder_files(&corpus.join("pop"))?;
    let sizes: Vec<u64> = files.iter().map(|(_, n)| *n).collect();
    let pieces = files
        .into_iter()
        .map(|(path, len)| Piece {
            path,
            start: 0,
            len,
        })
        .collect();
    let port = serve(pieces)?;
    let mut v = timed_passes(port, &sizes, plan.reps.min(3) + 1).await?;
    v.remove(0);
    m.set("ref_pop3_retr_all", median(v));
    m.check("ref_pop3_files", sizes.len());
    m.check("ref_pop3_bytes", sizes.iter().sum::<u64>());
    Ok(())
}
