//! SORT and UID SORT (RFC 5256), DISPLAYFROM/DISPLAYTO (RFC 5957) and the i;unicode-casemap
//! collation (RFC 5051, I18NLEVEL=1 of RFC 5255) against the real binary, as wire transcripts
//! on eight hand-written messages. Every expected order below is worked out by hand from the
//! RFC rules in the comment next to it.

mod common;

use common::*;

/// Pads `header` (which ends in the blank line) with a body of `x` lines to exactly `total`
/// bytes, so that SIZE orders are known by construction.
fn padded(header: &str, total: usize) -> String {
    let mut m = header.to_string();
    let mut rest = total - m.len();
    while rest > 74 {
        m.push_str(&"x".repeat(70));
        m.push_str("\r\n");
        rest -= 72;
    }
    m.push_str(&"x".repeat(rest - 2));
    m.push_str("\r\n");
    assert_eq!(m.len(), total, "{header}");
    m
}

/// The corpus, as (INTERNALDATE, message). Keys by hand (casemapped = ASCII upper-cased;
/// `Ä` is `A` + U+0308, whose UTF-8 bytes CC 88 sort after every ASCII letter):
///
/// | seq | sent (UTC)          | base subject | from mbox | display from | to mbox     | display to  | cc   | size |
/// |-----|---------------------|--------------|-----------|--------------|-------------|-------------|------|------|
/// | 1   | 01-Jan 12:00        | APPLES       | ZOE       | ZOE ZIMMER   | BOB         | BOB@EX..ORG |      | 900  |
/// | 2   | 01-Jan 11:00 (+0200)| BANANAS      | ALICE     | ALICE@EX.COM | CARL        | ZACK        | DAVE | 500  |
/// | 3   | none: 03-Jan 10:00  | ÄPFEL        | AERGER    | ÄRGER        | ZED         | ZED@EX..ORG |      | 700  |
/// | 4   | bad: 04-Jan 10:00   | APPLES (fwd) | (none)    | (none)       | group name  | group name  |      | 500  |
/// | 5   | 01-Jan 00:30 (-0100)| ZEBRA        | BERT      | APFEL, BERT  | ALICE       | ALICE       | CARL | 300  |
/// | 6   | 02-Jan 00:00        | BANANAS      | CARL      | CARL         | ALICE       | ALICE@EX.COM|      | 1000 |
/// | 7   | 02-Jan 00:00        | (none)       | ZEBRA     | ZEBRA@EX.COM | BOB         | BOB@EX..ORG |      | 800  |
/// | 8   | 01-Jan 12:00        | APPLES       | APFEL     | APFEL        | (none)      | (none)      |      | 600  |
fn corpus() -> Vec<(&'static str, String)> {
    vec![
        (
            "01-Jan-2020 10:00:00 +0000",
            padded(
                "Date: Wed, 01 Jan 2020 12:00:00 +0000\r\nFrom: Zoe Zimmer <zoe@example.com>\r\n\
To: bob@example.org\r\nSubject: Re: Apples\r\n\r\n",
                900,
            ),
        ),
        (
            "02-Jan-2020 10:00:00 +0000",
            padded(
                "Date: Wed, 01 Jan 2020 13:00:00 +0200\r\nFrom: alice@example.com\r\n\
To: Zack <carl@example.org>\r\nCc: dave@example.net\r\nSubject: [list] bananas\r\n\r\n",
                500,
            ),
        ),
        (
            "03-Jan-2020 10:00:00 +0000",
            padded(
                "From: =?UTF-8?Q?=C3=84rger?= <aerger@example.de>\r\nTo: zed@example.org\r\n\
Subject: =?UTF-8?Q?=C3=84pfel?=\r\n\r\n",
                700,
            ),
        ),
        (
            "04-Jan-2020 10:00:00 +0000",
            padded(
                "Date: garbage\r\nTo: undisclosed-recipients:;\r\nSubject: Fwd: apples (fwd)\r\n\r\n",
                500,
            ),
        ),
        (
            "05-Jan-2020 10:00:00 +0000",
            padded(
                "Date: Tue, 31 Dec 2019 23:30:00 -0100\r\nFrom: \"apfel, Bert\" <bert@example.com>\r\n\
To: Alice <alice@example.com>\r\nCc: Carl <carl@example.org>\r\nSubject: Zebra\r\n\r\n",
                300,
            ),
        ),
        (
            "06-Jan-2020 10:00:00 +0000",
            padded(
                "Date: Thu, 02 Jan 2020 00:00:00 +0000\r\nFrom: Carl <carl@example.org>\r\n\
To: alice@example.com\r\nSubject: [fwd: Bananas]\r\n\r\n",
                1000,
            ),
        ),
        (
            "07-Jan-2020 10:00:00 +0000",
            padded(
                "Date: Thu, 02 Jan 2020 00:00:00 +0000\r\nFrom: zebra@example.com\r\n\
To: bob@example.org\r\n\r\n",
                800,
            ),
        ),
        (
            "08-Jan-2020 10:00:00 +0000",
            padded(
                "Date: Wed, 01 Jan 2020 12:00:00 +0000\r\nFrom: Apfel <apfel@example.com>\r\n\
Subject: RE: [list] Re: apples\r\n\r\n",
                600,
            ),
        ),
    ]
}

