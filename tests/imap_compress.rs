//! COMPRESS=DEFLATE (RFC 4978) on the wire, against the real binary, with a raw-DEFLATE client
//! (flate2, no zlib header, every write sync-flushed): the tagged OK is plain and everything after
//! it is compressed both ways (section 3), over plain TCP, after STARTTLS and on implicit TLS
//! (compression inside TLS); a second COMPRESS answers `NO [COMPRESSIONACTIVE]` (Dovecot's answer,
//! where the RFC lists BAD), an unknown algorithm `NO` and leaves the session plain; bytes a
//! client sends right behind the command are read as the start of its compressed stream; long
//! FETCH bodies stream through the compressor and a big APPEND literal through the inflater,
//! byte for byte; IDLE updates arrive compressed; a small compressed input that inflates to a
//! 64 MiB line is cut off by the line limit like plain input; and idle compressed connections do
//! not keep a compressor (the server's RSS per connection stays far below one).

mod common;

use common::*;

/// A logged-in plain session that has sent `COMPRESS DEFLATE` and switched its own side on.
fn compressed(s: &Server) -> Client {
    let mut c = login_demo(s);
    assert_eq!(c.cmd("z", "COMPRESS DEFLATE"), vec!["z OK DEFLATE active."]);
    c.compress();
    c
}

/// Text that compresses the way mail does: words repeat, numbers vary.
fn text_message(lines: usize, seed: u64) -> Vec<u8> {
    let words = [
        "the",
        "meeting",
        "is",
        "moved",
        "to",
        "Thursday",
        "please",
        "confirm",
        "budget",
        "report",
        "attached",
        "regards",
        "quarterly",
        "numbers",
        "look",
        "fine",
    ];
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).max(1);
    let mut m = format!(
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: compress test {seed}\r\n\
         Message-ID: <c{seed}@example.com>\r\n\r\n"
    )
    .into_bytes();
    for i in 0..lines {
        let mut line = format!("{i:06} ");
        for _ in 0..10 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            line.push_str(words[(x % words.len() as u64) as usize]);
            line.push(' ');
        }
        line.push_str(&format!("{}\r\n", x % 100_000));
        m.extend_from_slice(line.as_bytes());
    }
    m
}

#[test]
fn compress_is_announced_after_login_and_refused_before() {
    let s = Server::start();
    let mut c = s.imap();
    let greeting = c.line();
    assert!(!greeting.contains("COMPRESS"), "{greeting}");
    // RFC 4978 section 5: `command-auth =/ compress`.
    assert_eq!(
        c.cmd("a", "COMPRESS DEFLATE"),
        vec!["a BAD Command not valid in this state: log in first."]
    );
    let r = c.cmd("b", "LOGIN demo demo");
    assert!(r[0].contains(" COMPRESS=DEFLATE "), "{r:?}");
    let r = c.cmd("c", "CAPABILITY");
    assert!(r[0].contains(" COMPRESS=DEFLATE "), "{r:?}");
    assert_eq!(r[1], "c OK Capability completed.");
}

#[test]
fn plain_session_compresses_both_ways_and_refuses_a_second_compress() {
    let s = Server::start();
    s.append_message("demo", "demo", "INBOX", b"Subject: one\r\n\r\nbody one\r\n");
    let mut c = login_demo(&s);
    // An unknown algorithm is refused and the session stays plain (RFC 4978 section 3: no
    // compression after NO or BAD); a missing one is a syntax error.
    assert_eq!(
        c.cmd("a", "COMPRESS GZIP"),
        vec!["a NO Unknown compression mechanism."]
    );
    let r = c.cmd("b", "COMPRESS");
    assert!(r[0].starts_with("b BAD "), "{r:?}");
    assert_eq!(c.cmd("c", "NOOP"), vec!["c OK NOOP completed."]);
    // The OK itself is plain (read before the client turns its side on).
    assert_eq!(c.cmd("d", "compress deflate"), vec!["d OK DEFLATE active."]);
    c.compress();
    assert_eq!(c.cmd("e", "NOOP"), vec!["e OK NOOP completed."]);
    let r = c.cmd("f", "SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 1 EXISTS"), "{r:?}");
    assert_eq!(r.last().unwrap(), "f OK [READ-WRITE] Select completed.");
    run_transcript(
        &mut c,
        r#"C: g COMPRESS DEFLATE
S: g NO [COMPRESSIONACTIVE] DEFLATE active via COMPRESS.
C: h UID FETCH 1 (UID)
S: * 1 FETCH (UID 1)
S: h OK Fetch completed.
C: i COMPRESS GZIP
S: i NO [COMPRESSIONACTIVE] DEFLATE active via COMPRESS."#,
    );
}

