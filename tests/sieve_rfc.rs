//! Sieve transcripts through `mailcove sieve-test`: each extension's examples from its RFC
//! (script, message and envelope in, the actions out), with the expected actions worked out by
//! hand from the RFC text, plus compile errors and hostile scripts.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mailcove");

struct Out {
    stdout: String,
    stderr: String,
    code: i32,
}

impl Out {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Writes `script` (plus `extra` scripts `NAME.sieve` next to it) and `message` (LF turned
/// into CRLF) to a temporary directory and runs sieve-test with `args`.
fn run_in(dir: &Path, script: &str, message: &str, args: &[&str]) -> Out {
    let sp = dir.join("script.sieve");
    let mp = dir.join("message.eml");
    std::fs::write(&sp, script).expect("write script");
    std::fs::write(&mp, message.replace("\r\n", "\n").replace('\n', "\r\n"))
        .expect("write message");
    let o = Command::new(BIN)
        .arg("sieve-test")
        .arg(&sp)
        .arg(&mp)
        .args(args)
        .output()
        .expect("run mailcove sieve-test");
    Out {
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        code: o.status.code().unwrap_or(-1),
    }
}

fn run(script: &str, message: &str, args: &[&str]) -> Out {
    let dir = tempfile::tempdir().expect("tempdir");
    run_in(dir.path(), script, message, args)
}

fn actions(script: &str, message: &str, args: &[&str]) -> Vec<String> {
    let o = run(script, message, args);
    assert_eq!(o.code, 0, "script failed: {}{}", o.stdout, o.stderr);
    o.lines().iter().map(|s| s.to_string()).collect()
}

const SIMPLE: &str = "From: coyote@desert.example.org\n\
To: roadrunner@acme.example.com\n\
Subject: I have a present for you\n\
Date: Mon, 10 Mar 2008 11:05:00 -0700\n\
Message-ID: <present.1@desert.example.org>\n\
\n\
Look, I'm sorry about the whole anvil thing, and I really\n\
didn't mean to try and drop it on you from the top of the\n\
cliff.  I want to try to make it up to you.\n";

// ---- RFC 5228: the base language ----

#[test]
fn rfc5228_no_action_is_implicit_keep() {
    assert_eq!(actions("# nothing\n", SIMPLE, &[]), ["keep"]);
    assert_eq!(actions("if false { discard; }", SIMPLE, &[]), ["keep"]);
}

#[test]
fn rfc5228_discard_cancels_implicit_keep() {
    // Section 2.7.1: header :contains, default comparator i;ascii-casemap.
    let s = "if header :contains \"Subject\" \"PRESENT\" { discard; }";
    assert_eq!(actions(s, SIMPLE, &[]), ["discard"]);
}

#[test]
fn rfc5228_fileinto_cancels_keep_and_stores_once() {
    // Section 4.1 and 2.10.3: the same mailbox twice is stored once.
    let s = "require \"fileinto\";\n\
             if address :is :domain \"from\" \"desert.example.org\" {\n\
               fileinto \"INBOX.harassment\";\n\
               fileinto \"INBOX.harassment\";\n\
             }";
    assert_eq!(actions(s, SIMPLE, &[]), ["fileinto \"INBOX.harassment\""]);
    // keep and fileinto "INBOX" are the same message store.
    let s = "require \"fileinto\"; keep; fileinto \"INBOX\";";
    assert_eq!(actions(s, SIMPLE, &[]), ["keep"]);
}

#[test]
fn rfc5228_redirect_stop_and_address_parts() {
    let s = "if address :localpart :is \"from\" \"coyote\" { redirect \"acm@example.com\"; stop; }\n\
             keep;";
    assert_eq!(actions(s, SIMPLE, &[]), ["redirect \"acm@example.com\""]);
    // :all against the whole address; :matches with wildcards.
    let s = "if address :all :matches \"from\" \"*@*.example.org\" { discard; }";
    assert_eq!(actions(s, SIMPLE, &[]), ["discard"]);
}

#[test]
fn rfc5228_size_exists_anyof_allof_not() {
    // The message is about 300 bytes: under 1K.
    let s = "if anyof (size :over 1K, not exists \"Date\") { discard; }\n\
             elsif allof (exists [\"From\", \"To\"], size :under 1K) { redirect \"small@example.com\"; }";
    assert_eq!(actions(s, SIMPLE, &[]), ["redirect \"small@example.com\""]);
}

#[test]
fn rfc5228_comparators() {
    // i;octet is case-sensitive, i;ascii-casemap is not.
    let s = "if header :is :comparator \"i;octet\" \"subject\" \"i have a present for you\" { discard; }";
    assert_eq!(actions(s, SIMPLE, &[]), ["keep"]);
    let s = "if header :is \"subject\" \"i have a present for you\" { discard; }";
    assert_eq!(actions(s, SIMPLE, &[]), ["discard"]);
    // Escapes in :matches: "\\*" is a literal star.
    let s = "if header :matches \"subject\" \"I have a present\\\\*\" { discard; }";
    assert_eq!(actions(s, SIMPLE, &[]), ["keep"]);
}

#[test]
fn rfc5228_envelope_and_null_sender() {
    let s = "require \"envelope\";\n\
             if envelope :all :is \"from\" \"tim@example.com\" { discard; }";
    assert_eq!(
        actions(s, SIMPLE, &["--from", "tim@example.com"]),
        ["discard"]
    );
    assert_eq!(actions(s, SIMPLE, &["--from", "tom@example.com"]), ["keep"]);
    // Section 5.4: the null reverse-path is "" whatever the address part.
    let s = "require \"envelope\";\n\
             if envelope :domain :is \"from\" \"\" { discard; }";
    assert_eq!(actions(s, SIMPLE, &["--from", ""]), ["discard"]);
}

#[test]
fn rfc5228_compile_errors_have_line_and_column() {
    // fileinto without require.
    let o = run("keep;\n  fileinto \"x\";\n", SIMPLE, &[]);
    assert_eq!(o.code, 65);
    assert!(o.stderr.contains("script.sieve:2:3:"), "{}", o.stderr);
    assert!(o.stderr.contains("fileinto"), "{}", o.stderr);
    for bad in [
        "require \"nosuchext\";",
        "keep",
        "if true keep;",
        "discard \"x\";",
        "if header :is \"a\" { keep; }",
        "if size 10 { keep; }",
        "if header :bogus \"a\" \"b\" { keep; }",
        "keep; require \"fileinto\";",
        "elsif true { keep; }",
        "redirect [\"a@b.c\", \"d@e.f\"];",
        "text: \nunterminated",
        "require \"relational\"; if header :value \"xx\" \"a\" \"b\" { keep; }",
        "require \"comparator-i;ascii-numeric\"; if header :contains :comparator \"i;ascii-numeric\" \"a\" \"1\" { keep; }",
        "if header :comparator \"i;ascii-numeric\" \"a\" \"1\" { keep; }",
        "if header :is :contains \"a\" \"b\" { keep; }",
    ] {
        let o = run(bad, SIMPLE, &[]);
        assert_eq!(o.code, 65, "{bad:?} compiled: {}", o.stdout);
        assert!(
            o.stderr.contains("script.sieve:1:"),
            "{bad:?}: {}",
            o.stderr
        );
    }
}

#[test]
fn rfc5228_multiline_strings_and_comments() {
    let s = "require \"reject\";\n/* a bracket\n comment */\nreject text: # comment\nline one\n..dot\n.\n;";
    assert_eq!(
        actions(s, SIMPLE, &[]),
        ["reject \"line one\\r\\n.dot\\r\\n\""]
    );
}

// ---- RFC 5429 reject / ereject ----

#[test]
fn rfc5429_reject_and_ereject() {
    let s = "require \"reject\"; if size :over 100 { reject \"too big\"; }";
    assert_eq!(actions(s, SIMPLE, &[]), ["reject \"too big\""]);
    let s = "require \"ereject\"; ereject \"no\";";
    assert_eq!(actions(s, SIMPLE, &[]), ["ereject \"no\""]);
    // Section 2.2: reject MUST be incompatible with vacation; the run fails and keeps.
    let s = "require [\"reject\", \"vacation\"]; vacation \"away\"; reject \"no\";";
    let o = run(s, SIMPLE, &[]);
    assert_eq!(o.code, 1);
    assert_eq!(o.lines().last().copied(), Some("keep"));
    assert!(o.stdout.starts_with("error: "), "{}", o.stdout);
}

// ---- RFC 3894 copy ----

#[test]
fn rfc3894_copy_keeps_implicit_keep() {
    let s = "require [\"copy\", \"fileinto\"];\n\
             fileinto :copy \"incoming\";\n\
             redirect :copy \"archive@example.com\";";
    assert_eq!(
        actions(s, SIMPLE, &[]),
        [
            "fileinto \"incoming\"",
            "redirect \"archive@example.com\"",
            "keep"
        ]
    );
}

// ---- RFC 5229 variables ----

#[test]
fn rfc5229_match_variables_and_set() {
    // Section 3.2's List-ID example.
    let msg = "List-ID: Sieve discussion <sieve@example.org>\nSubject: x\n\nbody\n";
    let s = "require [\"fileinto\", \"variables\"];\n\
             if header :matches \"List-ID\" \"*<*@*\" {\n\
                 fileinto \"INBOX.lists.${2}\"; stop;\n\
             }";
    assert_eq!(actions(s, msg, &[]), ["fileinto \"INBOX.lists.sieve\""]);
    // Section 4: set with modifiers; names are case-insensitive.
    let s = "require [\"fileinto\", \"variables\"];\n\
             set \"honorific\" \"Mr\";\n\
             set \"first_name\" \"Joe\";\n\
             set :upperfirst :lower \"l\" \"SMITH\";\n\
             set :length \"n\" \"${first_name}\";\n\
             fileinto \"${HONORIFIC} ${first_name} ${l} ${n} ${unknown}.\";";
    assert_eq!(actions(s, SIMPLE, &[]), ["fileinto \"Mr Joe Smith 3 .\""]);
    // Section 5: the string test.
    let s = "require [\"variables\"];\n\
             set \"state\" \"on\";\n\
             if string :is \"${state}\" \"on\" { discard; }";
    assert_eq!(actions(s, SIMPLE, &[]), ["discard"]);
}

// ---- RFC 5232 imap4flags ----

#[test]
fn rfc5232_flags_on_keep_and_fileinto() {
    // Section 3's example, with the From of the boss.
    let msg = "From: boss@frobnitzm.example.edu\nSubject: x\n\nbody\n";
    let s = "require [\"fileinto\", \"imap4flags\", \"variables\"];\n\
             if header :contains \"from\" \"boss@frobnitzm.example.edu\" {\n\
                 setflag \"flagvar\" \"\\\\Flagged\";\n\
                 fileinto :flags \"${flagvar}\" \"INBOX.From Boss\";\n\
             }";
    assert_eq!(
        actions(s, msg, &[]),
        ["fileinto \"INBOX.From Boss\" flags=[\\Flagged]"]
    );
    // The internal variable goes to the implicit keep; removeflag and hasflag.
    let s = "require [\"imap4flags\"];\n\
             addflag [\"\\\\Seen\", \"$Work \\\\Answered\"];\n\
             removeflag \"\\\\answered\";\n\
             if hasflag :is \"$work\" { addflag \"Tagged\"; }";
    assert_eq!(
        actions(s, SIMPLE, &[]),
        ["keep flags=[\\Seen $Work Tagged]"]
    );
    // Section 4: hasflag :count counts distinct flags.
    let s = "require [\"imap4flags\", \"relational\", \"comparator-i;ascii-numeric\"];\n\
             setflag \"b A b\";\n\
             if hasflag :count \"eq\" :comparator \"i;ascii-numeric\" \"2\" { discard; }";
    assert_eq!(actions(s, SIMPLE, &[]), ["discard"]);
}

// ---- RFC 5230 vacation, RFC 6131 vacation-seconds ----

#[test]
fn rfc5230_vacation_with_period_clamping() {
    let s = "require \"vacation\";\n\
             vacation :days 23 :addresses [\"tjs@example.edu\", \"ts4z@landru.example.edu\"]\n\
               \"I'm away until October 19.\";";
    let a = actions(s, SIMPLE, &[]);
    assert_eq!(a.len(), 2, "{a:?}");
    assert!(a[0].starts_with("vacation handle=default-"), "{a:?}");
    assert!(a[0].contains(" period=23d "), "{a:?}");
    assert!(
        a[0].contains("addresses=[\"tjs@example.edu\", \"ts4z@landru.example.edu\"]"),
        "{a:?}"
    );
    assert!(
        a[0].ends_with("reason=\"I'm away until October 19.\""),
        "{a:?}"
    );
    assert_eq!(a[1], "keep");
    // :handle, :subject, :from; :days 0 raised to the 1-day minimum, 365 lowered to 90.
    let s = "require \"vacation\"; vacation :days 0 :handle \"h1\" :subject \"Away\" :from \"me@example.org\" \"x\";";
    assert_eq!(
        actions(s, SIMPLE, &[])[0],
        "vacation handle=h1 period=1d subject=\"Away\" from=\"me@example.org\" reason=\"x\""
    );
    let s = "require \"vacation\"; vacation :days 365 :handle \"h\" \"x\";";
    assert_eq!(
        actions(s, SIMPLE, &[])[0],
        "vacation handle=h period=90d reason=\"x\""
    );
    // RFC 6131: :seconds, with the one-minute minimum; vacation-seconds brings vacation.
    let s = "require \"vacation-seconds\"; vacation :seconds 1800 :handle \"h\" \"x\";";
    assert_eq!(
        actions(s, SIMPLE, &[])[0],
        "vacation handle=h period=1800s reason=\"x\""
    );
    let s = "require \"vacation-seconds\"; vacation :seconds 0 :handle \"h\" \"x\";";
    assert_eq!(
        actions(s, SIMPLE, &[])[0],
        "vacation handle=h period=60s reason=\"x\""
    );
    // :seconds without vacation-seconds does not compile.
    assert_eq!(
        run(
            "require \"vacation\"; vacation :seconds 5 \"x\";",
            SIMPLE,
            &[]
        )
        .code,
        65
    );
    // Different reasons give different default handles (RFC 5230 section 4.2).
    let h = |r: &str| {
        let a = actions(
            &format!("require \"vacation\"; vacation \"{r}\";"),
            SIMPLE,
            &[],
        );
        a[0].split_whitespace().nth(1).unwrap_or("").to_string()
    };
    assert_ne!(h("one"), h("two"));
    assert_eq!(h("one"), h("one"));
}

// ---- RFC 5231 relational ----

const RELATIONAL_MSG: &str =
    "From: zed@example.com\nTo: a@example.com, b@example.com\nX-Priority: 5\nSubject: x\n\nbody\n";

fn rfc5231_script() -> &'static str {
    // Section 7, verbatim.
    "require [\"relational\", \"comparator-i;ascii-numeric\", \"fileinto\"];\n\
     if header :value \"lt\" :comparator \"i;ascii-numeric\"\n\
               [\"x-priority\"] [\"3\"]\n\
     {\n\
        fileinto \"Priority\";\n\
     }\n\
     elsif address :count \"gt\" :comparator \"i;ascii-numeric\"\n\
                [\"to\"] [\"5\"]\n\
     {\n\
        fileinto \"SPAM\";\n\
     }\n\
     elsif address :value \"gt\" :all :comparator \"i;ascii-casemap\"\n\
                [\"from\"] [\"M\"]\n\
     {\n\
        fileinto \"From N-Z\";\n\
     } else {\n\
        fileinto \"From A-M\";\n\
     }\n\
     if allof ( address :count \"eq\" :comparator \"i;ascii-numeric\"\n\
                        [\"to\", \"cc\"] [\"1\"] ,\n\
                address :all :comparator \"i;ascii-casemap\"\n\
                        [\"to\", \"cc\"] [\"me@foo.example.com\"] )\n\
     {\n\
        fileinto \"Only me\";\n\
     }\n"
}

#[test]
fn rfc5231_extended_example() {
    // Priority 5 is not < 3; two To addresses are not > 5; "zed@..." > "M" under casemap.
    assert_eq!(
        actions(rfc5231_script(), RELATIONAL_MSG, &[]),
        ["fileinto \"From N-Z\""]
    );
    // Priority 1; one address, which is me.
    let msg = "From: al@example.com\nTo: me@foo.example.com\nX-Priority: 1\n\nbody\n";
    assert_eq!(
        actions(rfc5231_script(), msg, &[]),
        ["fileinto \"Priority\"", "fileinto \"Only me\""]
    );
    // Six To addresses are > 5; "al" < "M": but SPAM comes first.
    let msg =
        "From: al@example.com\nTo: a@x.org, b@x.org, c@x.org, d@x.org, e@x.org, f@x.org\n\nbody\n";
    assert_eq!(actions(rfc5231_script(), msg, &[]), ["fileinto \"SPAM\""]);
    // i;ascii-numeric: a value that is not a number is positive infinity.
    let msg = "From: al@example.com\nTo: a@x.org\nX-Priority: high\n\nbody\n";
    assert_eq!(
        actions(rfc5231_script(), msg, &[]),
        ["fileinto \"From A-M\""]
    );
}

// ---- RFC 5233 subaddress ----

#[test]
fn rfc5233_example() {
    let s = "require [\"envelope\", \"subaddress\", \"fileinto\"];\n\
             if envelope :user \"to\" \"postmaster\" {\n\
                 fileinto \"inbox.postmaster\";\n\
                 stop;\n\
             }\n\
             if envelope :detail \"to\" \"mta-filters\" {\n\
                 fileinto \"inbox.ietf-mta-filters\";\n\
             }\n\
             if envelope :detail \"to\" \"foo\" {\n\
                 redirect \"ken@example.net\";\n\
             }";
    assert_eq!(
        actions(s, SIMPLE, &["--to", "postmaster+foo@example.com"]),
        ["fileinto \"inbox.postmaster\""]
    );
    assert_eq!(
        actions(s, SIMPLE, &["--to", "ken+mta-filters@example.com"]),
        ["fileinto \"inbox.ietf-mta-filters\""]
    );
    assert_eq!(
        actions(s, SIMPLE, &["--to", "ken+foo@example.com"]),
        ["redirect \"ken@example.net\""]
    );
    // No separator: :detail does not match even the empty string.
    let s = "require [\"subaddress\"]; if address :detail \"from\" \"\" { discard; }";
    assert_eq!(actions(s, SIMPLE, &[]), ["keep"]);
}

// ---- RFC 5173 body ----

#[test]
fn rfc5173_body_transforms() {
    let msg = "From: a@example.com\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"b\"\n\
\n\
--b\n\
Content-Type: text/plain; charset=utf-8\n\
Content-Transfer-Encoding: quoted-printable\n\
\n\
The missile coordinates are se=63ret.\n\
--b\n\
Content-Type: audio/mp3\n\
Content-Transfer-Encoding: base64\n\
\n\
SUQz\n\
--b--\n";
    let s = "require [\"body\", \"fileinto\"];\n\
             if body :content \"text\" :contains [\"missile\", \"coordinates\"] {\n\
                     fileinto \"secrets\";\n\
             }\n\
             if body :content \"audio/mp3\" :contains \"\" {\n\
                     fileinto \"jukebox\";\n\
             }";
    assert_eq!(
        actions(s, msg, &[]),
        ["fileinto \"secrets\"", "fileinto \"jukebox\""]
    );
    // :text decodes quoted-printable; :raw does not.
    let s = "require [\"body\"]; if body :text :contains \"secret\" { discard; }";
    assert_eq!(actions(s, msg, &[]), ["discard"]);
    let s = "require [\"body\"]; if body :raw :contains \"secret\" { discard; }";
    assert_eq!(actions(s, msg, &[]), ["keep"]);
    let s = "require [\"body\"]; if body :raw :contains \"se=63ret\" { discard; }";
    assert_eq!(actions(s, msg, &[]), ["discard"]);
}

// ---- RFC 5228 2.4.2.4 encoded-character ----

#[test]
fn encoded_character() {
    let s = "require [\"encoded-character\", \"fileinto\"];\n\
             fileinto \"${hex:49 4E 42 4F 58}.${unicode:263a}\";";
    assert_eq!(actions(s, SIMPLE, &[]), ["fileinto \"INBOX.\u{263a}\""]);
    // Without the require, the text stays as written.
    let s = "require \"fileinto\"; fileinto \"${hex:41}\";";
    assert_eq!(actions(s, SIMPLE, &[]), ["fileinto \"${hex:41}\""]);
}

// ---- RFC 5260 date and index ----

#[test]
fn rfc5260_date_examples() {
    let msg = "From: boss@example.com\nDate: Tue, 11 Mar 2008 10:05:00 -0700\nSubject: x\n\nbody\n";
    let s = "require [\"date\", \"relational\", \"fileinto\"];\n\
             if allof(header :is \"from\" \"boss@example.com\",\n\
                      date :value \"ge\" :originalzone \"date\" \"hour\" \"09\",\n\
                      date :value \"lt\" :originalzone \"date\" \"hour\" \"17\")\n\
             { fileinto \"urgent\"; }";
    assert_eq!(actions(s, msg, &[]), ["fileinto \"urgent\""]);
    // In UTC (the server zone here) 10:05 -0700 is 17:05: not before 17.
    let s2 = s.replace(":originalzone ", "");
    assert_eq!(actions(&s2, msg, &[]), ["keep"]);
    // Received: the date after the last ";"; 2008-03-08 is a Saturday (weekday 6).
    let msg = "Received: from a by b; Sat, 8 Mar 2008 12:00:00 +0000\nSubject: x\n\nbody\n";
    let s = "require [\"date\", \"relational\", \"fileinto\"];\n\
             if anyof(date :is \"received\" \"weekday\" \"0\",\n\
                      date :is \"received\" \"weekday\" \"6\")\n\
             { fileinto \"weekend\"; }";
    assert_eq!(actions(s, msg, &[]), ["fileinto \"weekend\""]);
}

#[test]
fn rfc5260_currentdate_and_index() {
    // 1700000000 is 2023-11-14T22:13:20Z, a Tuesday.
    let s = "require [\"date\", \"variables\", \"fileinto\"];\n\
             if currentdate :matches \"month\" \"*\" { set \"month\" \"${1}\"; }\n\
             if currentdate :matches \"year\"  \"*\" { set \"year\"  \"${1}\"; }\n\
             fileinto \"${month}-${year}\";";
    assert_eq!(
        actions(s, SIMPLE, &["--now", "1700000000"]),
        ["fileinto \"11-2023\""]
    );
    let s = "require [\"date\", \"relational\"];\n\
             if anyof(currentdate :is \"weekday\" \"0\",\n\
                      currentdate :is \"weekday\" \"6\",\n\
                      currentdate :value \"lt\" \"hour\" \"09\",\n\
                      currentdate :value \"ge\" \"hour\" \"17\")\n\
             { redirect \"pager@example.com\"; }";
    assert_eq!(
        actions(s, SIMPLE, &["--now", "1700000000"]),
        ["redirect \"pager@example.com\"",]
    );
    // 1699956000 is 2023-11-14T10:00:00Z: business hours.
    assert_eq!(actions(s, SIMPLE, &["--now", "1699956000"]), ["keep"]);
    // Section 6: the second Received field, in -0500.
    let msg = "Received: from x by y; Tue, 27 Feb 2007 10:00:00 -0500\n\
Received: from p by q; Mon, 26 Feb 2007 10:00:00 -0500\n\
Subject: x\n\nbody\n";
    let s = "require [\"date\", \"relational\", \"index\"];\n\
             if date :value \"gt\" :index 2 :zone \"-0500\" \"received\"\n\
                     \"iso8601\" \"2007-02-26T09:00:00-05:00\"\n\
             { redirect \"aftercutoff@example.org\"; }";
    assert_eq!(
        actions(s, msg, &[]),
        ["redirect \"aftercutoff@example.org\""]
    );
    // :last counts from the end: the last Received field is the one from p.
    let s = "require [\"index\"];\n\
             if header :index 1 :last :contains \"received\" \"from p\" { discard; }";
    assert_eq!(actions(s, msg, &[]), ["discard"]);
}

// ---- RFC 5490 mailbox, RFC 8579 special-use ----

#[test]
fn rfc5490_mailbox_and_rfc8579_special_use() {
    let s = "require [\"fileinto\", \"mailbox\"];\n\
             if mailboxexists \"Lists\" { fileinto \"Lists\"; } else { fileinto :create \"New\"; }";
    assert_eq!(
        actions(s, SIMPLE, &["--mailbox", "Lists"]),
        ["fileinto \"Lists\""]
    );
    assert_eq!(actions(s, SIMPLE, &[]), ["fileinto \"New\" create"]);
    let s = "require \"fileinto\";\nrequire \"special-use\";\n\n\
             fileinto :specialuse \"\\\\Archive\" \"INBOX/Archive\";";
    assert_eq!(
        actions(s, SIMPLE, &[]),
        ["fileinto \"INBOX/Archive\" specialuse=\\Archive"]
    );
    let s = "require [\"special-use\"];\n\
             if specialuse_exists \"\\\\Junk\" { discard; }";
    assert_eq!(
        actions(s, SIMPLE, &["--special-use", "\\Junk=Spam"]),
        ["discard"]
    );
    assert_eq!(actions(s, SIMPLE, &[]), ["keep"]);
    let s = "require [\"special-use\"];\n\
             if specialuse_exists \"Other\" \"\\\\Junk\" { discard; }";
    assert_eq!(
        actions(s, SIMPLE, &["--special-use", "\\Junk=Spam"]),
        ["keep"]
    );
}

#[test]
fn rfc5490_metadata() {
    // Section 3.3/3.5 tests: mailbox and server annotations.
    let s = "require [\"mboxmetadata\", \"servermetadata\", \"fileinto\"];\n\
             if metadata :is \"INBOX\" \"/private/vendor/vendor.isode/auto-replies\" \"on\" {\n\
                 fileinto \"auto\";\n\
             }\n\
             if servermetadata :contains \"/shared/admin\" \"postmaster\" { fileinto \"admin\"; }\n\
             if metadataexists \"INBOX\" [\"/private/comment\", \"/private/missing\"] { discard; }\n\
             if servermetadataexists \"/shared/admin\" { fileinto \"exists\"; }";
    assert_eq!(
        actions(
            s,
            SIMPLE,
            &[
                "--metadata",
                "INBOX:/private/vendor/vendor.isode/auto-replies=on",
                "--metadata",
                "INBOX:/private/comment=c",
                "--metadata",
                "/shared/admin=mailto:postmaster@example.com",
            ]
        ),
        [
            "fileinto \"auto\"",
            "fileinto \"admin\"",
            "fileinto \"exists\""
        ]
    );
    assert_eq!(actions(s, SIMPLE, &[]), ["keep"]);
    // Each test needs its own extension.
    assert_eq!(
        run(
            "require \"mboxmetadata\"; if servermetadataexists \"/a\" { keep; }",
            SIMPLE,
            &[]
        )
        .code,
        65
    );
}

// ---- RFC 6609 include ----

#[test]
fn rfc6609_include_with_globals() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("subject_tests.sieve"),
        "require [\"include\", \"variables\"];\n\
         global [\"test\", \"test_mailbox\"];\n\
         if header :contains \"Subject\" \"${test}\"\n\
         {\n\
             set \"test_mailbox\" \"spam-${test}\";\n\
         }\n",
    )
    .expect("write include");
    let s = "require [\"fileinto\", \"include\", \"variables\", \"relational\"];\n\
             global \"test\";\n\
             global \"test_mailbox\";\n\
             set \"test\" \"$$\";\n\
             include \"subject_tests\";\n\
             set \"test\" \"Make money\";\n\
             include \"subject_tests\";\n\
             if string :count \"eq\" \"${test_mailbox}\" \"1\"\n\
             {\n\
                 fileinto \"${test_mailbox}\";\n\
                 stop;\n\
             }";
    let msg = "From: a@example.com\nSubject: Make money fast\n\nbody\n";
    let o = run_in(dir.path(), s, msg, &[]);
    assert_eq!(o.lines(), ["fileinto \"spam-Make money\""], "{}", o.stderr);
    let o = run_in(dir.path(), s, SIMPLE, &[]);
    assert_eq!(o.lines(), ["keep"], "{}", o.stderr);
    // The global namespace (section 3.4.2) and return.
    std::fs::write(
        dir.path().join("ret.sieve"),
        "require [\"include\", \"variables\"];\nset \"global.x\" \"1\"; return; set \"global.x\" \"2\";",
    )
    .expect("write");
    let s = "require [\"include\", \"variables\", \"fileinto\"];\n\
             include :once \"ret\"; include :once \"ret\";\n\
             fileinto \"x${global.x}\";";
    assert_eq!(
        run_in(dir.path(), s, SIMPLE, &[]).lines(),
        ["fileinto \"x1\""]
    );
    // A missing script: an error, unless :optional.
    let s = "require \"include\"; include :optional \"missing\";";
    assert_eq!(run_in(dir.path(), s, SIMPLE, &[]).lines(), ["keep"]);
    let s = "require \"include\"; include \"missing\"; discard;";
    let o = run_in(dir.path(), s, SIMPLE, &[]);
    assert_eq!(o.code, 1);
    assert_eq!(o.lines().last().copied(), Some("keep"));
    // :global looks in --global-dir.
    let g = tempfile::tempdir().expect("tempdir");
    std::fs::write(g.path().join("site.sieve"), "discard;").expect("write");
    let s = "require \"include\"; include :global \"site\";";
    let gd = g.path().to_str().expect("utf-8 path");
    assert_eq!(
        run_in(dir.path(), s, SIMPLE, &["--global-dir", gd]).lines(),
        ["discard"]
    );
    // global without variables does not compile.
    assert_eq!(
        run("require \"include\"; global \"x\";", SIMPLE, &[]).code,
        65
    );
}