fn append(c: &mut Client, date: &str, msg: &str) {
    c.send_raw(
        format!(
            "ap APPEND INBOX () \"{date}\" {{{}+}}\r\n{msg}\r\n",
            msg.len()
        )
        .as_bytes(),
    );
    assert_tagged_ok(&c.until("ap "));
}

/// A session with the corpus in INBOX, selected. A first message is appended and expunged
/// before it, so UIDs are sequence numbers + 1.
fn fixture(s: &Server) -> Client {
    let mut c = login_demo(s);
    append(
        &mut c,
        "01-Jan-2019 00:00:00 +0000",
        "Subject: gone\r\n\r\nx\r\n",
    );
    for (date, msg) in corpus() {
        append(&mut c, date, &msg);
    }
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&c.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&c.cmd("e", "EXPUNGE"));
    c
}

/// A transcript of SORT commands: each `(command, result)` becomes a command, its `* SORT`
/// line and the tagged OK.
fn sorts(cases: &[(&str, &str)]) -> String {
    let mut t = String::new();
    for (i, (command, result)) in cases.iter().enumerate() {
        let sp = if result.is_empty() { "" } else { " " };
        t.push_str(&format!(
            "C: k{i} {command}\nS: * SORT{sp}{result}\nS: k{i} OK Sort completed.\n"
        ));
    }
    t
}

#[test]
fn every_sort_key_ascending_and_reversed() {
    let s = Server::start();
    let mut c = fixture(&s);
    let cases = [
        // INTERNALDATE: appended in order.
        ("SORT (ARRIVAL) UTF-8 ALL", "1 2 3 4 5 6 7 8"),
        ("SORT (REVERSE ARRIVAL) UTF-8 ALL", "8 7 6 5 4 3 2 1"),
        // Sent dates in UTC; 3 (no Date) and 4 (bad Date) use INTERNALDATE; 1/8 and 6/7 tie
        // and stay in sequence order.
        ("SORT (DATE) UTF-8 ALL", "5 2 1 8 6 7 3 4"),
        // REVERSE reverses only the date, never the sequence tie-breaker.
        ("SORT (REVERSE DATE) UTF-8 ALL", "4 3 6 7 1 8 2 5"),
        ("SORT (SIZE) US-ASCII ALL", "5 2 4 8 3 7 1 6"),
        ("SORT (REVERSE SIZE) UTF-8 ALL", "6 1 7 3 8 2 4 5"),
        // Base subjects: "" < APPLES (1 4 8) < ÄPFEL < BANANAS (2 6) < ZEBRA.
        ("SORT (SUBJECT) UTF-8 ALL", "7 1 4 8 3 2 6 5"),
        ("SORT (REVERSE SUBJECT) UTF-8 ALL", "5 2 6 3 1 4 8 7"),
        // RFC 5256's own example shape: SUBJECT, then the newest first within a subject.
        ("SORT (SUBJECT REVERSE DATE) UTF-8 ALL", "7 4 1 8 3 6 2 5"),
        // addr-mailbox of the first From: "" < AERGER < ALICE < APFEL < BERT < CARL < ZEBRA < ZOE.
        ("SORT (FROM) UTF-8 ALL", "4 3 2 8 5 6 7 1"),
        // First To; 4's first address is the group start, whose addr-mailbox is the group name.
        ("SORT (TO) UTF-8 ALL", "8 5 6 1 7 2 4 3"),
        // Cc: the six without one (empty strings first, by sequence), then CARL, DAVE.
        ("SORT (CC) UTF-8 ALL", "1 3 4 6 7 8 5 2"),
        ("SORT (REVERSE CC) UTF-8 ALL", "2 5 1 3 4 6 7 8"),
        // RFC 5957: display name, else mailbox@host.
        ("SORT (DISPLAYFROM) UTF-8 ALL", "4 2 8 5 3 6 7 1"),
        ("SORT (DISPLAYTO) UTF-8 ALL", "8 5 6 1 7 4 2 3"),
        // Several criteria: SIZE ties (2, 4) broken by REVERSE ARRIVAL.
        ("SORT (SIZE REVERSE ARRIVAL) UTF-8 ALL", "5 4 2 8 3 7 1 6"),
        // Lower case keywords are the same.
        ("sort (reverse date) utf-8 all", "4 3 6 7 1 8 2 5"),
    ];
    run_transcript(&mut c, &sorts(&cases));
    // A second round answers from the sort key cache, with the same orders.
    run_transcript(&mut c, &sorts(&cases));
    // After FETCH ENVELOPE the keys come from the cached envelopes instead of the headers:
    // the same orders again, first and warm.
    let s = Server::start();
    let mut c = fixture(&s);
    let env = c.cmd("f", "FETCH 1:* ENVELOPE");
    assert_tagged_ok(&env);
    assert_eq!(env.len(), 9, "{env:?}");
    run_transcript(&mut c, &sorts(&cases));
    run_transcript(&mut c, &sorts(&cases));
}