#[test]
fn compressed_session_survives_pipelining_idle_and_logout() {
    let s = Server::start();
    let mut c = login_demo(&s);
    // A client that sends compressed data right behind COMPRESS in the same write: those bytes
    // are the start of its compressed stream (Dovecot reads them so too).
    let mut early = flate2::Compress::new(flate2::Compression::default(), false);
    let mut z = Vec::with_capacity(1024);
    early
        .compress_vec(b"b NOOP\r\n", &mut z, flate2::FlushCompress::Sync)
        .unwrap();
    let mut wire = b"a COMPRESS DEFLATE\r\n".to_vec();
    wire.extend_from_slice(&z);
    c.send_raw(&wire);
    assert_eq!(c.line(), "a OK DEFLATE active.");
    // The client's own compressor starts fresh here: its blocks continue the same stream, just
    // as the server's fresh compressor per response burst does.
    c.compress();
    assert_eq!(c.line(), "b OK NOOP completed.");
    assert_tagged_ok(&c.cmd("c", "SELECT INBOX"));
    // IDLE: the continuation and the update pushed later are each their own compressed burst.
    c.send("d IDLE");
    assert_eq!(c.line(), "+ idling");
    s.append_message("demo", "demo", "INBOX", b"Subject: pushed\r\n\r\nnew\r\n");
    c.until("* 1 EXISTS");
    c.send("DONE");
    let r = c.until("d ");
    assert_eq!(r.last().unwrap(), "d OK Idle completed.");
    run_transcript(
        &mut c,
        "C: e LOGOUT\nS: * BYE Logging out.\nS: e OK Logout completed.",
    );
    assert!(c.closed());
}

#[test]
fn garbage_instead_of_deflate_data_ends_the_connection() {
    let s = Server::start();
    let mut c = compressed(&s);
    // 0xff starts a block of reserved type 3: invalid DEFLATE.
    c.send_uncompressed(&[0xff; 32]);
    assert!(c.closed());
    // The server goes on.
    let mut d = compressed(&s);
    assert_eq!(d.cmd("a", "NOOP"), vec!["a OK NOOP completed."]);
}

#[test]
fn compression_runs_inside_starttls() {
    let s = Server::start();
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    assert_eq!(
        c.cmd("a", "STARTTLS"),
        vec!["a OK Begin TLS negotiation now."]
    );
    c.upgrade(&s.cert.der);
    assert_tagged_ok(&c.cmd("b", "LOGIN demo demo"));
    assert_eq!(c.cmd("c", "COMPRESS DEFLATE"), vec!["c OK DEFLATE active."]);
    c.compress();
    assert_tagged_ok(&c.cmd("d", "SELECT INBOX"));
    // STARTTLS after login is a state error, compressed like any answer.
    assert_eq!(
        c.cmd("e", "STARTTLS"),
        vec!["e BAD Command not valid in this state: already logged in."]
    );
    assert_eq!(c.cmd("f", "NOOP"), vec!["f OK NOOP completed."]);
}

#[test]
fn compression_runs_inside_implicit_tls_with_a_long_fetch() {
    let s = Server::start();
    let msg = text_message(40_000, 3);
    assert!(msg.len() > 2_000_000);
    s.append_message("demo", "demo", "INBOX", &msg);
    let mut c = s.imaps();
    assert!(c.line().starts_with("* OK"));
    assert_tagged_ok(&c.cmd("a", "LOGIN demo demo"));
    assert_eq!(c.cmd("b", "COMPRESS DEFLATE"), vec!["b OK DEFLATE active."]);
    c.compress();
    assert_tagged_ok(&c.cmd("c", "SELECT INBOX"));
    let bodies = c.fetch_all_bodies("d");
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].1 == msg, "body differs after inflating");
}

