//! SEARCH and UID SEARCH against the real binary, as wire transcripts: every RFC 3501 key with a
//! match and a non-match, OR/NOT/nesting, CHARSET and BADCHARSET, encoded words, base64 and
//! quoted-printable bodies, dates (INTERNALDATE in UTC, Date: as written), sizes, ESEARCH
//! (RFC 4731), SEARCHRES `$` (RFC 5182), a message expunged by another session during a search,
//! and the nesting limit.

mod common;

use common::*;

/// Message 1: plain text, \Seen \Answered, INTERNALDATE 7-Feb-1994 21:52 -0800 = 8-Feb 05:52 UTC.
const M1: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\
From: Alice Example <alice@example.com>\r\n\
To: Bob <bob@example.org>\r\n\
Cc: carol@example.net\r\n\
Subject: Quarterly report\r\n\
Message-ID: <m1@example.com>\r\n\
\r\n\
The numbers are in. Revenue is up.\r\n";

/// Message 2: encoded-word From and Subject, Bcc, X-Mailer, a base64 UTF-8 body; \Flagged $Important.
const M2: &str = "Date: Mon, 15 Mar 2021 09:00:00 +0100\r\n\
From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <joerg@example.de>\r\n\
To: alice@example.com\r\n\
Bcc: secret-list@example.com\r\n\
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n\
X-Mailer: mutt 2.0\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
RGllIFN0cmHDn2UgbmFjaCBTw7xkZW4gaXN0IGdlc3BlcnJ0Lg0K\r\n";

/// Message 3: no Date:, multipart/alternative with an ISO-8859-1 quoted-printable text part and
/// an HTML part; \Draft \Deleted.
const M3: &str = "From: Carol <carol@example.net>\r\n\
To: bob@example.org\r\n\
Subject: Menu\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Caf=E9 cr=E8me br=FBl=E9e\r\n\
--b1\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Dessert <b>tonight</b></p>\r\n\
--b1--\r\n";

/// Message 4: large, Date: in -0500 (the next day in UTC), \Seen $Junk; its text ends in a needle.
fn m4() -> String {
    let mut m = "Date: Mon, 1 Jan 2024 23:30:00 -0500\r\n\
From: Dave <dave@example.com>\r\n\
To: bob@example.org\r\n\
Subject: big\r\n\
\r\n"
        .to_string();
    for _ in 0..80 {
        m.push_str(&"x".repeat(76));
        m.push_str("\r\n");
    }
    m.push_str("needle-in-haystack\r\n");
    m
}

fn ok(lines: &[String]) {
    let last = lines.last().map(String::as_str).unwrap_or("");
    let tagged_ok = last.split(' ').nth(1) == Some("OK");
    assert!(tagged_ok, "expected OK, got {lines:?}");
}

fn login(s: &Server) -> Client {
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    ok(&c.cmd("l", "LOGIN demo demo"));
    c
}

/// APPEND with a non-synchronizing literal (LITERAL+), flags and an internal date.
fn append(c: &mut Client, flags: &str, date: &str, msg: &str) {
    c.send_raw(
        format!(
            "ap APPEND INBOX ({flags}) \"{date}\" {{{}+}}\r\n{msg}\r\n",
            msg.len()
        )
        .as_bytes(),
    );
    ok(&c.until("ap "));
}

/// The four fixture messages: 1 and 2 are seen by an earlier session (not \Recent), 3 and 4 are
/// \Recent for the returned session, which has INBOX selected.
fn fixture(s: &Server) -> Client {
    let mut a = login(s);
    append(
        &mut a,
        "\\Seen \\Answered",
        "07-Feb-1994 21:52:25 -0800",
        M1,
    );
    append(
        &mut a,
        "\\Flagged $Important",
        "15-Mar-2021 09:00:00 +0100",
        M2,
    );
    ok(&a.cmd("s", "SELECT INBOX"));
    ok(&a.cmd("o", "LOGOUT"));
    let mut b = login(s);
    append(
        &mut b,
        "\\Draft \\Deleted",
        "01-Jan-2024 12:00:00 +0000",
        M3,
    );
    append(&mut b, "\\Seen $Junk", "02-Jan-2024 04:30:00 +0000", &m4());
    let sel = b.cmd("s", "SELECT INBOX");
    ok(&sel);
    assert!(sel.contains(&"* 4 EXISTS".to_string()), "{sel:?}");
    assert!(sel.contains(&"* 2 RECENT".to_string()), "{sel:?}");
    b
}

/// Builds a transcript of `SEARCH` commands: each `(criteria, result)` becomes a command and its
/// expected `* SEARCH` line and tagged OK.
fn searches(cases: &[(&str, &str)]) -> String {
    let mut t = String::new();
    for (i, (criteria, result)) in cases.iter().enumerate() {
        let sp = if result.is_empty() { "" } else { " " };
        t.push_str(&format!(
            "C: k{i} SEARCH {criteria}\nS: * SEARCH{sp}{result}\nS: k{i} OK Search completed.\n"
        ));
    }
    t
}