#[test]
fn search_criteria_uid_sort_and_saved_results() {
    let s = Server::start();
    let mut c = fixture(&s);
    run_transcript(
        &mut c,
        &sorts(&[
            // Only what the search finds is sorted: subjects containing "apples".
            ("SORT (DATE) UTF-8 SUBJECT apples", "1 8 4"),
            ("SORT (SUBJECT) UTF-8 SUBJECT \"not in mailbox\"", ""),
            ("SORT (REVERSE DATE) UTF-8 2:5 LARGER 400", "4 3 2"),
            // UID SORT: the same order, as UIDs (sequence number + 1); search keys stay
            // sequence numbers unless UID is used.
            ("UID SORT (DATE) UTF-8 ALL", "6 3 2 9 7 8 4 5"),
            ("UID SORT (SUBJECT) UTF-8 UID 2:4", "2 4 3"),
            ("UID SORT (REVERSE ARRIVAL) UTF-8 1:2", "3 2"),
            // Encoded words in the search string's charset.
            ("SORT (ARRIVAL) UTF-8 FROM \"Ärger\"", "3"),
        ]),
    );
    // SEARCHRES: `$` from a saved search works in SORT's search keys.
    run_transcript(
        &mut c,
        "C: r1 SEARCH RETURN (SAVE) FROM apfel\n\
         S: r1 OK Search completed.\n\
         C: r2 SORT (REVERSE ARRIVAL) UTF-8 $\n\
         S: * SORT 8 5\n\
         S: r2 OK Sort completed.\n\
         C: r3 UID SORT (DISPLAYFROM) UTF-8 $\n\
         S: * SORT 9 6\n\
         S: r3 OK Sort completed.\n",
    );
}

#[test]
fn charsets_syntax_errors_and_state() {
    let s = Server::start();
    let mut c = login_demo(&s);
    // SORT needs a selected mailbox.
    let r = c.cmd("n0", "SORT (DATE) UTF-8 ALL");
    assert!(r.last().is_some_and(|l| l.starts_with("n0 BAD ")), "{r:?}");
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    run_transcript(
        &mut c,
        "C: c1 SORT (DATE) KOI8-R ALL\n\
         S: c1 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.\n\
         C: c2 UID SORT (DATE) x-unknown SUBJECT a\n\
         S: c2 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.\n\
         C: c3 SORT (DATE) US-ASCII ALL\n\
         S: * SORT\n\
         S: c3 OK Sort completed.\n",
    );
    let bad = [
        "SORT DATE UTF-8 ALL",
        "SORT () UTF-8 ALL",
        "SORT (FOO) UTF-8 ALL",
        "SORT (REVERSE) UTF-8 ALL",
        "SORT (REVERSE REVERSE DATE) UTF-8 ALL",
        "SORT (DATE  SIZE) UTF-8 ALL",
        "SORT (DATE) UTF-8",
        "SORT (DATE)",
        "SORT (DATE) UTF-8 NOTAKEY",
        "SORT (DATE SIZE DATE SIZE DATE SIZE DATE SIZE DATE SIZE DATE) UTF-8 ALL",
        "UID SORT (DATE) UTF-8 ALL extra)",
    ];
    for (i, cmd) in bad.iter().enumerate() {
        let tag = format!("b{i}");
        let r = c.cmd(&tag, cmd);
        assert!(
            r.len() == 1
                && r.last()
                    .is_some_and(|l| l.starts_with(&format!("{tag} BAD "))),
            "{cmd}: {r:?}"
        );
    }
    // Still usable after the errors.
    run_transcript(
        &mut c,
        "C: z SORT (DATE) UTF-8 ALL\nS: * SORT\nS: z OK Sort completed.\n",
    );
}