#[test]
fn long_fetches_stream_through_the_compressor_and_shrink_on_the_wire() {
    let s = Server::start();
    // Bodies above the FETCH output buffer (64 KiB) are streamed past it in 128 KiB pieces;
    // small ones are queued with the responses. Both kinds, in one FETCH.
    let msgs: Vec<Vec<u8>> = [30_000usize, 20, 3_000, 1, 12_000]
        .iter()
        .enumerate()
        .map(|(i, &n)| text_message(n, i as u64 + 10))
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    s.append_messages("demo", "demo", "INBOX", &refs);
    let mut c = compressed(&s);
    assert_tagged_ok(&c.cmd("a", "SELECT INBOX"));
    let before = c.compressed_bytes_received();
    let bodies = c.fetch_all_bodies("b");
    let wire = c.compressed_bytes_received() - before;
    assert_eq!(bodies.len(), msgs.len());
    for (i, (uid, body)) in bodies.iter().enumerate() {
        assert_eq!(*uid as usize, i + 1);
        assert!(*body == msgs[i], "UID {uid} differs");
    }
    let plain: usize = msgs.iter().map(Vec::len).sum();
    // These words compress to well under half; the exact ratio is the compressor's business.
    assert!(
        (wire as usize) < plain / 2,
        "{wire} compressed bytes for {plain} bytes of bodies"
    );
    assert_eq!(c.cmd("c", "NOOP"), vec!["c OK NOOP completed."]);
}

#[test]
fn big_append_literals_go_through_the_inflater_byte_for_byte() {
    let s = Server::start();
    let mut c = compressed(&s);
    let big = text_message(60_000, 42);
    assert!(big.len() > 4_000_000);
    // A synchronizing literal: the continuation request comes compressed.
    c.send(&format!("a APPEND INBOX {{{}}}", big.len()));
    assert_eq!(c.line(), "+ Ready for literal data");
    let mut data = big.clone();
    data.extend_from_slice(b"\r\n");
    c.send_raw(&data);
    let r = c.until("a ");
    assert!(
        r.last().unwrap().starts_with("a OK [APPENDUID ")
            && r.last().unwrap().ends_with(" 1] Append completed."),
        "{r:?}"
    );
    // A non-synchronizing one in the same write as its command.
    let small = text_message(500, 43);
    let mut line = format!("b APPEND INBOX (\\Seen) {{{}+}}\r\n", small.len()).into_bytes();
    line.extend_from_slice(&small);
    line.extend_from_slice(b"\r\n");
    c.send_raw(&line);
    let r = c.until("b ");
    assert!(r.last().unwrap().starts_with("b OK [APPENDUID "), "{r:?}");
    assert_tagged_ok(&c.cmd("c", "SELECT INBOX"));
    let bodies = c.fetch_all_bodies("d");
    assert_eq!(bodies.len(), 2);
    assert!(bodies[0].1 == big, "big APPEND stored differently");
    assert!(bodies[1].1 == small, "small APPEND stored differently");
}

#[test]
fn a_compressed_line_inflating_to_64_mib_is_cut_off_by_the_line_limit() {
    let s = Server::start();
    let mut c = compressed(&s);
    let mut bomb = b"a NOOP ".to_vec();
    bomb.resize(64 << 20, b'x');
    bomb.extend_from_slice(b"\r\nb NOOP\r\n");
    let before = c.compressed_bytes_sent();
    c.send_raw(&bomb);
    let sent = c.compressed_bytes_sent() - before;
    drop(bomb);
    assert!(sent < 1 << 20, "the bomb took {sent} bytes compressed");
    assert_eq!(c.line(), "a BAD Command line too long");
    // The tail of the line was inflated and discarded, never executed; the next line runs.
    assert_eq!(c.line(), "b OK NOOP completed.");
    assert_eq!(c.cmd("c", "NOOP"), vec!["c OK NOOP completed."]);
}

/// The server's resident set, from /proc.
fn rss_kib(s: &Server) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", s.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

#[test]
fn idle_compressed_connections_keep_the_inflater_but_not_the_compressor() {
    // A miniz compressor is about 300 KiB, the inflater about 42 KiB. Each connection below has
    // compressed a 100 KiB body, then sits waiting for its next command: if compressors were
    // kept, 200 connections would add some 60 MiB.
    const CONNS: usize = 200;
    let s = Server::builder()
        .config("[limits]\nmax_connections_per_ip = 1000\nmax_userip_connections = 1000\n")
        .start();
    s.append_message("demo", "demo", "INBOX", &text_message(1_500, 5));
    let open = || {
        let mut c = compressed(&s);
        assert_tagged_ok(&c.cmd("a", "SELECT INBOX"));
        assert_eq!(c.fetch_all_bodies("b").len(), 1);
        c
    };
    // Warm the allocator's arenas up first.
    let warm: Vec<Client> = (0..10).map(|_| open()).collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let before = rss_kib(&s);
    let conns: Vec<Client> = (0..CONNS).map(|_| open()).collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let per_conn = rss_kib(&s).saturating_sub(before) / CONNS as u64;
    assert!(
        per_conn < 128,
        "{per_conn} KiB per idle compressed connection"
    );
    drop((warm, conns));
}