// ---- RFC 5183 environment ----

#[test]
fn rfc5183_environment() {
    let s = "require [\"environment\", \"fileinto\"];\n\
             if environment :is \"location\" \"MDA\" { fileinto \"mda\"; }\n\
             if environment :contains \"remote-host\" \"example\" { discard; }\n\
             if environment :is \"name\" \"mailcove\" { fileinto \"named\"; }";
    assert_eq!(
        actions(s, SIMPLE, &["--env", "remote-host=mx.example.net"]),
        ["fileinto \"mda\"", "fileinto \"named\""]
    );
    // An unknown item is false.
    let s =
        "require [\"environment\"]; if not environment :contains \"x-unknown\" \"\" { discard; }";
    assert_eq!(actions(s, SIMPLE, &[]), ["discard"]);
}

// ---- RFC 5235 spamtest, spamtestplus, virustest ----

#[test]
fn rfc5235_spamtest_and_virustest() {
    let msg = "From: a@example.com\nX-Spam-Score: 7.5\nX-Virus: infected\nSubject: x\n\nbody\n";
    let s = "require [\"spamtest\", \"fileinto\", \"relational\", \"comparator-i;ascii-numeric\"];\n\
             if spamtest :value \"eq\" :comparator \"i;ascii-numeric\" \"0\"\n\
             { fileinto \"INBOX.unclassified\"; }\n\
             elsif spamtest :value \"ge\" :comparator \"i;ascii-numeric\" \"3\"\n\
             { fileinto \"INBOX.spam-trap\"; }";
    // Not tested (no header configured): 0.
    assert_eq!(actions(s, msg, &[]), ["fileinto \"INBOX.unclassified\""]);
    // 7.5 of 10 is value 8 (1 + 0.75 * 9, rounded).
    assert_eq!(
        actions(s, msg, &["--spam-header", "X-Spam-Score"]),
        ["fileinto \"INBOX.spam-trap\""]
    );
    let s = "require [\"spamtestplus\", \"relational\", \"comparator-i;ascii-numeric\"];\n\
             if spamtest :percent :value \"eq\" :comparator \"i;ascii-numeric\" \"75\" { discard; }";
    assert_eq!(
        actions(s, msg, &["--spam-header", "X-Spam-Score"]),
        ["discard"]
    );
    let s = "require [\"virustest\", \"fileinto\", \"relational\", \"comparator-i;ascii-numeric\"];\n\
             if virustest :value \"eq\" :comparator \"i;ascii-numeric\" \"5\"\n\
             { fileinto \"INBOX.quarantine\"; }";
    assert_eq!(
        actions(s, msg, &["--virus-header", "X-Virus"]),
        ["fileinto \"INBOX.quarantine\""]
    );
    // :percent needs spamtestplus.
    assert_eq!(
        run(
            "require \"spamtest\"; if spamtest :percent \"1\" { keep; }",
            msg,
            &[]
        )
        .code,
        65
    );
}

