//! The full-text index (docs/fts.md) against the real binary: a hand-written corpus whose
//! answers follow from RFC 3501 6.4.4 by hand (substrings inside words, decoded HTML and
//! charsets, part headers and attachment names for TEXT, header keys, expunges); the MIME fixtures
//! searched with many keys on a server with the index and one without, which must answer the
//! same; delivery while searching; a crash while indexing (Maildir); `mailcove index rebuild
//! --fts` (Maildir); mail delivered by LMTP or copied indexed in the background without a search.

mod common;
mod lmtp_support;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn login(s: &Server) -> Client {
    let mut c = login_demo(s);
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    c
}

/// `UID SEARCH CHARSET UTF-8 <criteria>`'s UIDs. `criteria` may hold `{n+}` literals.
fn uids(c: &mut Client, criteria: &str) -> Vec<u32> {
    let lines = c.cmd("q", &format!("UID SEARCH CHARSET UTF-8 {criteria}"));
    assert_tagged_ok(&lines);
    let mut out: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("* SEARCH"))
        .flat_map(|l| l.split_whitespace().filter_map(|n| n.parse().ok()))
        .collect();
    out.sort_unstable();
    out
}

/// A string argument as a LITERAL+ literal (any bytes, UTF-8 included).
fn lit(s: &str) -> String {
    format!("{{{}+}}\r\n{s}", s.len())
}

/// How many times the server logged that a search consulted the index while it covered every
/// message of the mailbox (`covered=N messages=N`).
fn full_coverage_uses(s: &Server, n: usize) -> usize {
    let want = format!("covered={n} messages={n}");
    s.log()
        .lines()
        .filter(|l| l.contains("full-text index consulted") && l.contains(&want))
        .count()
}