#[test]
fn flag_keyword_and_set_keys() {
    let s = Server::start();
    let mut c = fixture(&s);
    run_transcript(
        &mut c,
        &searches(&[
            ("ALL", "1 2 3 4"),
            ("ANSWERED", "1"),
            ("UNANSWERED", "2 3 4"),
            ("DELETED", "3"),
            ("UNDELETED", "1 2 4"),
            ("DRAFT", "3"),
            ("UNDRAFT", "1 2 4"),
            ("FLAGGED", "2"),
            ("UNFLAGGED", "1 3 4"),
            ("SEEN", "1 4"),
            ("UNSEEN", "2 3"),
            ("RECENT", "3 4"),
            ("OLD", "1 2"),
            ("NEW", "3"),
            ("KEYWORD $Junk", "4"),
            ("KEYWORD $important", "2"),
            ("KEYWORD $Nope", ""),
            ("UNKEYWORD $Junk", "1 2 3"),
            ("UNKEYWORD $Nope", "1 2 3 4"),
            ("2,4", "2 4"),
            ("*", "4"),
            ("3:*", "3 4"),
            ("4:2", "2 3 4"),
            // Numbers past the mailbox match nothing there (a question, not an operation).
            ("3:10", "3 4"),
            ("UID 2:3", "2 3"),
            ("UID 10:*", "4"),
            ("UID 5:9", ""),
        ]),
    );
}

#[test]
fn date_and_size_keys() {
    let s = Server::start();
    let mut c = fixture(&s);
    let size1 = M1.len();
    let lt1 = format!("{}", size1 - 1);
    let at1 = format!("{size1}");
    let gt1 = format!("{}", size1 + 1);
    run_transcript(
        &mut c,
        &searches(&[
            // INTERNALDATE by its UTC day: 7-Feb-1994 21:52 -0800 is 8-Feb-1994 in UTC.
            ("ON 8-Feb-1994", "1"),
            ("ON 7-Feb-1994", ""),
            ("BEFORE 8-Feb-1994", ""),
            ("BEFORE 9-Feb-1994", "1"),
            ("SINCE 1-Jan-2024", "3 4"),
            ("SINCE 2-Jan-2024", "4"),
            ("SINCE 3-Jan-2024", ""),
            // Date: as written, time and zone disregarded; message 3 has none.
            ("SENTON 7-Feb-1994", "1"),
            ("SENTON 1-Jan-2024", "4"),
            ("SENTON 2-Jan-2024", ""),
            ("SENTBEFORE 1-Jan-2000", "1"),
            ("SENTBEFORE 7-Feb-1994", ""),
            ("SENTSINCE 15-Mar-2021", "2 4"),
            ("SENTSINCE 2-Jan-2024", ""),
            ("NOT SENTON 7-Feb-1994", "2 3 4"),
            ("LARGER 3000", "4"),
            ("SMALLER 3000", "1 2 3"),
            (&format!("LARGER {lt1} SMALLER {gt1}"), "1"),
            (&format!("LARGER {at1} UID 1"), ""),
            (&format!("SMALLER {at1} UID 1"), ""),
        ]),
    );
}