// ---- RFC 7352 duplicate ----

#[test]
fn rfc7352_duplicate() {
    let s = "require \"duplicate\";\nif duplicate {\n  discard;\n}";
    let o = run(s, SIMPLE, &[]);
    assert_eq!(o.code, 0);
    let lines = o.lines();
    assert_eq!(lines[0], "keep");
    let key = lines[1]
        .strip_prefix("duplicate mark ")
        .and_then(|r| r.split_whitespace().next())
        .expect("a duplicate mark")
        .to_string();
    assert!(lines[1].ends_with("period=14d"), "{lines:?}");
    // Once recorded, the same Message-ID is a duplicate; the three RFC forms share the key.
    assert_eq!(actions(s, SIMPLE, &["--seen", &key])[0], "discard");
    let s2 = "require \"duplicate\";\nif duplicate :header \"message-id\" {\n  discard;\n}";
    assert_eq!(actions(s2, SIMPLE, &["--seen", &key])[0], "discard");
    let s3 = "require [\"duplicate\", \"variables\"];\n\
              if header :matches \"message-id\" \"*\" {\n\
                if duplicate :uniqueid \"${0}\" {\n\
                  discard;\n\
                }\n\
              }";
    assert_eq!(actions(s3, SIMPLE, &["--seen", &key])[0], "discard");
    // A different :handle is a different key.
    let s4 = "require \"duplicate\"; if duplicate :handle \"other\" :seconds 60 { discard; }";
    let a = actions(s4, SIMPLE, &["--seen", &key]);
    assert_eq!(a[0], "keep");
    assert!(a[1].ends_with("period=60s"), "{a:?}");
}