/// Searches with `probe` until the index covers all `n` messages (the background indexer has
/// caught up), within a minute.
fn wait_indexed(s: &Server, c: &mut Client, n: usize, probe: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let before = full_coverage_uses(s, n);
        uids(c, probe);
        if full_coverage_uses(s, n) > before {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "index never covered {n} messages:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const M1: &str = "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n\
Subject: Trip to Zanzibar\r\nX-Tag: blue-green\r\n\r\nMeet at the harbour at noon.\r\n";

const M2: &str = "From: carol@example.net\r\nTo: bob@example.org\r\nSubject: Menu\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
Content-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
<p>Gr=FC=DFe aus <b>K=F6ln</b></p>\r\n--b1\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"quarterly-report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n";

const M3: &str = "From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <joerg@example.de>\r\n\
To: Ann (x) <ann (y) @ (z) example.org>\r\nSubject: Sperrung\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
RGllIFN0cmHDn2UgbmFjaCBTw7xkZW4gaXN0IGdlc3BlcnJ0Lg0K\r\n";

/// The hand-written corpus: each key's UIDs worked out from RFC 3501 6.4.4 (case-insensitive
/// substring of the decoded text; TEXT = header + body, part headers included).
fn hand_cases() -> Vec<(String, Vec<u32>)> {
    let k = |s: &str, u: &[u32]| (s.to_string(), u.to_vec());
    vec![
        k("TEXT zanz", &[1]),
        k("BODY zanz", &[]),
        k("SUBJECT ANZIB", &[1]),
        k("BODY harbo", &[1]),
        k(&format!("TEXT {}", lit("köln")), &[2]),
        k(&format!("BODY {}", lit("grüße")), &[2]),
        // HTML is reduced to text: the tags are not in the body.
        k("BODY \"<b>\"", &[]),
        k("TEXT report.pdf", &[2]),
        k("BODY report.pdf", &[]),
        k("TEXT attachment", &[2]),
        k("BODY attachment", &[]),
        k(&format!("FROM {}", lit("jörg")), &[3]),
        k("FROM joerg@", &[3]),
        k("TO ann@example.org", &[3]),
        k(&format!("BODY {}", lit("STRASSE")), &[]),
        k(&format!("BODY {}", lit("straße")), &[3]),
        k("HEADER X-Tag green", &[1]),
        k("HEADER X-Tag \"\"", &[1]),
        k("HEADER Subject menu", &[2]),
        k("TEXT example", &[1, 2, 3]),
        // Two characters: below the n-gram size, answered by the scan alone.
        k("TEXT zz", &[]),
        k("TEXT an", &[1, 2, 3]),
        k("NOT TEXT zanz", &[2, 3]),
        k("OR BODY harbo BODY gesperrt", &[1, 3]),
        k("TEXT noon TEXT harbour", &[1]),
        k("TEXT nothing-like-this", &[]),
    ]
}

#[test]
fn hand_written_corpus_answers_by_the_rfc_before_and_after_indexing() {
    let s = Server::start();
    s.append_messages(
        "demo",
        "demo",
        "INBOX",
        &[M1.as_bytes(), M2.as_bytes(), M3.as_bytes()],
    );
    let mut c = login(&s);
    // The first searches scan (nothing is indexed yet) and start the indexer.
    for (key, want) in hand_cases() {
        assert_eq!(uids(&mut c, &key), want, "scan: {key}");
    }
    wait_indexed(&s, &mut c, 3, "TEXT zanz");
    for (key, want) in hand_cases() {
        assert_eq!(uids(&mut c, &key), want, "index: {key}");
    }
    // An expunged message is never a hit, and the next search drops it from the index.
    assert_tagged_ok(&c.cmd("d", "UID STORE 2 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&c.cmd("e", "EXPUNGE"));
    assert_eq!(uids(&mut c, "TEXT attachment"), Vec::<u32>::new());
    wait_indexed(&s, &mut c, 2, "TEXT zanz");
    assert_eq!(uids(&mut c, "TEXT example"), vec![1, 3]);
}

/// The fixture corpus: every `.eml` of tests/fixtures/mime plus the hand-written messages.
fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    let mut out: Vec<Vec<u8>> = names
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{e}")))
        .filter(|m| !m.is_empty())
        .collect();
    out.extend([M1, M2, M3].map(|m| m.as_bytes().to_vec()));
    out
}

/// Search keys for the corpus: fixed ones (headers, part headers, charsets) and, from the
/// words of every message, pieces from inside words (substrings of 3 to 6 characters).
fn corpus_keys(corpus: &[Vec<u8>]) -> Vec<String> {
    let mut keys: Vec<String> = [
        "TEXT attachment",
        "TEXT inline",
        "TEXT filename",
        "TEXT boundary",
        "TEXT multipart",
        "BODY multipart",
        "TEXT charset",
        "HEADER Content-Type text",
        "HEADER Content-Type mixed",
        "HEADER Message-ID example",
        "HEADER Received from",
        "HEADER MIME-Version 1.0",
        "FROM example",
        "TO example",
        "CC example",
        "BCC example",
        "SUBJECT test",
        "SUBJECT re:",
        "TEXT .pdf",
        "TEXT .txt",
        "BODY zz",
        "TEXT =?",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for u in ["köln", "café", "grüße", "日本", "привет", "über", "ß", "é"] {
        keys.push(format!("TEXT {}", lit(u)));
        keys.push(format!("BODY {}", lit(u)));
        keys.push(format!("SUBJECT {}", lit(u)));
    }
    for m in corpus {
        let text = String::from_utf8_lossy(m);
        let words: Vec<&str> = text
            .split(|ch: char| !ch.is_ascii_alphanumeric())
            .filter(|w| w.len() >= 6)
            .collect();
        // A few words from the header, the middle and the end of each message.
        let picks = [0, words.len() / 2, words.len().saturating_sub(1)];
        for &i in &picks {
            if let Some(w) = words.get(i) {
                let inner = &w[1..w.len().min(5)];
                keys.push(format!("TEXT {inner}"));
                keys.push(format!("BODY {inner}"));
                keys.push(format!("SUBJECT {inner}"));
                keys.push(format!("FROM {inner}"));
                keys.push(format!("HEADER Content-Type {inner}"));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn index_and_scan_agree_on_the_fixture_corpus() {
    let corpus = corpus();
    let all: Vec<&[u8]> = corpus.iter().map(Vec::as_slice).collect();
    let with = Server::start();
    let without = Server::builder().mail("fts = false").start();
    with.append_messages("demo", "demo", "INBOX", &all);
    without.append_messages("demo", "demo", "INBOX", &all);
    let mut a = login(&with);
    let mut b = login(&without);
    wait_indexed(&with, &mut a, corpus.len(), "TEXT boundary");
    let keys = corpus_keys(&corpus);
    assert!(keys.len() > 100, "only {} keys", keys.len());
    let mut nonempty = 0;
    for key in &keys {
        let got = uids(&mut a, key);
        assert_eq!(got, uids(&mut b, key), "index and scan differ on {key}");
        nonempty += usize::from(!got.is_empty());
    }
    // The keys found something: the comparison is not between two empty answers.
    assert!(
        nonempty >= keys.len() / 4,
        "{nonempty} of {} keys found anything",
        keys.len()
    );
    assert_eq!(full_coverage_uses(&without, corpus.len()), 0);
}

fn numbered(i: usize) -> Vec<u8> {
    format!(
        "From: sender{i}@example.com\r\nSubject: number {i}\r\n\r\nbody word uniqx{i:04}y and commonword\r\n"
    )
    .into_bytes()
}

/// Appends [`numbered`] messages 0..n to demo's INBOX.
fn append_numbered(s: &Server, n: usize) {
    let msgs: Vec<Vec<u8>> = (0..n).map(numbered).collect();
    s.append_messages(
        "demo",
        "demo",
        "INBOX",
        &msgs.iter().map(Vec::as_slice).collect::<Vec<_>>(),
    );
}

#[test]
fn delivery_while_searching_is_always_found() {
    let s = Server::start();
    append_numbered(&s, 50);
    let mut c = login(&s);
    wait_indexed(&s, &mut c, 50, "TEXT commonword");
    let port_user = std::thread::spawn({
        let more: Vec<Vec<u8>> = (50..120).map(numbered).collect();
        let mut d = s.imap();
        move || {
            assert!(d.line().starts_with("* OK"));
            assert_tagged_ok(&d.cmd("l", "LOGIN demo demo"));
            for m in more {
                let mut cmd = format!("a APPEND INBOX {{{}+}}\r\n", m.len()).into_bytes();
                cmd.extend_from_slice(&m);
                d.send_raw(&cmd);
                d.send_raw(b"\r\n");
                assert_tagged_ok(&d.until("a "));
            }
        }
    });
    // Every search sees exactly the messages of its view: 1..=n, n never going back.
    let mut last = 0;
    for _ in 0..40 {
        assert_tagged_ok(&c.cmd("n", "NOOP"));
        let got = uids(&mut c, "TEXT commonword");
        let n = got.len();
        assert_eq!(got, (1..=n as u32).collect::<Vec<_>>());
        assert!(n >= last, "{n} after {last}");
        last = n;
        // First search after a delivery: the newest message is found by its own word.
        if n > 0 {
            assert_eq!(
                uids(&mut c, &format!("TEXT uniqx{:04}y", n - 1)),
                vec![n as u32]
            );
        }
    }
    port_user
        .join()
        .unwrap_or_else(|_| panic!("appender failed"));
    assert_tagged_ok(&c.cmd("n", "NOOP"));
    assert_eq!(
        uids(&mut c, "TEXT commonword"),
        (1..=120).collect::<Vec<_>>()
    );
    assert_eq!(uids(&mut c, "BODY uniqx0119y"), vec![120]);
    wait_indexed(&s, &mut c, 120, "TEXT commonword");
    assert_eq!(uids(&mut c, "BODY uniqx0119y"), vec![120]);
    assert_eq!(uids(&mut c, "TEXT niqx007"), (71..=80).collect::<Vec<_>>());
}

#[test]
fn crash_while_indexing_loses_nothing_and_the_index_is_made_again() {
    if skip_unless_maildir("crash_while_indexing") {
        return;
    }
    let mut s = Server::start();
    let n = 3000;
    append_numbered(&s, n);
    let mut c = login(&s);
    // Starts the indexer; then the server dies at once, mid-indexing.
    assert_eq!(uids(&mut c, "BODY uniqx1234y"), vec![1235]);
    s.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
    s.restart();
    let mut c = login(&s);
    assert_eq!(uids(&mut c, "BODY uniqx1234y"), vec![1235]);
    assert_eq!(uids(&mut c, "TEXT commonword").len(), n);
    wait_indexed(&s, &mut c, n, "TEXT commonword");
    assert_eq!(uids(&mut c, "TEXT commonword").len(), n);
    assert_eq!(uids(&mut c, "BODY uniqx2999y"), vec![3000]);
    // "number 42" is in the subjects of messages 42 and 420-429 (UID = number + 1).
    let want: Vec<u32> = [42].into_iter().chain(420..430).map(|i| i + 1).collect();
    assert_eq!(uids(&mut c, "SUBJECT \"number 42\""), want);
    assert!(
        s.maildir("demo")
            .join("mailcove-fts")
            .join("meta.json")
            .is_file()
    );
}

#[test]
fn index_rebuild_fts_rebuilds_by_hand() {
    if skip_unless_maildir("index_rebuild_fts") {
        return;
    }
    let s = Server::start();
    s.append_messages(
        "demo",
        "demo",
        "INBOX",
        &[M1.as_bytes(), M2.as_bytes(), M3.as_bytes()],
    );
    let out = Command::new(BIN)
        .args(["index", "rebuild", "--fts", "-u", "demo", "--config"])
        .arg(&s.config_path)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inbox = stdout
        .lines()
        .find(|l| l.starts_with("INBOX"))
        .unwrap_or_else(|| panic!("no INBOX row: {stdout}"));
    assert_eq!(
        inbox.split_whitespace().collect::<Vec<_>>(),
        vec!["INBOX", "3", "3"]
    );
    // The daemon sees the rebuilt index at once: the first search uses it for every message.
    let mut c = login(&s);
    for (key, want) in hand_cases() {
        assert_eq!(uids(&mut c, &key), want, "{key}");
    }
    assert!(full_coverage_uses(&s, 3) > 0, "{}", s.log());
}

/// Waits (at most ten seconds) until the background indexer logged that it brought mailbox
/// `mailbox` to `n` covered messages after new mail.
fn wait_background_indexed(s: &Server, mailbox: &str, n: usize) {
    let want = (format!("mailbox={mailbox} "), format!("covered={n}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.log().lines().any(|l| {
        l.contains("full-text index updated after delivery")
            && l.contains(&want.0)
            && l.contains(&want.1)
    }) {
        assert!(
            Instant::now() < deadline,
            "{mailbox} never indexed to {n} in the background:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn lmtp_delivery_and_copy_are_indexed_without_a_search() {
    let (s, port) = lmtp_support::start(Server::builder().users(&lmtp_support::users()));
    let n = 6;
    let mut l = Client::plain(port);
    assert!(l.line().starts_with("220 "));
    let mut script = String::from("LHLO x\r\n");
    for i in 0..n {
        let m = String::from_utf8(numbered(i)).unwrap_or_default();
        script.push_str(&format!(
            "MAIL FROM:<>\r\nRCPT TO:<demo>\r\nDATA\r\n{m}.\r\n"
        ));
    }
    script.push_str("QUIT\r\n");
    l.send_raw(script.as_bytes());
    let replies = l.until("221 ");
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.as_str() == "250 2.0.0 <demo> Saved")
            .count(),
        n,
        "{replies:?}"
    );
    // No search has run: the index was brought up to date by the delivery alone.
    wait_background_indexed(&s, "INBOX", n);
    assert!(
        !s.log().contains("full-text index consulted"),
        "{}",
        s.log()
    );
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    assert_tagged_ok(&c.cmd("l", "LOGIN demo pw"));
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    // The very first search finds every message covered.
    assert_eq!(uids(&mut c, "TEXT uniqx0004y"), vec![5]);
    assert_eq!(full_coverage_uses(&s, n), 1, "{}", s.log());
    // COPY into another mailbox queues that one too: covered before anyone searches it.
    assert_tagged_ok(&c.cmd("c", "CREATE Kept"));
    assert_tagged_ok(&c.cmd("c", "UID COPY 2:4 Kept"));
    wait_background_indexed(&s, "Kept", 3);
    assert_tagged_ok(&c.cmd("s", "SELECT Kept"));
    assert_eq!(uids(&mut c, "BODY uniqx0002y"), vec![2]);
    assert_eq!(full_coverage_uses(&s, 3), 1, "{}", s.log());
    // DELETE drops the mailbox's entries: 6 (INBOX) + 3 (Kept) indexed before, 6 after.
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&c.cmd("d", "DELETE Kept"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s
        .log()
        .lines()
        .any(|l| l.contains("entries of a removed mailbox dropped") && l.contains("remaining=6"))
    {
        assert!(Instant::now() < deadline, "Kept never purged:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Made again and filled by MOVE: indexed afresh, and searches answer by the RFC.
    assert_tagged_ok(&c.cmd("c", "CREATE Kept"));
    assert_tagged_ok(&c.cmd("m", "UID MOVE 6 Kept"));
    wait_background_indexed(&s, "Kept", 1);
    assert_tagged_ok(&c.cmd("s", "SELECT Kept"));
    assert_eq!(uids(&mut c, "TEXT uniqx0005y"), vec![1]);
    assert_eq!(uids(&mut c, "TEXT uniqx0002y"), Vec::<u32>::new());
}