#[test]
fn header_body_and_text_keys() {
    let s = Server::start();
    let mut c = fixture(&s);
    run_transcript(
        &mut c,
        &searches(&[
            ("FROM alice", "1"),
            ("FROM ALICE", "1"),
            ("FROM zed", ""),
            ("TO alice", "2"),
            ("TO \"Bob <bob\"", "1"),
            ("CC carol", "1"),
            ("CC bob", ""),
            ("BCC secret", "2"),
            ("BCC alice", ""),
            ("SUBJECT report", "1"),
            ("SUBJECT nothing", ""),
            // Encoded words match by their decoded text, never by their encoding.
            ("SUBJECT \"aus K\"", "2"),
            ("SUBJECT =?UTF-8?B?", ""),
            ("FROM Joerg", "2"),
            ("HEADER X-Mailer mutt", "2"),
            ("HEADER x-mailer elm", ""),
            ("HEADER X-Mailer \"\"", "2"),
            ("HEADER Message-ID \"\"", "1"),
            ("HEADER X-Absent \"\"", ""),
            ("BODY revenue", "1"),
            ("BODY quarterly", ""),
            ("BODY tonight", "3"),
            ("BODY <b>", ""),
            ("BODY needle-in-haystack", "4"),
            ("BODY gesperrt", "2"),
            ("BODY RGllIFN0", ""),
            ("TEXT quarterly", "1"),
            ("TEXT REVENUE", "1"),
            ("TEXT dessert", "3"),
            ("TEXT nothing-like-this", ""),
        ]),
    );
    // 8-bit UTF-8 search strings in literals, with and without CHARSET.
    run_transcript(
        &mut c,
        "C: u1 SEARCH CHARSET UTF-8 SUBJECT {5+}\n\
         C: köln\n\
         S: * SEARCH 2\n\
         S: u1 OK Search completed.\n\
         C: u2 SEARCH CHARSET utf-8 FROM {5+}\n\
         C: JÖRG\n\
         S: * SEARCH 2\n\
         S: u2 OK Search completed.\n\
         C: u3 SEARCH BODY {7+}\n\
         C: straße\n\
         S: * SEARCH 2\n\
         S: u3 OK Search completed.\n\
         C: u4 SEARCH CHARSET UTF-8 BODY {6+}\n\
         C: crème\n\
         S: * SEARCH 3\n\
         S: u4 OK Search completed.\n\
         C: u5 SEARCH CHARSET UTF-8 TEXT {7+}\n\
         C: brûlé\n\
         S: * SEARCH 3\n\
         S: u5 OK Search completed.\n\
         C: u6 SEARCH CHARSET US-ASCII FROM alice\n\
         S: * SEARCH 1\n\
         S: u6 OK Search completed.\n\
         C: u7 SEARCH CHARSET ISO-8859-1 FROM alice\n\
         S: u7 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.\n\
         C: u8 SEARCH CHARSET KOI8-R BODY {4+}\n\
         C: abcd\n\
         S: u8 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.\n\
         C: u9 NOOP\n\
         S: u9 OK *",
    );
    // A string that is not UTF-8 is a client error; the session goes on.
    c.send_raw(b"u10 SEARCH CHARSET UTF-8 BODY {2+}\r\n\xff\xfe\r\n");
    assert_eq!(
        c.line(),
        "u10 BAD Invalid search string for the given charset."
    );
    run_transcript(
        &mut c,
        "C: u11 SEARCH SUBJECT report\nS: * SEARCH 1\nS: u11 OK Search completed.",
    );
    // The header cache written by the searches above answers the same keys again.
    run_transcript(
        &mut c,
        &searches(&[
            ("FROM alice", "1"),
            ("SUBJECT \"aus K\"", "2"),
            ("SENTON 1-Jan-2024", "4"),
            ("CC carol", "1"),
        ]),
    );
}

#[test]
fn or_not_and_nesting() {
    let s = Server::start();
    let mut c = fixture(&s);
    run_transcript(
        &mut c,
        &searches(&[
            ("OR SEEN FLAGGED", "1 2 4"),
            ("OR DRAFT KEYWORD $Nope", "3"),
            ("NOT SEEN", "2 3"),
            ("NOT NOT SEEN", "1 4"),
            ("NOT (OR SEEN DRAFT)", "2"),
            ("OR DELETED (FLAGGED KEYWORD $Important)", "2 3"),
            ("OR (FROM alice) (BODY tonight)", "1 3"),
            ("((((SEEN))))", "1 4"),
            ("SEEN (LARGER 3000 (OR FROM dave FROM alice))", "4"),
            ("NOT (FROM alice) NOT BODY tonight", "2 4"),
            ("OR OR ANSWERED DRAFT OR FLAGGED KEYWORD $Junk", "1 2 3 4"),
            ("UID 1:3 NOT 2", "1 3"),
            ("OR 1 UID 4", "1 4"),
        ]),
    );
}

#[test]
fn uid_search_and_esearch_forms() {
    let s = Server::start();
    let mut c = login(&s);
    for i in 1..=5 {
        append(
            &mut c,
            if i % 2 == 0 { "\\Seen" } else { "" },
            "01-Jan-2024 12:00:00 +0000",
            &format!("Subject: m{i}\r\n\r\nbody {i}\r\n"),
        );
    }
    ok(&c.cmd("s", "SELECT INBOX"));
    // Expunge UID 2: sequence numbers and UIDs now differ (seq 2 = UID 3).
    ok(&c.cmd("d", "UID STORE 2 +FLAGS.SILENT (\\Deleted)"));
    ok(&c.cmd("e", "EXPUNGE"));
    run_transcript(
        &mut c,
        "C: a1 SEARCH ALL\n\
         S: * SEARCH 1 2 3 4\n\
         S: a1 OK Search completed.\n\
         C: a2 UID SEARCH ALL\n\
         S: * SEARCH 1 3 4 5\n\
         S: a2 OK Search completed.\n\
         C: a3 UID SEARCH UNSEEN\n\
         S: * SEARCH 1 3 5\n\
         S: a3 OK Search completed.\n\
         C: a4 UID SEARCH 2\n\
         S: * SEARCH 3\n\
         S: a4 OK Search completed.\n\
         C: a5 SEARCH UID 3:5\n\
         S: * SEARCH 2 3 4\n\
         S: a5 OK Search completed.\n\
         C: a6 SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN\n\
         S: * ESEARCH (TAG \"a6\") MIN 1 MAX 4 ALL 1:2,4 COUNT 3\n\
         S: a6 OK Search completed.\n\
         C: a7 UID SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN\n\
         S: * ESEARCH (TAG \"a7\") UID MIN 1 MAX 5 ALL 1,3,5 COUNT 3\n\
         S: a7 OK Search completed.\n\
         C: a8 SEARCH RETURN () SEEN\n\
         S: * ESEARCH (TAG \"a8\") ALL 3\n\
         S: a8 OK Search completed.\n\
         C: a9 UID SEARCH RETURN (COUNT) KEYWORD $Nope\n\
         S: * ESEARCH (TAG \"a9\") UID COUNT 0\n\
         S: a9 OK Search completed.\n\
         C: a10 SEARCH RETURN (MIN MAX ALL) KEYWORD $Nope\n\
         S: * ESEARCH (TAG \"a10\")\n\
         S: a10 OK Search completed.\n\
         C: a11 UID SEARCH RETURN (MAX) 1:*\n\
         S: * ESEARCH (TAG \"a11\") UID MAX 5\n\
         S: a11 OK Search completed.\n\
         C: a12 SEARCH RETURN (COUNT) BODY body\n\
         S: * ESEARCH (TAG \"a12\") COUNT 4\n\
         S: a12 OK Search completed.\n\
         C: a13 UID SEARCH MODSEQ 1\n\
         S: * OK [HIGHESTMODSEQ {*}] Highest\n\
         S: * SEARCH 1 3 4 5 (MODSEQ {*})\n\
         S: a13 OK Search completed.\n\
         C: a14 SEARCH RETURN (COUNT) MODSEQ 1\n\
         S: * ESEARCH (TAG \"a14\") COUNT 4 MODSEQ {*}\n\
         S: a14 OK Search completed.\n\
         C: a15 SEARCH MODSEQ 9223372036854775807\n\
         S: * SEARCH\n\
         S: a15 OK Search completed.",
    );
}