// ---- RFC 5293 editheader ----

#[test]
fn rfc5293_editheader() {
    let msg = "Received: from a by b; Sat, 8 Mar 2008 12:00:00 +0000\n\
X-Test: one\nX-Test: two\nAuto-Submitted: auto-replied\nSubject: x\n\nbody\n";
    let s = "require [\"editheader\"];\n\
             addheader \"X-Source\" \"mailcove\";\n\
             addheader :last \"X-End\" \"z\";\n\
             deleteheader :index 1 \"X-Test\";\n\
             deleteheader \"received\";\n\
             deleteheader \"auto-submitted\";\n\
             addheader \"Received\" \"forged\";\n\
             if header :is \"x-test\" \"two\" { if exists \"x-source\" { discard; } }";
    let o = run(s, msg, &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        "discard\nedited message:\n\
X-Source: mailcove\r\n\
Received: from a by b; Sat, 8 Mar 2008 12:00:00 +0000\r\n\
X-Test: two\r\n\
Auto-Submitted: auto-replied\r\n\
Subject: x\r\n\
X-End: z\r\n\
\r\n\
body\r\n"
    );
    // deleteheader with value patterns.
    let s = "require [\"editheader\"]; deleteheader :matches \"x-test\" \"t*\";";
    let o = run(s, msg, &[]);
    assert!(o.stdout.contains("X-Test: one\r\n"), "{}", o.stdout);
    assert!(!o.stdout.contains("X-Test: two"), "{}", o.stdout);
}

