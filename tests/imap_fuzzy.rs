//! SEARCH=FUZZY (RFC 6203) against the real binary: the FUZZY key on TEXT, SUBJECT, FROM and
//! BODY, FUZZY on a non-string key, the RELEVANCY return option (and its BAD without FUZZY),
//! and a Python imaplib client asking `UID SEARCH RETURN (RELEVANCY ALL) FUZZY TEXT "zanzibr"`.
//!
//! The rule (docs/fts.md, src/imap/search/fuzzy.rs): every word of the key must be within edit
//! distance 1 (words of 5+ characters: 2) of a word of the searched text, case-insensitively.
//! Score per key word: base 100/70/40 for distance 0/1/2, minus 10, plus the number of text words
//! at that distance (at most 10); a message scores its worst key word. Every expected number below
//! is worked out by hand from the six messages of this file:
//!
//! - TEXT "zanzibr" (7 letters, 2 edits): message 1 has "Zanzibar" three times (subject once,
//!   body twice), distance 1: 70 - 10 + 3 = 63. Message 3 has "Zanzibr" once in its subject,
//!   distance 0: 100 - 10 + 1 = 91. Message 4 has "zanzibar" four times in its body: 64.
//!   "Tanzania" (message 6) is 4 edits away; nothing else is close.
//! - SUBJECT "meetng" (6 letters): "Meeting" of message 2, one edit, once: 61.
//! - BODY "warm" (4 letters, 1 edit): message 1 only, exact, once: 91; "worm": 61.
//! - SUBJECT "trip zanzibr": message 1, "trip" exact (91) and "zanzibr" one edit (61): 61.
//! - FROM "alise": message 1's "alice", one edit: 61.
//! - ESORT by SUBJECT of the TEXT "zanzibr" hits: "Lunch" (4), "Trip to Zanzibar" (1), "Zanzibr
//!   typo" (3); the scores follow that order.

mod common;

use std::process::Command;

use common::*;

const M1: &str = "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: Trip to Zanzibar\r\n\r\n\
We fly to Zanzibar in June. Zanzibar is warm.\r\n";
const M2: &str = "From: bob@example.org\r\nTo: alice@example.com\r\nSubject: Meeting notes\r\n\r\n\
The meeting moved to Tuesday.\r\n";
const M3: &str = "From: carol@example.net\r\nTo: bob@example.org\r\nSubject: Zanzibr typo\r\n\r\n\
Nothing else here.\r\n";
const M4: &str = "From: dave@example.com\r\nTo: bob@example.org\r\nSubject: Lunch\r\n\r\n\
See you at the Zanzibar cafe, zanzibar style, ZANZIBAR food, zanzibar tea.\r\n";
const M5: &str = "From: erin@example.com\r\nTo: bob@example.org\r\nSubject: Budget\r\n\r\n\
Numbers only.\r\n";
const M6: &str = "From: frank@example.com\r\nTo: bob@example.org\r\nSubject: Tanzania\r\n\r\n\
Safari in Tanzania.\r\n";

/// The six messages in INBOX (UIDs 1..6; message 2 \Seen), and a session with INBOX selected.
fn fixture(s: &Server) -> Client {
    let mut c = login_demo(s);
    for (i, m) in [M1, M2, M3, M4, M5, M6].iter().enumerate() {
        let flags = if i == 1 { "\\Seen" } else { "" };
        c.send_raw(
            format!(
                "ap APPEND INBOX ({flags}) \"01-Jan-2024 10:00:00 +0000\" {{{}+}}\r\n{m}\r\n",
                m.len()
            )
            .as_bytes(),
        );
        assert_tagged_ok(&c.until("ap "));
    }
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    c
}