#[test]
fn capabilities_name_sort_display_and_i18nlevel() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let r = c.cmd("c", "CAPABILITY");
    let caps = r.first().cloned().unwrap_or_default();
    let words: Vec<&str> = caps.split(' ').collect();
    for cap in ["SORT", "SORT=DISPLAY", "I18NLEVEL=1"] {
        assert!(words.contains(&cap), "{cap} missing in {caps}");
    }
}

#[test]
fn i18n_names_sort_by_unicode_casemap() {
    let s = Server::start();
    let mut c = login_demo(&s);
    // RFC 5051: titlecase then NFKD, compared as octets. "apfel" -> "APFEL",
    // "Ärger" -> "A" U+0308 "RGER" (decomposed, so it sorts among the As, after "AP"),
    // "Zebra" -> "ZEBRA", "ábaco" (precomposed) and "a\u{301}baco" (decomposed) are equal and
    // keep their sequence order; "ß" has no simple titlecase mapping and stays U+00DF (C3 9F),
    // after every ASCII letter.
    let names = [
        "Zebra",                   // 1: ZEBRA
        "=?UTF-8?Q?=C3=84rger?=",  // 2: A CC88 RGER
        "apfel",                   // 3: APFEL
        "=?UTF-8?Q?=C3=A1baco?=",  // 4: A CC81 BACO
        "=?UTF-8?Q?a=CC=81baco?=", // 5: A CC81 BACO
        "=?UTF-8?Q?=C3=9Fpiel?=",  // 6: C39F PIEL
        "ZEBRA",                   // 7: ZEBRA
    ];
    for (i, n) in names.iter().enumerate() {
        let msg = format!("From: {n} <u{i}@example.com>\r\nSubject: {n}\r\n\r\nx\r\n");
        append(&mut c, "01-Jan-2020 00:00:00 +0000", &msg);
    }
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    // APFEL < A CC81.. < A CC88.. < ZEBRA (1, 7) < C39F..
    run_transcript(
        &mut c,
        &sorts(&[
            ("SORT (SUBJECT) UTF-8 ALL", "3 4 5 2 1 7 6"),
            ("SORT (DISPLAYFROM) UTF-8 ALL", "3 4 5 2 1 7 6"),
            ("SORT (REVERSE DISPLAYFROM) UTF-8 ALL", "6 1 7 2 4 5 3"),
        ]),
    );
}

#[test]
fn search_matches_under_unicode_casemap() {
    // RFC 5255 4.2: with I18NLEVEL=1, SEARCH's string keys use i;unicode-casemap too: case
    // and canonical/compatibility decomposition do not matter.
    let s = Server::start();
    let mut c = login_demo(&s);
    // 1: decomposed e + U+0301; 2: precomposed é; 3: full-width letters; 4: neither.
    // Substrings compare octets of the canonical form, so "cafe" is found in "CAFE" U+0301 too
    // (as in Dovecot).
    for subject in [
        "=?UTF-8?Q?Cafe=CC=81_au_lait?=",
        "=?UTF-8?Q?CAF=C3=89?=",
        "=?UTF-8?B?77yj77yh77ym77yl?=",
        "Tea",
    ] {
        let msg = format!("From: x@example.com\r\nSubject: {subject}\r\n\r\nbody\r\n");
        append(&mut c, "01-Jan-2020 00:00:00 +0000", &msg);
    }
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    run_transcript(
        &mut c,
        "C: a SEARCH CHARSET UTF-8 SUBJECT \"café\"\n\
         S: * SEARCH 1 2\n\
         S: a OK Search completed.\n\
         C: b SEARCH CHARSET UTF-8 SUBJECT \"cafe\"\n\
         S: * SEARCH 1 2 3\n\
         S: b OK Search completed.\n\
         C: c SORT (SUBJECT) UTF-8 OR SUBJECT caf SUBJECT tea\n\
         S: * SORT 3 2 1 4\n\
         S: c OK Sort completed.\n",
    );
}