// ---- RFC 5463 ihave ----

#[test]
fn rfc5463_ihave() {
    let s = "require [\"ihave\"];\n\
             if ihave \"fileinto\" { fileinto \"has\"; }\n\
             if ihave \"x-no-such\" { x_no_such_command :foo 1; }";
    assert_eq!(actions(s, SIMPLE, &[]), ["fileinto \"has\""]);
    let s = "require [\"ihave\"]; error \"stop here\";";
    let o = run(s, SIMPLE, &[]);
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains("stop here"), "{}", o.stdout);
}

// ---- draft-ietf-sieve-regex ----

#[test]
fn regex_match_type() {
    let msg = "Subject: [rust] release 1.95\nFrom: a@example.com\n\nbody\n";
    let s = "require [\"regex\", \"variables\", \"fileinto\"];\n\
             if header :regex \"subject\" \"^\\\\[([a-z]+)\\\\] release ([0-9.]+)$\" {\n\
                 fileinto \"Lists/${1}-${2}\";\n\
             }";
    assert_eq!(actions(s, msg, &[]), ["fileinto \"Lists/rust-1.95\""]);
    // :quoteregex makes a value literal.
    let s = "require [\"regex\", \"variables\"];\n\
             set :quoteregex \"q\" \"[rust]\";\n\
             if header :regex \"subject\" \"^${q}\" { discard; }";
    assert_eq!(actions(s, msg, &[]), ["discard"]);
    // A pattern too large for the size limit, or invalid, does not compile.
    assert_eq!(
        run(
            "require \"regex\"; if header :regex \"s\" \"(a{1000}){1000}\" { keep; }",
            msg,
            &[]
        )
        .code,
        65
    );
    assert_eq!(
        run(
            "require \"regex\"; if header :regex \"s\" \"(\" { keep; }",
            msg,
            &[]
        )
        .code,
        65
    );
}

