//! FETCH PREVIEW and PREVIEW (LAZY) (RFC 8970) on the wire, against the real binary.
//!
//! The corpus is written by hand below; each expected preview is worked out from the rules of
//! `mailcove::mime::preview` (Dovecot 2.3's snippet rules): the first text/plain or text/html
//! part that is not an attachment, transfer encoding and charset undone, HTML tags and
//! script/style content dropped, entities decoded, lines starting with `>` left out, whitespace
//! runs collapsed to one space, no leading or trailing space, at most 200 characters (RFC 8970
//! 3.3: SHOULD 200, MUST NOT exceed 256). Nothing displayable gives `""` (RFC 8970 3.2).
//! `PREVIEW (LAZY)` answers NIL for a preview not made yet (RFC 8970 4.1) and never makes one;
//! a `PREVIEW` without LAZY makes and caches it, after which LAZY returns it.

mod common;

use common::*;

/// The corpus, in APPEND order (UID n is `CORPUS[n - 1]`), with the preview each must get.
const CORPUS: &[(&str, &str)] = &[
    // 1: plain text; the quoted line is left out, whitespace collapsed, the signature kept
    // (as Dovecot does).
    (
        "From: alice@example.org\r\nSubject: plain\r\n\r\nHello Bob,\r\n\r\n  the meeting   is at 10.\r\n\r\n> Earlier quoted text\r\n-- \r\nAlice\r\n",
        "Hello Bob, the meeting is at 10. -- Alice",
    ),
    // 2: HTML only: style and script dropped, &nbsp; and &amp; decoded, blocks separated.
    (
        "Subject: html\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>body{color:red}</style></head><body><p>Hi&nbsp;there &amp; welcome</p><div>Second block</div><script>alert(1)</script></body></html>\r\n",
        "Hi there & welcome Second block",
    ),
    // 3: multipart/alternative: the first alternative, the plain one.
    (
        "Subject: alternative\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nPlain part wins\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>HTML part</p>\r\n--b1--\r\n",
        "Plain part wins",
    ),
    // 4: ISO-8859-1 in 8bit, converted to UTF-8 (sent as a literal: not 7-bit).
    (
        "Subject: latin1\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\u{fc}\u{df}e aus K\u{f6}ln\r\n",
        "Grüße aus Köln",
    ),
    // 5: quoted-printable UTF-8 with a soft line break.
    (
        "Subject: qp\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 au lait, s'il vous pla=C3=AEt. This line is=\r\n joined.\r\n",
        "Café au lait, s'il vous plaît. This line is joined.",
    ),
    // 6: base64 UTF-8 ("Base64 body: ¡Hola, señor! ¿Qué tal?").
    (
        "Subject: base64\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nQmFzZTY0IGJvZHk6IMKhSG9sYSwgc2XDsW9yISDCv1F1w6kgdGFsPw==\r\n",
        "Base64 body: ¡Hola, señor! ¿Qué tal?",
    ),
    // 7: long: 100 × "ä", a space, 60 × "漢字" (221 characters, 561 octets), cut at 200
    // characters: the 100 "ä", the space and 99 CJK characters.
    ("", ""),
    // 8: empty body.
    ("Subject: empty\r\n\r\n", ""),
    // 9: only an attachment.
    (
        "Subject: pdf\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQgbm90IHRleHQ=\r\n--m--\r\n",
        "",
    ),
];