#[test]
fn searchres_saves_uids_for_dollar() {
    let s = Server::start();
    let mut c = fixture(&s);
    let caps = c.cmd("c", "CAPABILITY");
    assert!(caps[0].contains(" ESEARCH") && caps[0].contains(" SEARCHRES"));
    run_transcript(
        &mut c,
        // Before any SAVE, `$` is empty but valid.
        "C: r0 UID SEARCH $\n\
         S: * SEARCH\n\
         S: r0 OK Search completed.\n\
         # SAVE alone answers with the tagged OK only.\n\
         C: r1 SEARCH RETURN (SAVE) UNSEEN\n\
         S: r1 OK Search completed.\n\
         C: r2 UID SEARCH $\n\
         S: * SEARCH 2 3\n\
         S: r2 OK Search completed.\n\
         C: r3 UID SEARCH UID $ DRAFT\n\
         S: * SEARCH 3\n\
         S: r3 OK Search completed.\n\
         C: r4 SEARCH OR $ 4\n\
         S: * SEARCH 2 3 4\n\
         S: r4 OK Search completed.\n\
         C: r5 SEARCH NOT $\n\
         S: * SEARCH 1 4\n\
         S: r5 OK Search completed.\n\
         # SAVE with MIN only keeps the minimum (RFC 5182 2.4).\n\
         C: r6 SEARCH RETURN (SAVE MIN) UNSEEN\n\
         S: * ESEARCH (TAG \"r6\") MIN 2\n\
         S: r6 OK Search completed.\n\
         C: r7 UID SEARCH $\n\
         S: * SEARCH 2\n\
         S: r7 OK Search completed.\n\
         C: r8 UID SEARCH RETURN (SAVE ALL MIN) SEEN\n\
         S: * ESEARCH (TAG \"r8\") UID MIN 1 ALL 1,4\n\
         S: r8 OK Search completed.\n\
         # `$` is used by STORE: the saved UIDs, whatever command saved them.\n\
         C: r9 STORE $ +FLAGS (\\Flagged)\n\
         S: * 1 FETCH (FLAGS ({*}))\n\
         S: * 4 FETCH (FLAGS ({*}))\n\
         S: r9 OK Store completed.\n\
         C: r10 SEARCH FLAGGED\n\
         S: * SEARCH 1 2 4\n\
         S: r10 OK Search completed.\n\
         # A search without SAVE that fails (NO) keeps `$`.\n\
         C: r11 SEARCH CHARSET KOI8-R ALL\n\
         S: r11 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.\n\
         C: r12 UID SEARCH $\n\
         S: * SEARCH 1 4\n\
         S: r12 OK Search completed.",
    );
    // A BAD search with SAVE keeps `$` as well.
    c.send_raw(b"r13 SEARCH RETURN (SAVE) CHARSET UTF-8 FROM {1+}\r\n\xff\r\n");
    assert_eq!(
        c.line(),
        "r13 BAD Invalid search string for the given charset."
    );
    run_transcript(
        &mut c,
        "C: r14 UID SEARCH $\n\
         S: * SEARCH 1 4\n\
         S: r14 OK Search completed.\n\
         # A SAVE search that fails with NO empties `$`.\n\
         C: r15 SEARCH RETURN (SAVE) CHARSET KOI8-R ALL\n\
         S: r15 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.\n\
         C: r16 UID SEARCH $\n\
         S: * SEARCH\n\
         S: r16 OK Search completed.\n\
         # An empty result saves an empty `$`; pipelined use sees it.\n\
         C: r17 SEARCH RETURN (SAVE) SEEN\n\
         C: r18 SEARCH RETURN (SAVE) KEYWORD $Nope\n\
         C: r19 STORE $ +FLAGS (\\Answered)\n\
         S: r17 OK Search completed.\n\
         S: r18 OK Search completed.\n\
         S: r19 OK Store completed.\n\
         # SELECT resets `$`.\n\
         C: r20 SEARCH RETURN (SAVE) ALL\n\
         S: r20 OK Search completed.",
    );
    ok(&c.cmd("r21", "SELECT INBOX"));
    run_transcript(
        &mut c,
        "C: r22 UID SEARCH $\n\
         S: * SEARCH\n\
         S: r22 OK Search completed.",
    );
}