// ---- hostile scripts ----

#[test]
fn hostile_limits_keep_the_message() {
    // Too many redirects (the limit is 4).
    let s = "redirect \"a@x.org\"; redirect \"b@x.org\"; redirect \"c@x.org\"; redirect \"d@x.org\"; redirect \"e@x.org\";";
    let o = run(s, SIMPLE, &[]);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.lines(),
        ["error: too many redirects (more than 4)", "keep"]
    );
    // A deep include chain (the limit is 10) and a recursive include.
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..15 {
        std::fs::write(
            dir.path().join(format!("s{i}.sieve")),
            format!("require \"include\"; include \"s{}\";", i + 1),
        )
        .expect("write");
    }
    let o = run_in(
        dir.path(),
        "require \"include\"; include \"s0\";",
        SIMPLE,
        &[],
    );
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains("nested too deeply"), "{}", o.stdout);
    std::fs::write(
        dir.path().join("self.sieve"),
        "require \"include\"; include \"self\";",
    )
    .expect("write");
    let o = run_in(
        dir.path(),
        "require \"include\"; include \"self\";",
        SIMPLE,
        &[],
    );
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains("recursive"), "{}", o.stdout);
    // A wildcard that backtracks a lot over a long header runs out of steps.
    let long = format!("Subject: {}\n\nbody\n", "a".repeat(100_000));
    let s = format!(
        "if anyof({}) {{ discard; }}",
        vec!["header :matches \"subject\" \"*a*a*a*a*a*a*b\""; 25].join(", ")
    );
    let o = run(&s, &long, &[]);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.lines(),
        [
            "error: the script ran too long (step limit reached)",
            "keep"
        ]
    );
    // A huge script and deep nesting do not compile.
    let huge = "keep;\n".repeat(200_000);
    assert_eq!(run(&huge, SIMPLE, &[]).code, 65);
    let deep = "if true {".repeat(40) + &"}".repeat(40);
    assert_eq!(run(&deep, SIMPLE, &[]).code, 65);
}