#[test]
fn fuzzy_keys_and_relevancy_on_the_wire() {
    let s = Server::start();
    let mut c = fixture(&s);
    let caps = c.cmd("c", "CAPABILITY");
    assert!(caps[0].split(' ').any(|w| w == "SEARCH=FUZZY"), "{caps:?}");
    run_transcript(
        &mut c,
        r#"C: a SEARCH TEXT "zanzibr"
S: * SEARCH 3
S: a OK Search completed.
C: b SEARCH FUZZY TEXT "zanzibr"
S: * SEARCH 1 3 4
S: b OK Search completed.
C: c UID SEARCH RETURN (RELEVANCY ALL) FUZZY TEXT "zanzibr"
S: * ESEARCH (TAG "c") UID ALL 1,3:4 RELEVANCY (63 91 64)
S: c OK Search completed.
C: d SEARCH RETURN (RELEVANCY) FUZZY SUBJECT "meetng"
S: * ESEARCH (TAG "d") ALL 2 RELEVANCY (61)
S: d OK Search completed.
C: e SEARCH RETURN (ALL RELEVANCY) FUZZY BODY warm
S: * ESEARCH (TAG "e") ALL 1 RELEVANCY (91)
S: e OK Search completed.
C: f SEARCH RETURN (ALL RELEVANCY) FUZZY BODY worm
S: * ESEARCH (TAG "f") ALL 1 RELEVANCY (61)
S: f OK Search completed.
C: g SEARCH RETURN (ALL RELEVANCY) FUZZY (SUBJECT "trip zanzibr")
S: * ESEARCH (TAG "g") ALL 1 RELEVANCY (61)
S: g OK Search completed.
C: h SEARCH RETURN (ALL RELEVANCY) FUZZY FROM alise
S: * ESEARCH (TAG "h") ALL 1 RELEVANCY (61)
S: h OK Search completed.
C: i SEARCH FUZZY TEXT zanzibr FROM dave
S: * SEARCH 4
S: i OK Search completed.
C: i2 SORT RETURN (ALL RELEVANCY) (SUBJECT) UTF-8 FUZZY TEXT zanzibr
S: * ESEARCH (TAG "i2") ALL 4,1,3 RELEVANCY (64 63 91)
S: i2 OK Sort completed.
C: j SEARCH FUZZY TEXT zanzibr NOT FUZZY SUBJECT zanzibar
S: * SEARCH 4
S: j OK Search completed.
C: k SEARCH RETURN (COUNT RELEVANCY) FUZZY SEEN
S: * ESEARCH (TAG "k") COUNT 1 RELEVANCY (100)
S: k OK Search completed.
C: l SEARCH RETURN (ALL RELEVANCY) FUZZY SUBJECT xylophone
S: * ESEARCH (TAG "l")
S: l OK Search completed.
C: m SEARCH RETURN (MIN RELEVANCY) FUZZY SUBJECT abc
S: * ESEARCH (TAG "m")
S: m OK Search completed.
C: n SEARCH RETURN (RELEVANCY) TEXT zanzibar
S: n BAD RELEVANCY can be used only with a FUZZY search key.
C: o SEARCH FUZZY
S: o BAD *
C: p SEARCH RETURN (RELEVANCE) FUZZY TEXT x
S: p BAD *
C: q NOOP
S: q OK NOOP completed."#,
    );
}

/// The Python imaplib client: RELEVANCY comes back in the ESEARCH response it collects.
const PY_CLIENT: &str = r#"
import imaplib, json, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("demo", "demo")
m.select("INBOX")
typ, _ = m.uid("SEARCH", "RETURN", "(RELEVANCY ALL)", "FUZZY", "TEXT", '"zanzibr"')
esearch = [d.decode() for d in m.untagged_responses.get("ESEARCH", [])]
print(json.dumps({"typ": typ, "esearch": esearch}))
m.logout()
"#;

#[test]
fn python_imaplib_gets_relevancy() {
    let s = Server::start();
    drop(fixture(&s));
    let out = output_with_stdin(
        Command::new("python3")
            .arg("-")
            .arg(s.ports.imap.to_string()),
        PY_CLIENT.as_bytes(),
    );
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(v["typ"], "OK", "{v}");
    let lines = v["esearch"].as_array().expect("ESEARCH collected");
    assert_eq!(lines.len(), 1, "{v}");
    let line = lines[0].as_str().expect("string");
    // imaplib's own tag comes first: `(TAG "ABCD3") UID ALL ...`.
    let tail = line.split_once(") ").map(|(_, t)| t);
    assert_eq!(tail, Some("UID ALL 1,3:4 RELEVANCY (63 91 64)"), "{v}");
}