/// Sort results are shared by all sessions of the server (per mailbox and UIDVALIDITY): a
/// message appended or expunged by another session, or a mailbox made again under the same
/// name, must show in the next sort of a new session, never a stale order.
#[test]
fn shared_sort_columns_follow_appends_expunges_and_recreation() {
    let s = Server::start();
    let mut c = fixture(&s);
    let before = [
        ("SORT (SUBJECT) UTF-8 ALL", "7 1 4 8 3 2 6 5"),
        ("SORT (FROM) UTF-8 ALL", "4 3 2 8 5 6 7 1"),
        ("SORT (DATE) UTF-8 ALL", "5 2 1 8 6 7 3 4"),
        ("SORT (TO) UTF-8 ALL", "8 5 6 1 7 2 4 3"),
        ("SORT (REVERSE DISPLAYFROM) UTF-8 ALL", "1 7 6 3 5 8 2 4"),
    ];
    run_transcript(&mut c, &sorts(&before));
    // Warm, on a new session.
    let mut w = login_demo(&s);
    assert_tagged_ok(&w.cmd("s", "SELECT INBOX"));
    run_transcript(&mut w, &sorts(&before));
    // Another session appends a message whose keys sort early in every column.
    let mut other = login_demo(&s);
    append(
        &mut other,
        "06-Jan-2020 10:00:00 +0000",
        "Date: Wed, 01 Jan 2020 00:00:00 +0000\r\nFrom: Aaa <aaa@example.com>\r\n\
Subject: Aardvark\r\n\r\nx\r\n",
    );
    let after = [
        ("SORT (SUBJECT) UTF-8 ALL", "7 9 1 4 8 3 2 6 5"),
        ("SORT (FROM) UTF-8 ALL", "4 9 3 2 8 5 6 7 1"),
        ("SORT (DATE) UTF-8 ALL", "9 5 2 1 8 6 7 3 4"),
        ("SORT (TO) UTF-8 ALL", "8 9 5 6 1 7 2 4 3"),
        ("SORT (REVERSE DISPLAYFROM) UTF-8 ALL", "1 7 6 3 5 8 2 9 4"),
        // A subset of what the columns hold answers from them.
        ("SORT (SUBJECT) UTF-8 1:4", "1 4 3 2"),
    ];
    for _ in 0..2 {
        let mut n = login_demo(&s);
        assert_tagged_ok(&n.cmd("s", "SELECT INBOX"));
        run_transcript(&mut n, &sorts(&after));
    }
    // The session that had sorted before sees the new message too.
    assert_tagged_ok(&c.cmd("n", "NOOP"));
    run_transcript(&mut c, &sorts(&after));
    // Expunging 5 (ZEBRA) from another session renumbers 6..9 to 5..8.
    assert_tagged_ok(&other.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&other.cmd("d", "STORE 5 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&other.cmd("e", "EXPUNGE"));
    let mut n = login_demo(&s);
    assert_tagged_ok(&n.cmd("s", "SELECT INBOX"));
    run_transcript(
        &mut n,
        &sorts(&[
            ("SORT (SUBJECT) UTF-8 ALL", "6 8 1 4 7 3 2 5"),
            ("SORT (REVERSE FROM) UTF-8 ALL", "1 6 5 7 2 3 8 4"),
        ]),
    );
    // A mailbox deleted and made again under the same name holds other messages.
    assert_tagged_ok(&n.cmd("c", "CREATE Box"));
    for subject in ["b", "a"] {
        let msg = format!("Subject: {subject}\r\n\r\nx\r\n");
        n.send_raw(format!("ap APPEND Box {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
        assert_tagged_ok(&n.until("ap "));
    }
    assert_tagged_ok(&n.cmd("s", "SELECT Box"));
    run_transcript(&mut n, &sorts(&[("SORT (SUBJECT) UTF-8 ALL", "2 1")]));
    assert_tagged_ok(&n.cmd("u", "UNSELECT"));
    assert_tagged_ok(&n.cmd("x", "DELETE Box"));
    assert_tagged_ok(&n.cmd("c", "CREATE Box"));
    for subject in ["a", "b"] {
        let msg = format!("Subject: {subject}\r\n\r\nx\r\n");
        n.send_raw(format!("ap APPEND Box {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
        assert_tagged_ok(&n.until("ap "));
    }
    let mut m = login_demo(&s);
    assert_tagged_ok(&m.cmd("s", "SELECT Box"));
    run_transcript(&mut m, &sorts(&[("SORT (SUBJECT) UTF-8 ALL", "1 2")]));
}