#[test]
fn message_expunged_by_another_session_during_search_is_skipped() {
    let s = Server::start();
    let mut c = fixture(&s);
    let mut other = login(&s);
    ok(&other.cmd("s", "SELECT INBOX"));
    ok(&other.cmd("d", "STORE 2 +FLAGS.SILENT (\\Deleted)"));
    ok(&other.cmd("e", "UID EXPUNGE 2"));
    // Our view still has message 2, but its file is gone: BODY cannot match it, flags can, and
    // SEARCH reports no EXPUNGE (RFC 3501 7.4.1); NOOP then does.
    run_transcript(
        &mut c,
        "C: x1 SEARCH BODY gesperrt\n\
         S: * SEARCH\n\
         S: x1 OK Search completed.\n\
         C: x2 SEARCH OR FROM joerg BODY revenue\n\
         S: * SEARCH 1\n\
         S: x2 OK Search completed.\n\
         C: x3 SEARCH FLAGGED\n\
         S: * SEARCH 2\n\
         S: x3 OK Search completed.\n\
         C: x4 NOOP\n\
         S: * 2 EXPUNGE\n\
         S: x4 OK *\n\
         C: x5 SEARCH ALL\n\
         S: * SEARCH 1 2 3\n\
         S: x5 OK Search completed.",
    );
}

#[test]
fn nesting_limit_answers_bad_and_the_session_goes_on() {
    let s = Server::builder()
        .config("[limits]\nmax_command_line = 1048576")
        .start();
    let mut c = fixture(&s);
    let mut deep = String::from("n1 SEARCH ");
    deep.push_str(&"(".repeat(100_000));
    deep.push_str("ALL");
    deep.push_str(&")".repeat(100_000));
    c.send(&deep);
    let l = c.line();
    assert!(l.starts_with("n1 BAD "), "{l}");
    c.send(&format!("n2 SEARCH {}SEEN", "NOT ".repeat(100_000)));
    let l = c.line();
    assert!(l.starts_with("n2 BAD "), "{l}");
    run_transcript(
        &mut c,
        "C: n3 SEARCH ((((((((((SEEN))))))))))\nS: * SEARCH 1 4\nS: n3 OK Search completed.",
    );
    // With the default 64 KiB line limit the line itself is refused, and the session goes on.
    let s = Server::start();
    let mut c = fixture(&s);
    c.send(&deep.replace("n1", "n4"));
    let l = c.line();
    assert!(l.starts_with("n4 BAD "), "{l}");
    run_transcript(
        &mut c,
        "C: n5 SEARCH SEEN\nS: * SEARCH 1 4\nS: n5 OK Search completed.",
    );
}

/// Finds the stored file of the message containing `needle`.
fn message_file(s: &Server, needle: &str) -> std::path::PathBuf {
    for sub in ["cur", "new"] {
        let dir = s.maildir("demo").join(sub);
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let data = std::fs::read(e.path()).unwrap_or_default();
            if String::from_utf8_lossy(&data).contains(needle) {
                return e.path();
            }
        }
    }
    panic!("no stored message contains {needle:?}");
}

#[test]
fn header_cache_answers_repeated_searches_without_the_file() {
    // Maildir-only: removes message files behind the server.
    if skip_unless_maildir("header_cache_answers_repeated_searches_without_the_file") {
        return;
    }
    let s = Server::start();
    let mut c = fixture(&s);
    // The first FROM search reads the headers and caches the searched fields.
    run_transcript(&mut c, &searches(&[("FROM alice", "1")]));
    // Maildir messages never change; rewriting one behind the server's back (same size) shows
    // which answers come from the cache (From/To/Cc/Bcc/Subject/Date) and which from the file.
    let path = message_file(&s, "Alice Example");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(
        &path,
        text.replace("Alice Example <alice", "Zelda Example <zelda"),
    )
    .unwrap_or_else(|e| panic!("rewrite {path:?}: {e}"));
    run_transcript(
        &mut c,
        &searches(&[
            ("FROM alice", "1"),
            ("FROM zelda", ""),
            ("SUBJECT quarterly", "1"),
            // A cached header decides FROM; BODY then reads the file.
            ("SUBJECT quarterly BODY revenue", "1"),
            ("SUBJECT quarterly BODY tonight", ""),
            // TEXT and fields outside the cached set read the file itself.
            ("TEXT zelda", "1"),
            ("HEADER Message-ID m1@", "1"),
            ("OR HEADER X-Nothing \"\" TEXT \"Zelda Example\"", "1"),
        ]),
    );
}