/// The long message (UID 7) and its expected preview.
fn long_case() -> (String, String) {
    let body = "ä".repeat(100) + " " + &"漢字".repeat(60);
    let msg = format!(
        "Subject: long\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    let expected = "ä".repeat(100) + " " + &"漢字".repeat(49) + "漢";
    (msg, expected)
}

/// Messages (as stored) and expected previews, by UID - 1.
fn corpus() -> Vec<(Vec<u8>, String)> {
    CORPUS
        .iter()
        .enumerate()
        .map(|(i, (msg, preview))| {
            if i == 6 {
                let (m, p) = long_case();
                return (m.into_bytes(), p);
            }
            let bytes = if i == 3 {
                // Latin-1: each char of the literal above is one octet.
                msg.chars().map(|c| c as u32 as u8).collect()
            } else {
                msg.as_bytes().to_vec()
            };
            (bytes, (*preview).to_string())
        })
        .collect()
}

fn server() -> Server {
    let s = Server::start();
    let msgs = corpus();
    let refs: Vec<&[u8]> = msgs.iter().map(|(m, _)| m.as_slice()).collect();
    s.append_messages("demo", "demo", "INBOX", &refs);
    s
}

fn selected(s: &Server) -> Client {
    let mut c = login_demo(s);
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    c
}

/// Reads one response, each literal `{n}` replaced by its octets in double quotes (they must be
/// UTF-8, RFC 8970 3.3).
fn response(c: &mut Client) -> String {
    let mut out = String::new();
    loop {
        let l = c.line();
        if let Some(open) = l.rfind('{').filter(|_| l.ends_with('}')) {
            let n: usize = l[open + 1..l.len() - 1].parse().expect("literal length");
            out.push_str(&l[..open]);
            let text = String::from_utf8(c.bytes(n)).expect("preview literal is UTF-8");
            out.push('"');
            out.push_str(&text);
            out.push('"');
            continue;
        }
        out.push_str(&l);
        return out;
    }
}

/// Sends a command; returns its responses (literals inlined) and the tagged line last.
fn run(c: &mut Client, tag: &str, cmd: &str) -> Vec<String> {
    c.send(&format!("{tag} {cmd}"));
    let mut out = Vec::new();
    loop {
        let r = response(c);
        let done = r.starts_with(&format!("{tag} "));
        out.push(r);
        if done {
            return out;
        }
    }
}

/// `PREVIEW "text"` as this test's [`response`] shows it (the server's quoted strings escape
/// `"` and `\`, which no expected preview holds).
fn item(text: &str) -> String {
    format!("PREVIEW \"{text}\"")
}

#[test]
fn capability_names_preview() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let caps = c.cmd("c", "CAPABILITY");
    assert!(
        caps.iter()
            .any(|l| l.starts_with("* CAPABILITY ") && l.split(' ').any(|w| w == "PREVIEW")),
        "{caps:?}"
    );
}

#[test]
fn every_corpus_message_gets_its_hand_made_preview() {
    let s = server();
    let mut c = selected(&s);
    let expected = corpus();
    let got = run(&mut c, "f", "FETCH 1:* (PREVIEW)");
    assert_eq!(got.len(), expected.len() + 1, "{got:?}");
    assert!(got.last().is_some_and(|l| l.starts_with("f OK")), "{got:?}");
    for (i, (_, preview)) in expected.iter().enumerate() {
        assert_eq!(
            got[i],
            format!("* {} FETCH ({})", i + 1, item(preview)),
            "message {}",
            i + 1
        );
    }
    // The cut counts characters, not octets, and stays within RFC 8970's limits.
    assert_eq!(expected[6].1.chars().count(), 200);
    assert!(expected[6].1.len() > 256);
    // A second FETCH (now from the cache) answers the same.
    let again = run(&mut c, "g", "FETCH 1:* (PREVIEW)");
    assert_eq!(&again[..expected.len()], &got[..expected.len()]);
}