/// Script sequences (`sieve-test --before/--after`, as `[sieve] sieve_before`/`sieve_after`),
/// by Pigeonhole's documented rule (docs/sieve.md "Script sequences"): the next script runs
/// only when a keep (implicit or explicit) is in effect at the end of a script; `stop` ends
/// only its script; only the last script's keep stores into INBOX.
#[test]
fn script_sequences_follow_pigeonholes_keep_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write script");
        p.display().to_string()
    };
    let copy_b = write(
        "b.sieve",
        "require [\"fileinto\", \"copy\"]; fileinto :copy \"B\";",
    );
    let keep_stop = write("ks.sieve", "keep; stop; discard;");
    let discard_stop = write("ds.sieve", "discard; stop;");
    let file_a = write("a.sieve", "require \"fileinto\"; fileinto \"A\";");
    let user_files = "require \"fileinto\"; fileinto \"U\";";
    let user_nothing = "# nothing\n";
    let seq = |before: &[&str], user: &str, after: &[&str]| {
        let mut args = Vec::new();
        for b in before {
            args.extend(["--before", *b]);
        }
        for a in after {
            args.extend(["--after", *a]);
        }
        let o = run_in(dir.path(), user, SIMPLE, &args);
        assert_eq!(o.code, 0, "script failed: {}{}", o.stdout, o.stderr);
        o.stdout.lines().map(str::to_string).collect::<Vec<_>>()
    };
    // :copy keeps the keep: every script runs; the user's fileinto ends it before A.
    assert_eq!(
        seq(&[&copy_b], user_files, &[&file_a]),
        ["fileinto \"B\"", "fileinto \"U\""]
    );
    // Nothing cancels the keep: the after script runs and files (no INBOX).
    assert_eq!(
        seq(&[&copy_b], user_nothing, &[&file_a]),
        ["fileinto \"B\"", "fileinto \"A\""]
    );
    // keep; stop; goes on (stop ends only its script, the discard after it never runs), and its
    // keep does not store: the user's fileinto is the only delivery.
    assert_eq!(seq(&[&keep_stop], user_files, &[]), ["fileinto \"U\""]);
    // keep in the last script stores once.
    assert_eq!(seq(&[&keep_stop], user_nothing, &[]), ["keep"]);
    // discard; stop; ends the whole sequence.
    assert_eq!(seq(&[&discard_stop], user_files, &[&file_a]), ["discard"]);
}