/// Message `i` (0-based) of the many-message mailbox: six kinds cycling through plain text,
/// quoted-printable Latin-1 (the needle split by a soft line break), base64 UTF-8,
/// multipart/alternative with HTML, a base64 attachment that is not text, and an encoded-word
/// Subject. Every seventh message carries the needle "zanzibar" somewhere; every fifth is from
/// Ximena (half of those "Xiména" in an encoded word).
fn many_message(i: usize) -> String {
    let marked = i % 7 == 3;
    let from = match (i % 5, i % 10) {
        (0, 0) => "Ximena Lopez <xl@example.com>".to_string(),
        (0, _) => "=?UTF-8?Q?Xim=C3=A9na_L=C3=B3pez?= <xl@example.com>".to_string(),
        _ => format!("Sender {i} <s{i}@example.org>"),
    };
    let mut m = format!("From: {from}\r\nTo: t@example.net\r\nMessage-ID: <{i}@many>\r\n");
    let needle = if marked { "ZanZibar" } else { "elsewhere" };
    match i % 6 {
        0 => m.push_str(&format!(
            "Subject: plain {i}\r\n\r\nLine one.\r\nThe word {needle} is here.\r\n"
        )),
        1 => m.push_str(&format!(
            "Subject: qp {i}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 and {}=\r\n{}.\r\n",
            &needle[..3],
            &needle[3..]
        )),
        2 => {
            let text = format!("Grüße aus {needle}, über alles.\r\n");
            m.push_str(&format!(
                "Subject: b64 {i}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                b64(text.as_bytes())
            ));
        }
        3 => m.push_str(&format!(
            "Subject: alt {i}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b{i}\"\r\n\r\n\
             --b{i}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nplain part\r\n\
             --b{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html <b>{}</b></p>\r\n--b{i}--\r\n",
            needle.to_uppercase()
        )),
        4 => m.push_str(&format!(
            "Subject: att {i}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m{i}\"\r\n\r\n\
             --m{i}\r\nContent-Type: text/plain\r\n\r\nsee attachment ({})\r\n\
             --m{i}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
             zanzibar in a binary part is not text\r\n--m{i}--\r\n",
            if marked { "zanzibar" } else { "none" }
        )),
        _ => m.push_str(&format!(
            "Subject: =?UTF-8?Q?Trip_to_{needle}?= {i}\r\n\r\nNothing in the body.\r\n"
        )),
    }
    m
}

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(char::from(A[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Appends `many_message(0..n)` to INBOX, pipelined with LITERAL+.
fn append_many(c: &mut Client, n: usize) {
    let mut batch = Vec::new();
    for i in 0..n {
        let msg = many_message(i);
        batch.extend_from_slice(
            format!("a{i} APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes(),
        );
    }
    c.send_raw(&batch);
    ok(&c.until(&format!("a{} ", n - 1)));
}

fn seqs(n: usize, pred: impl Fn(usize) -> bool) -> String {
    (0..n)
        .filter(|&i| pred(i))
        .map(|i| (i + 1).to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// More messages than one search batch, read from their files by the blocking workers and then
/// answered from the header cache: every result is checked against what the messages contain.
#[test]
fn many_messages_in_mixed_encodings_over_several_batches() {
    const N: usize = 600;
    let s = Server::start();
    let mut c = login(&s);
    append_many(&mut c, N);
    ok(&c.cmd("s", "SELECT INBOX"));
    let marked = |i: usize| i % 7 == 3;
    // The binary attachment's "zanzibar" is not text: kind 4 matches only through its text part.
    let text = seqs(N, marked);
    let body = seqs(N, |i| marked(i) && i % 6 != 5);
    // "Xiména" (encoded word) does not contain "ximena".
    let ximena = seqs(N, |i| i % 10 == 0);
    let both = seqs(N, |i| i % 10 == 0 && marked(i) && i % 6 != 5);
    let subject_or_from = seqs(N, |i| i % 10 == 0 || (marked(i) && i % 6 == 5));
    let cases = [
        ("TEXT zanzibar", text.as_str()),
        ("TEXT ZANZIBAR", text.as_str()),
        ("BODY zanzibar", body.as_str()),
        ("FROM ximena", ximena.as_str()),
        ("FROM \"ena l\"", ximena.as_str()),
        ("FROM ximena BODY zanzibar", both.as_str()),
        ("OR SUBJECT zanzibar FROM ximena", subject_or_from.as_str()),
        ("HEADER Message-ID \"<599@\"", "600"),
        ("NOT TEXT e", ""),
    ];
    // Twice: the first round reads the files, the second answers header keys from the cache.
    run_transcript(&mut c, &searches(&cases));
    run_transcript(&mut c, &searches(&cases));
    run_transcript(
        &mut c,
        &searches(&[("CHARSET UTF-8 FROM \"xiména l\"", &seqs(N, |i| i % 10 == 5))]),
    );
}

/// UIDs that have an entry of cache field `field` in the INBOX cache file of `demo`.
fn cached_uids(s: &Server, field: u8) -> std::collections::BTreeSet<u32> {
    // No file yet: nothing cached.
    let data = std::fs::read(s.maildir("demo").join("mailcove-cache")).unwrap_or_default();
    let mut uids = std::collections::BTreeSet::new();
    // A 16-byte header, then records: uid u32, field u8, length u32, crc u32 (little-endian), data.
    let mut at = 16;
    while let Some(rec) = data.get(at..at + 13) {
        let uid = u32::from_le_bytes(rec[0..4].try_into().unwrap());
        let len = u32::from_le_bytes(rec[5..9].try_into().unwrap()) as usize;
        if rec[4] == field {
            uids.insert(uid);
        }
        at += 13 + len;
    }
    uids
}

/// The first FETCH that parses messages also stores SEARCH's header entries (one read of each
/// message serves both, as Dovecot's one cache does), and header searches answered from them
/// give what the files give.
#[test]
fn a_parsing_fetch_fills_the_search_header_cache() {
    // Maildir-only: inspects the cache file.
    if skip_unless_maildir("a_parsing_fetch_fills_the_search_header_cache") {
        return;
    }
    const N: usize = 300;
    const SEARCH_HEADER_FIELD: u8 = 16;
    let s = Server::start();
    let mut c = login(&s);
    append_many(&mut c, N);
    ok(&c.cmd("s", "SELECT INBOX"));
    assert!(cached_uids(&s, SEARCH_HEADER_FIELD).is_empty());
    ok(&c.cmd("f", "FETCH 1:* ENVELOPE"));
    let all: std::collections::BTreeSet<u32> = (1..=N as u32).collect();
    assert_eq!(cached_uids(&s, SEARCH_HEADER_FIELD), all);
    let marked = |i: usize| i % 7 == 3;
    let ximena = seqs(N, |i| i % 10 == 0);
    let subject_or_from = seqs(N, |i| i % 10 == 0 || (marked(i) && i % 6 == 5));
    let cases = [
        ("FROM ximena", ximena.as_str()),
        ("OR SUBJECT zanzibar FROM ximena", subject_or_from.as_str()),
        ("HEADER Message-ID \"<299@\"", "300"),
    ];
    run_transcript(&mut c, &searches(&cases));
    // The searches found every entry they needed: none was written again.
    let len = std::fs::metadata(s.maildir("demo").join("mailcove-cache"))
        .unwrap()
        .len();
    run_transcript(&mut c, &searches(&cases));
    assert_eq!(
        std::fs::metadata(s.maildir("demo").join("mailcove-cache"))
            .unwrap()
            .len(),
        len
    );
}

#[test]
fn text_matches_unfolded_decoded_headers_and_mixed_case_unicode_bodies() {
    let s = Server::start();
    let mut c = login(&s);
    let msg = "From: \u{dc}nal <u@example.org>\r\n\
Subject: a very\r\n  long folded subject\r\n\
X-Note: =?utf-8?q?Stra=C3=9Fe?= und   mehr\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Gr\u{fc}sse aus Z\u{dc}RICH und dem \u{d6}STERREICHISCHEN Alpenland\r\n\
\u{39f}\u{394}\u{39f}\u{3a3} \u{3a3}\u{39f}\u{3a6}\u{39f}\u{3a3}\r\n";
    append(&mut c, "", "01-Jan-2024 12:00:00 +0000", msg);
    append(&mut c, "", "01-Jan-2024 12:00:00 +0000", M1);
    ok(&c.cmd("s", "SELECT INBOX"));
    run_transcript(
        &mut c,
        &searches(&[
            ("TEXT \"long folded subject\"", "1"),
            ("TEXT \"VERY long\"", ""),
            ("TEXT \"osterreich\"", ""),
            ("TEXT alpenland", "1"),
            ("TEXT \"und mehr\"", ""),
            ("TEXT \"und   mehr\"", "1"),
        ]),
    );
    run_transcript(
        &mut c,
        "C: u1 SEARCH CHARSET UTF-8 TEXT {7+}\n\
         C: zürich\n\
         S: * SEARCH 1\n\
         S: u1 OK Search completed.\n\
         C: u2 SEARCH CHARSET UTF-8 TEXT {27+}\n\
         C: österreichischen alpenland\n\
         S: * SEARCH 1\n\
         S: u2 OK Search completed.\n\
         C: u3 SEARCH CHARSET UTF-8 TEXT {8+}\n\
         C: ΟΔΟΣ\n\
         S: * SEARCH 1\n\
         S: u3 OK Search completed.\n\
         C: u4 SEARCH CHARSET UTF-8 TEXT {5+}\n\
         C: ünal\n\
         S: * SEARCH 1\n\
         S: u4 OK Search completed.\n\
         C: u5 SEARCH CHARSET UTF-8 TEXT {15+}\n\
         C: x-note: straße\n\
         S: * SEARCH 1\n\
         S: u5 OK Search completed.\n\
         C: u6 SEARCH CHARSET UTF-8 BODY {5+}\n\
         C: ünal\n\
         S: * SEARCH\n\
         S: u6 OK Search completed.",
    );
}

/// A message of about `kib` KiB whose last line holds "walrus" when `marked`, from Ximena when
/// `i` is even.
fn sized_message(i: usize, kib: usize, marked: bool) -> String {
    let from = if i.is_multiple_of(2) {
        "Ximena"
    } else {
        "Other"
    };
    let mut m = format!("From: {from} <f{i}@example.com>\r\nSubject: sized {i}\r\n\r\n");
    for _ in 0..kib * 1024 / 78 {
        m.push_str(&"y".repeat(76));
        m.push_str("\r\n");
    }
    m.push_str(if marked {
        "a walrus ends it\r\n"
    } else {
        "nothing ends it\r\n"
    });
    m
}

/// Messages much larger than one storage read piece (128 KiB) in total, so each search lane
/// reads and evaluates many pieces, the next read while one is evaluated: every result is
/// checked against what the messages contain, for body-only, header-then-body and header-only
/// searches, and a FETCH that parses them all answers every message.
#[test]
fn large_messages_are_searched_and_parsed_over_many_read_pieces() {
    const N: usize = 48;
    let s = Server::start();
    let mut c = login(&s);
    let marked = |i: usize| i % 5 == 2;
    for i in 0..N {
        // 4 to 60 KiB, varied so the lanes' shares and pieces differ in size.
        let msg = sized_message(i, 4 + (i * 13) % 57, marked(i));
        append(&mut c, "", "01-Jan-2024 12:00:00 +0000", &msg);
    }
    ok(&c.cmd("s", "SELECT INBOX"));
    let body = seqs(N, marked);
    let both = seqs(N, |i| marked(i) && i.is_multiple_of(2));
    let from = seqs(N, |i| i.is_multiple_of(2));
    let cases = [
        ("BODY walrus", body.as_str()),
        ("TEXT WALRUS", body.as_str()),
        ("FROM ximena BODY walrus", both.as_str()),
        ("FROM ximena", from.as_str()),
        ("BODY absent-word", ""),
    ];
    run_transcript(&mut c, &searches(&cases));
    let fetched = c.cmd("f", "FETCH 1:* (ENVELOPE)");
    ok(&fetched);
    let answered = fetched
        .iter()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH (ENVELOPE ("))
        .count();
    assert_eq!(answered, N, "{fetched:?}");
}

/// SEARCH TEXT matches the whole message: the header fields of every MIME part (a part's
/// `Content-Disposition: attachment; filename=...`, the header of an attached message) as well
/// as the top-level header and the decoded text, as Dovecot's scan does. BODY matches only the
/// decoded text of the text parts, and SUBJECT only the top-level field.
#[test]
fn text_matches_the_header_of_every_mime_part() {
    let s = Server::start();
    let mut c = login(&s);
    let messages: [&str; 4] = [
        // 1: a text part and a PDF attachment; "attachment" appears only in the part header.
        "From: a@example.org\r\nSubject: report\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n\
         --x\r\nContent-Type: text/plain\r\n\r\nPlease find it enclosed.\r\n\
         --x\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--x--\r\n",
        // 2: no part header at all.
        "From: b@example.org\r\nSubject: plain\r\n\r\nNothing to see.\r\n",
        // 3: a forwarded message; its Subject is a part header of the outer message.
        "From: c@example.org\r\nSubject: Fwd: trip\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"y\"\r\n\r\n\
         --y\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n\
         --y\r\nContent-Type: message/rfc822\r\n\r\n\
         From: d@example.org\r\nSubject: Kilimanjaro trip\r\n\r\ninner words\r\n--y--\r\n",
        // 4: "attachment" in a top-level field only.
        "From: e@example.org\r\nSubject: note\r\nX-Note: attachment pending\r\n\r\nLater.\r\n",
    ];
    for (i, m) in messages.iter().enumerate() {
        ok(&c.cmd(
            &format!("a{i}"),
            &format!("APPEND INBOX {{{}+}}\r\n{m}", m.len()),
        ));
    }
    ok(&c.cmd("s", "SELECT INBOX"));
    let cases = [
        ("TEXT attachment", "1 4"),
        ("BODY attachment", ""),
        ("TEXT report.pdf", "1"),
        ("TEXT \"application/pdf\"", "1"),
        ("TEXT kilimanjaro", "3"),
        ("BODY kilimanjaro", ""),
        ("SUBJECT kilimanjaro", ""),
        ("TEXT \"inner words\"", "3"),
        ("BODY \"inner words\"", "3"),
        ("TEXT enclosed", "1"),
        ("NOT TEXT attachment", "2 3"),
    ];
    run_transcript(&mut c, &searches(&cases));
}