#[test]
fn lazy_answers_nil_until_a_plain_preview_filled_the_cache() {
    let s = server();
    let mut c = selected(&s);
    // Nothing made yet: LAZY answers NIL for every message and makes nothing.
    let lazy = run(&mut c, "l1", "FETCH 1:9 (PREVIEW (LAZY))");
    for seq in 1..=9 {
        assert_eq!(lazy[seq - 1], format!("* {seq} FETCH (PREVIEW NIL)"));
    }
    let lazy = run(&mut c, "l2", "FETCH 1:9 (PREVIEW (LAZY))");
    assert_eq!(lazy[0], "* 1 FETCH (PREVIEW NIL)");
    // A PREVIEW without LAZY never answers NIL and fills the cache for messages 2, 3 and 8.
    let expected = corpus();
    run_transcript(
        &mut c,
        &format!(
            "C: p1 FETCH 2:3,8 (PREVIEW)
             S: * 2 FETCH ({})
             S: * 3 FETCH ({})
             S: * 8 FETCH (PREVIEW \"\")
             S: p1 OK Fetch completed.",
            item(&expected[1].1),
            item(&expected[2].1)
        ),
    );
    // RFC 8970 8: making previews is logged with the user's identity (the LAZY FETCHes made
    // none, so this line is the one of p1).
    s.wait_log(|log| {
        log.lines().any(|l| {
            l.contains("FETCH PREVIEW made previews") && l.contains("made=3") && l.contains("demo")
        })
    });
    // Now LAZY has those three (the empty one as "", not NIL), still NIL for the others.
    let lazy = run(&mut c, "l3", "FETCH 1:9 (UID PREVIEW (LAZY))");
    assert_eq!(lazy.len(), 10, "{lazy:?}");
    for seq in 1..=9usize {
        let want = match seq {
            2 | 3 | 8 => item(&expected[seq - 1].1),
            _ => "PREVIEW NIL".to_string(),
        };
        assert_eq!(lazy[seq - 1], format!("* {seq} FETCH (UID {seq} {want})"));
    }
    // LAZY and non-LAZY in one command: one PREVIEW item, which may not be NIL.
    let both = run(&mut c, "b", "FETCH 1 (PREVIEW (LAZY) PREVIEW)");
    assert_eq!(both[0], format!("* 1 FETCH ({})", item(&expected[0].1)));
}

#[test]
fn preview_survives_a_restart_on_maildir() {
    if skip_unless_maildir("preview_survives_a_restart_on_maildir") {
        return;
    }
    let mut s = server();
    let expected = corpus();
    {
        let mut c = selected(&s);
        let got = run(&mut c, "p", "FETCH 4:5 (PREVIEW)");
        assert_eq!(got[0], format!("* 4 FETCH ({})", item(&expected[3].1)));
        assert_eq!(got[1], format!("* 5 FETCH ({})", item(&expected[4].1)));
        c.cmd("o", "LOGOUT");
    }
    s.restart();
    let mut c = selected(&s);
    let lazy = run(&mut c, "l", "FETCH 3:5 (PREVIEW (LAZY))");
    assert_eq!(lazy[0], "* 3 FETCH (PREVIEW NIL)");
    assert_eq!(lazy[1], format!("* 4 FETCH ({})", item(&expected[3].1)));
    assert_eq!(lazy[2], format!("* 5 FETCH ({})", item(&expected[4].1)));
}

#[test]
fn preview_with_other_items_uid_fetch_and_no_seen() {
    let s = server();
    let mut c = selected(&s);
    let expected = corpus();
    let size = expected[0].0.len();
    run_transcript(
        &mut c,
        &format!(
            "C: a FETCH 1 (FLAGS PREVIEW RFC822.SIZE)
             S: * 1 FETCH (FLAGS (\\Recent) {} RFC822.SIZE {size})
             S: a OK Fetch completed.
             C: b UID FETCH 3 (PREVIEW ENVELOPE)
             S: * 3 FETCH (UID 3 {} ENVELOPE (NIL \"alternative\" {{*}}))
             S: b OK Fetch completed.
             C: c FETCH 1:2 (PREVIEW BODY.PEEK[HEADER.FIELDS (SUBJECT)])
             S: * 1 FETCH ({} BODY[HEADER.FIELDS (SUBJECT)] {{18}}
             S: Subject: plain
             S:
             S: )
             S: * 2 FETCH ({} BODY[HEADER.FIELDS (SUBJECT)] {{17}}
             S: Subject: html
             S:
             S: )
             S: c OK Fetch completed.
             # PREVIEW reads the message but is not BODY[]: no \\Seen (RFC 8970 defines no
             # side effect).
             C: d FETCH 1:3 (FLAGS)
             S: * 1 FETCH (FLAGS (\\Recent))
             S: * 2 FETCH (FLAGS (\\Recent))
             S: * 3 FETCH (FLAGS (\\Recent))
             S: d OK Fetch completed.",
            item(&expected[0].1),
            item(&expected[2].1),
            item(&expected[0].1),
            item(&expected[1].1),
        ),
    );
}

#[test]
fn bad_preview_syntax_is_bad() {
    let s = server();
    let mut c = selected(&s);
    for (tag, cmd) in [
        ("b1", "FETCH 1 (PREVIEW (FUZZY))"),
        ("b2", "FETCH 1 (PREVIEW (LAZY FUZZY))"),
        ("b3", "FETCH 1 (PREVIEW ())"),
        ("b4", "FETCH 1 PREVIEW[]"),
    ] {
        let r = c.cmd(tag, cmd);
        assert!(
            r.last()
                .is_some_and(|l| l.starts_with(&format!("{tag} BAD"))),
            "{cmd}: {r:?}"
        );
    }
    // The session is still usable.
    assert_tagged_ok(&c.cmd("n", "NOOP"));
}
