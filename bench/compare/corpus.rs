//! The benchmark corpus: deterministic, realistic mail written as Maildir++ the way an MTA and
//! Dovecot leave it (LF line endings, `,S=`/`,W=` sizes in the name, `:2,` flags in `cur/`).
//!
//! Message kinds, weighted like a mailbox of a working person: plain text in several charsets
//! and transfer encodings, multipart/alternative with HTML, mixed with attachments, nested
//! alternative-inside-mixed, forwarded message/rfc822, a few large attachments (up to 10 MB).
//! About a third of messages reply to an earlier one (In-Reply-To, References, "Re:" and the
//! other prefixes clients write: "RE:", "Fwd:", "Fw:", "Re[2]:"); one thread in ten carries a
//! mailing-list tag ("[team-list]"); Date headers are in eight time zones. The SORT and THREAD
//! rows need all three to do the work RFC 5256 describes.
//!
//! Markers the search rows rely on, identical on both servers because both read these files:
//! `FROM_MARKER` is the display name of about 1% of senders, `TEXT_MARKER` occurs in the body of
//! about 0.5% of messages (never in a header).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The sender name `SEARCH FROM` looks for.
pub const FROM_MARKER: &str = "Ximena";
/// The body word `SEARCH TEXT` looks for.
pub const TEXT_MARKER: &str = "zanzibar";

/// A small deterministic PRNG (xorshift64*): the same corpus on every run and machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FIRST: &[&str] = &[
    "Anna", "Bruno", "Chen", "Dagny", "Emeka", "Fatima", "Gustav", "Hiroshi", "Ines", "Jonas",
    "Kavya", "Lars", "Mireille", "Nikolai", "Olga", "Pedro", "Quentin", "Rosa", "Sven", "Tomoko",
    "Ulrich", "Valeria", "Wen", "Yusuf", "Zoe", "Amélie", "Björn", "Zoë", "Łukasz", "Søren",
];
const LAST: &[&str] = &[
    "Andersen", "Bauer", "Costa", "Dubois", "Eriksson", "Fischer", "García", "Hansen", "Ivanova",
    "Jensen", "Kowalski", "Larsen", "Müller", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt",
    "Tanaka", "Weber",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "mail.example.de",
    "lists.example.edu",
];
const WORDS: &[&str] = &[
    "the", "meeting", "project", "report", "budget", "review", "tomorrow", "schedule", "please",
    "attached", "draft", "version", "customer", "release", "server", "invoice", "quarter", "plan",
    "update", "thanks", "question", "answer", "deadline", "team", "office", "travel", "hotel",
    "ticket", "contract", "proposal", "numbers", "figures", "design", "feedback", "kind",
    "regards", "week", "friday", "monday", "agenda", "notes", "minutes", "call", "phone", "coffee",
    "lunch", "issue", "problem", "solution", "backup", "database", "network", "mail", "folder",
    "calendar", "holiday", "summer", "winter", "price", "offer", "order", "delivery", "shipment",
    "payment", "account", "password", "login", "security", "policy", "meeting", "and", "of", "to",
    "in", "is", "for", "on", "with", "as", "at", "by", "from", "we", "you", "this", "that", "will",
    "be", "are", "have", "not", "can", "our", "your", "it", "an", "or",
];
const SUBJECTS: &[&str] = &[
    "Quarterly report",
    "Meeting on Friday",
    "Budget draft v2",
    "Server maintenance window",
    "Invoice 2026-11",
    "Travel plans",
    "Contract review",
    "Holiday schedule",
    "Release notes",
    "Backup failed on host db2",
    "Lunch?",
    "Customer feedback",
    "Design proposal",
    "Agenda for the team call",
    "Your order has shipped",
];
/// Encoded-word subjects (RFC 2047), so header decoding is part of the work.
const SUBJECTS_2047: &[&str] = &[
    "=?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=",
    "=?ISO-8859-1?Q?R=E9union_de_l=27=E9quipe?=",
    "=?UTF-8?Q?Pr=C3=A9sentation_du_projet?=",
    "=?ISO-2022-JP?B?GyRCJEgkRiRiGyhC?=",
    "=?windows-1251?B?z/Do4uXy?=",
];

/// Time zones of the Date headers (picked by message index), and their offsets in minutes.
const ZONES: &[&str] = &[
    "+0100", "+0000", "-0500", "+0900", "-0800", "+0530", "+0200", "-0300",
];
const ZONE_MINUTES: &[i64] = &[60, 0, -300, 540, -480, 330, 120, -180];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
];

/// The Date header of message `i` of a mailbox (all in 2026). Senders are in several time
/// zones, so SORT (DATE) must convert to UTC (RFC 5256 2.2). Derived from `i`, not the PRNG,
/// so the rest of the corpus does not depend on it.
struct DateFields {
    day: usize,
    /// 0 = January.
    month: usize,
    hour: usize,
    minute: usize,
    second: usize,
    /// Index into `ZONES`.
    zone: usize,
}

impl DateFields {
    fn of(i: usize) -> Self {
        DateFields {
            day: 1 + i % 28,
            month: (i / 28) % MONTHS.len(),
            hour: i % 24,
            minute: (i / 24) % 60,
            second: i % 60,
            zone: (i / 3) % ZONES.len(),
        }
    }

    /// Seconds since 2026-01-01 00:00 UTC.
    fn utc_seconds(&self) -> i64 {
        const DAYS_BEFORE: [i64; 11] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304];
        let days = DAYS_BEFORE[self.month] + self.day as i64 - 1;
        let local =
            ((days * 24 + self.hour as i64) * 60 + self.minute as i64) * 60 + self.second as i64;
        local - ZONE_MINUTES[self.zone] * 60
    }
}

/// The sequence numbers of a generated mailbox of `messages` messages (no huge one) in
/// `SORT (DATE)` order worked out from the generator's own dates: by the Date header in UTC,
/// ties by sequence number (RFC 5256 2.2 and 3). Both servers number the messages in file name
/// order, which is generation order.
pub fn date_order(messages: usize) -> Vec<u64> {
    let mut seqs: Vec<(i64, u64)> = (0..messages)
        .map(|i| (DateFields::of(i).utc_seconds(), i as u64 + 1))
        .collect();
    seqs.sort_unstable();
    seqs.into_iter().map(|(_, seq)| seq).collect()
}
/// The subject tag of the one mailing list in the corpus (RFC 5256 `subj-blob`).
const LIST_TAG: &str = "[team-list]";

/// How a reply's subject starts, as different clients write it; every form is one that the
/// RFC 5256 base-subject rules remove (`subj-refwd`, with a `subj-blob` in "Re[2]:").
fn reply_prefix(i: usize) -> &'static str {
    match i % 20 {
        3 => "Fwd: ",
        7 => "RE: ",
        11 => "Re[2]: ",
        15 => "Fw: ",
        _ => "Re: ",
    }
}

/// `subject` without the reply prefixes this generator adds, so a reply to a reply does not
/// pile them up (a list tag stays: "Re: [team-list] Budget").
fn base_subject(subject: &str) -> &str {
    let mut s = subject;
    loop {
        match ["Re: ", "Fwd: ", "RE: ", "Re[2]: ", "Fw: "]
            .iter()
            .find_map(|p| s.strip_prefix(p))
        {
            Some(rest) => s = rest,
            None => return s,
        }
    }
}

/// One mailbox of the corpus: name (`INBOX` or a Maildir++ folder name) and message count.
pub struct MailboxSpec {
    pub name: &'static str,
    pub messages: usize,
    /// Adds the 10 MB three-part message ("huge" row) at the end.
    pub with_huge: bool,
    /// Percent of messages left unseen.
    pub unseen_percent: usize,
    /// Small text messages only (`small_message`, under 1 kB each): the 1,000,000-message
    /// INBOX of `bench/run --huge`, where the realistic mix would be 9 GB.
    pub small: bool,
}

/// One user's mailboxes.
pub struct UserSpec {
    pub name: String,
    pub mailboxes: Vec<MailboxSpec>,
}

/// Sizes of the corpus, full or quick.
pub struct CorpusSpec {
    pub users: Vec<UserSpec>,
}

/// What a written mailbox holds, for cross-checking answers of both servers.
#[derive(Default, Clone, Copy, Debug)]
pub struct Written {
    pub messages: usize,
    pub bytes: u64,
}

fn name(rng: &mut Rng, i: usize) -> (String, String) {
    if i.is_multiple_of(97) {
        let last = rng.pick(LAST);
        return (
            format!("{FROM_MARKER} {last}"),
            format!("ximena.{}@{}", last.to_lowercase(), rng.pick(DOMAINS)),
        );
    }
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let local: String = format!("{first}.{last}")
        .to_lowercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    (
        format!("{first} {last}"),
        format!("{local}@{}", rng.pick(DOMAINS)),
    )
}

/// Quotes a display name containing non-ASCII as an RFC 2047 word, as mail clients do.
fn display(name: &str) -> String {
    if name.is_ascii() {
        format!("\"{name}\"")
    } else {
        let mut q = String::from("=?UTF-8?Q?");
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() {
                q.push(b as char);
            } else if b == b' ' {
                q.push('_');
            } else {
                q.push_str(&format!("={b:02X}"));
            }
        }
        q.push_str("?=");
        q
    }
}

fn paragraph(rng: &mut Rng, words: usize, marker: bool) -> String {
    let mut s = String::with_capacity(words * 7);
    let mut col = 0;
    let at = if marker { rng.below(words) } else { usize::MAX };
    for w in 0..words {
        let word = if w == at {
            TEXT_MARKER
        } else {
            rng.pick(WORDS)
        };
        if col + word.len() > 72 {
            s.push('\n');
            col = 0;
        } else if w > 0 {
            s.push(' ');
            col += 1;
        }
        s.push_str(word);
        col += word.len();
    }
    s.push('\n');
    s
}

fn text(rng: &mut Rng, bytes: usize, marker: bool) -> String {
    let mut s = String::new();
    let paragraphs = (bytes / 400).max(1);
    let marked = if marker {
        rng.below(paragraphs)
    } else {
        usize::MAX
    };
    for p in 0..paragraphs {
        s.push_str(&paragraph(rng, 60, p == marked));
        s.push('\n');
    }
    s
}

fn html(rng: &mut Rng, plain: &str) -> String {
    let mut s = String::from("<html><head><meta charset=\"utf-8\"></head><body>\n");
    for p in plain.split("\n\n").filter(|p| !p.is_empty()) {
        s.push_str("<p style=\"font-family: Arial\">");
        s.push_str(&p.replace('\n', " "));
        s.push_str("</p>\n");
    }
    if rng.chance(30) {
        s.push_str("<table><tr><td>Total</td><td>1,234.00</td></tr></table>\n");
    }
    s.push_str("</body></html>\n");
    s
}

/// Base64 of pseudo-random bytes, 76 columns, as attachments are sent.
fn base64_block(rng: &mut Rng, raw_len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let chars = raw_len.div_ceil(3) * 4;
    let mut s = String::with_capacity(chars + chars / 76 + 1);
    let mut col = 0;
    let mut word = rng.next_u64();
    for i in 0..chars {
        if i % 10 == 0 {
            word = rng.next_u64();
        }
        s.push(ALPHABET[(word >> ((i % 10) * 6) & 63) as usize] as char);
        col += 1;
        if col == 76 {
            s.push('\n');
            col = 0;
        }
    }
    if col != 0 {
        s.push('\n');
    }
    s
}

/// Quoted-printable Latin-1 text (real 8-bit characters encoded), as older clients send.
fn latin1_qp(plain: &str) -> String {
    let mut s = String::new();
    for line in plain.lines() {
        let mut out = String::new();
        for (i, w) in line.split(' ').enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(w);
            if w.len() == 6 {
                out.push_str(" caf=E9 na=EFve =C0 bient=F4t");
            }
        }
        s.push_str(&out);
        s.push('\n');
    }
    s
}

struct Thread {
    message_id: String,
    references: String,
    subject: String,
}

/// The Date header of message `i` (RFC 5322), from [`DateFields::of`].
fn date_header(i: usize) -> String {
    let d = DateFields::of(i);
    format!(
        "{}, {:02} {} 2026 {:02}:{:02}:{:02} {}",
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][i % 7],
        d.day,
        MONTHS[d.month],
        d.hour,
        d.minute,
        d.second,
        ZONES[d.zone]
    )
}

/// Builds one message (LF line endings). `i` is its index in the mailbox.
fn message(rng: &mut Rng, i: usize, box_tag: &str, threads: &mut Vec<Thread>) -> Vec<u8> {
    let (from_name, from_addr) = name(rng, i);
    let (to_name, to_addr) = name(rng, i + 1);
    let marker = i % 199 == 7;
    let date = date_header(i);
    let message_id = format!("<{i}.{box_tag}.{:x}@{}>", rng.next_u64(), rng.pick(DOMAINS));
    let mut h = String::new();
    h.push_str(&format!("Return-Path: <{from_addr}>\n"));
    h.push_str(&format!(
        "Received: from mx.example.net (mx.example.net [192.0.2.{}])\n\tby mail.example.com (Postfix) with ESMTPS id 4X{:X}\n\tfor <{to_addr}>; {date}\n",
        i % 250,
        rng.next_u64() & 0xffff_ffff
    ));
    h.push_str(&format!("Date: {date}\n"));
    h.push_str(&format!("From: {} <{from_addr}>\n", display(&from_name)));
    h.push_str(&format!("To: {} <{to_addr}>\n", display(&to_name)));
    if rng.chance(25) {
        let (cc_name, cc_addr) = name(rng, i + 2);
        h.push_str(&format!("Cc: {} <{cc_addr}>\n", display(&cc_name)));
    }
    let subject;
    if !threads.is_empty() && rng.chance(35) {
        let t = &threads[rng.below(threads.len())];
        subject = format!("{}{}", reply_prefix(i), base_subject(&t.subject));
        h.push_str(&format!("In-Reply-To: {}\n", t.message_id));
        let refs = format!("{} {}", t.references, t.message_id)
            .trim()
            .to_string();
        h.push_str(&format!("References: {refs}\n"));
        if threads.len() < 4096 {
            threads.push(Thread {
                message_id: message_id.clone(),
                references: refs,
                subject: subject.clone(),
            });
        }
    } else {
        let plain = if rng.chance(15) {
            rng.pick(SUBJECTS_2047).to_string()
        } else {
            format!("{} #{}", rng.pick(SUBJECTS), i % 1000)
        };
        // One thread in ten comes from a mailing list that tags its subjects.
        subject = if i % 10 == 4 {
            format!("{LIST_TAG} {plain}")
        } else {
            plain
        };
        threads.push(Thread {
            message_id: message_id.clone(),
            references: String::new(),
            subject: subject.clone(),
        });
        if threads.len() > 4096 {
            threads.remove(0);
        }
    }
    h.push_str(&format!("Subject: {subject}\n"));
    h.push_str(&format!("Message-ID: {message_id}\n"));
    h.push_str("MIME-Version: 1.0\n");
    let boundary = format!("----=_Part_{i}_{:x}", rng.next_u64());
    let kind = rng.below(1000);
    let body_len = rng.range(300, 4000);
    let plain = text(rng, body_len, marker);
    let mut b = String::new();
    match kind {
        0..=449 => {
            h.push_str("Content-Type: text/plain; charset=utf-8; format=flowed\nContent-Transfer-Encoding: 8bit\n");
            b.push_str(&plain);
        }
        450..=519 => {
            h.push_str("Content-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: quoted-printable\n");
            b.push_str(&latin1_qp(&plain));
        }
        520..=769 => {
            h.push_str(&format!(
                "Content-Type: multipart/alternative; boundary=\"{boundary}\"\n"
            ));
            b.push_str(&format!("--{boundary}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n{plain}\n--{boundary}\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n{}\n--{boundary}--\n", html(rng, &plain)));
        }
        770..=869 => {
            let (ctype, fname) = [
                ("application/pdf", "report.pdf"),
                ("image/jpeg", "photo.jpg"),
                (
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "budget.xlsx",
                ),
            ][rng.below(3)];
            let size = rng.range(4_000, 60_000);
            h.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\n"
            ));
            b.push_str(&format!("This is a multi-part message in MIME format.\n--{boundary}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{plain}\n--{boundary}\nContent-Type: {ctype}; name=\"{fname}\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"{fname}\"\n\n{}\n--{boundary}--\n", base64_block(rng, size)));
        }
        870..=929 => {
            let inner = format!("{boundary}_alt");
            let logo_len = rng.range(2_000, 20_000);
            let logo = base64_block(rng, logo_len);
            h.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\n"
            ));
            b.push_str(&format!("--{boundary}\nContent-Type: multipart/alternative; boundary=\"{inner}\"\n\n--{inner}\nContent-Type: text/plain; charset=utf-8\n\n{plain}\n--{inner}\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n{}\n--{inner}--\n\n--{boundary}\nContent-Type: image/png; name=\"logo.png\"\nContent-Transfer-Encoding: base64\nContent-ID: <logo{i}@example.com>\nContent-Disposition: inline; filename=\"logo.png\"\n\n{}\n--{boundary}\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\nContent-Transfer-Encoding: 7bit\n\nBEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nSUMMARY:Team call\nDTSTART:20261124T100000Z\nEND:VEVENT\nEND:VCALENDAR\n\n--{boundary}--\n", html(rng, &plain).replace('=', "=3D"), logo));
        }
        930..=979 => {
            let (fwd_name, fwd_addr) = name(rng, i + 3);
            h.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\n"
            ));
            b.push_str(&format!("--{boundary}\nContent-Type: text/plain; charset=utf-8\n\nSee below.\n\n--{boundary}\nContent-Type: message/rfc822\nContent-Disposition: inline\n\nFrom: {} <{fwd_addr}>\nTo: {} <{to_addr}>\nSubject: {}\nDate: {date}\nMessage-ID: <fwd.{i}@example.org>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{}\n--{boundary}--\n", display(&fwd_name), display(&to_name), rng.pick(SUBJECTS), text(rng, 800, false)));
        }
        980..=998 => {
            let (charset, enc) = [
                ("ISO-2022-JP", "7bit"),
                ("windows-1251", "8bit"),
                ("Shift_JIS", "8bit"),
                ("KOI8-R", "8bit"),
            ][rng.below(4)];
            h.push_str(&format!(
                "Content-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: {enc}\n"
            ));
            b.push_str(&plain);
        }
        _ if rng.chance(20) => {
            // One in 5,000: a 1-10 MB attachment.
            let size = rng.range(1_000_000, 7_000_000);
            h.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\n"
            ));
            b.push_str(&format!("--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{plain}\n--{boundary}\nContent-Type: application/zip; name=\"archive.zip\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"archive.zip\"\n\n{}\n--{boundary}--\n", base64_block(rng, size)));
        }
        _ => {
            h.push_str("Content-Type: text/plain; charset=us-ascii\n");
            b.push_str(&plain);
        }
    }
    let mut m = h.into_bytes();
    m.push(b'\n');
    m.extend_from_slice(b.as_bytes());
    m
}

/// The subject words `SEARCH SUBJECT` looks for in the scaling rows (row 17): in about one
/// message in sixteen of either kind of mailbox (one of `SUBJECTS`, also in replies).
pub const SUBJECT_MARKER: &str = "Budget draft";

/// A small plain-text message (about 600-900 bytes, LF line endings) for the 1,000,000-message
/// INBOX: the headers a delivered message has (trace, Date in eight zones, From with
/// `FROM_MARKER` on 1% of senders, a subject from `SUBJECTS`, a third of them replies,
/// Message-ID) and a short body; `TEXT_MARKER` in the body of 0.5% as in `message`. Cheap to
/// build: a million of them are written in one pass.
pub fn small_message(rng: &mut Rng, i: usize, out: &mut Vec<u8>) {
    use std::io::Write as _;
    out.clear();
    let (from_name, from_addr) = name(rng, i);
    let (to_name, to_addr) = name(rng, i + 1);
    let date = date_header(i);
    let subject = rng.pick(SUBJECTS);
    let prefix = if rng.chance(33) { reply_prefix(i) } else { "" };
    let _ = write!(
        out,
        "Return-Path: <{from_addr}>\nReceived: from mx.example.net (mx.example.net [192.0.2.{}])\n\tby mail.example.com (Postfix) with ESMTPS id 4X{:X}\n\tfor <{to_addr}>; {date}\nDate: {date}\nFrom: {} <{from_addr}>\nTo: {} <{to_addr}>\nSubject: {prefix}{subject} #{}\nMessage-ID: <{i}.small.{:x}@{}>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n",
        i % 250,
        rng.next_u64() & 0xffff_ffff,
        display(&from_name),
        display(&to_name),
        i % 1000,
        rng.next_u64(),
        rng.pick(DOMAINS)
    );
    let words = rng.range(20, 60);
    out.extend_from_slice(paragraph(rng, words, i % 199 == 7).as_bytes());
}

/// The 10 MB message of row 3: a short text part, a 4 MB attachment (part 2, the one fetched
/// alone) and a 3.3 MB one, base64 (about 10 MB on the wire).
pub fn huge_message(rng: &mut Rng) -> Vec<u8> {
    let boundary = "huge-boundary-7f3a";
    let mut m = format!(
        "From: \"Big Sender\" <big@example.com>\nTo: <big@example.org>\nSubject: The 10 MB message\nDate: Mon, 02 Nov 2026 10:00:00 +0100\nMessage-ID: <huge@example.com>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\n\n--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n{}\n--{boundary}\nContent-Type: application/octet-stream; name=\"middle.bin\"\nContent-Transfer-Encoding: base64\n\n{}\n--{boundary}\nContent-Type: application/octet-stream; name=\"last.bin\"\nContent-Transfer-Encoding: base64\n\n{}\n--{boundary}--\n",
        text(rng, 2000, false),
        base64_block(rng, 4_000_000),
        base64_block(rng, 3_300_000)
    );
    m.shrink_to_fit();
    m.into_bytes()
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut f = fs::File::create(dir.join(name))?;
    f.write_all(data)?;
    Ok(())
}

fn folder_dir(root: &Path, mailbox: &str) -> PathBuf {
    if mailbox == "INBOX" {
        root.to_path_buf()
    } else {
        root.join(format!(".{mailbox}"))
    }
}

/// Writes one mailbox; returns what it holds.
fn write_mailbox(root: &Path, spec: &MailboxSpec, seed: u64) -> std::io::Result<Written> {
    let dir = folder_dir(root, spec.name);
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    let mut rng = Rng::new(seed);
    let mut threads = Vec::new();
    let mut written = Written::default();
    let base_time: u64 = 1_780_000_000;
    let total = spec.messages + usize::from(spec.with_huge);
    let mut small = Vec::with_capacity(2048);
    for i in 0..total {
        let owned;
        let data: &[u8] = if spec.with_huge && i == spec.messages {
            owned = huge_message(&mut rng);
            &owned
        } else if spec.small {
            small_message(&mut rng, i, &mut small);
            &small
        } else {
            owned = message(&mut rng, i, spec.name, &mut threads);
            &owned
        };
        let lines = data.iter().filter(|&&b| b == b'\n').count();
        let base = format!(
            "{}.M{}P4242.bench,S={},W={}",
            base_time + i as u64,
            i,
            data.len(),
            data.len() + lines
        );
        // The newest few arrived in new/ (unseen, no flags yet); the rest are in cur/, most read.
        let in_new = i + 20 >= total && spec.name == "INBOX";
        if in_new {
            write_file(&dir.join("new"), &base, data)?;
        } else {
            let seen = !rng.chance(spec.unseen_percent);
            let flagged = rng.chance(3);
            let answered = rng.chance(10);
            let mut flags = String::new();
            if flagged {
                flags.push('F');
            }
            if answered {
                flags.push('R');
            }
            if seen {
                flags.push('S');
            }
            write_file(&dir.join("cur"), &format!("{base}:2,{flags}"), data)?;
        }
        written.messages += 1;
        written.bytes += data.len() as u64;
    }
    Ok(written)
}

/// Writes the whole corpus under `root/<user>/` unless a finished one is there already
/// (`root/.complete` names the spec). Returns per (user, mailbox) what was written.
pub fn ensure(
    root: &Path,
    spec: &CorpusSpec,
    label: &str,
) -> std::io::Result<Vec<(String, String, Written)>> {
    let stamp = root.join(".complete");
    let mut out = Vec::new();
    let same_label = fs::read_to_string(&stamp).ok().as_deref() == Some(label);
    if !same_label {
        if root.exists() {
            fs::remove_dir_all(root)?;
        }
        fs::create_dir_all(root)?;
    }
    let mut stamped = same_label;
    for (ui, u) in spec.users.iter().enumerate() {
        let user_root = root.join(&u.name);
        // A corpus written before a row added its users (the `sieve` rows' `sieve0`, ...) or
        // mailboxes (row 17's `m1000` in the full run) gets just those written; the mailboxes
        // already there are read as they are.
        let inbox_present = same_label && user_root.join("cur").is_dir();
        if !inbox_present && user_root.exists() {
            fs::remove_dir_all(&user_root)?;
        }
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(user_root.join(sub))?;
        }
        for (mi, m) in u.mailboxes.iter().enumerate() {
            let dir = folder_dir(&user_root, m.name);
            let present = if m.name == "INBOX" {
                inbox_present
            } else {
                same_label && dir.join("cur").is_dir()
            };
            if present {
                let mut w = Written::default();
                for sub in ["cur", "new"] {
                    for e in fs::read_dir(dir.join(sub))? {
                        w.messages += 1;
                        w.bytes += e?.metadata()?.len();
                    }
                }
                out.push((u.name.clone(), m.name.to_string(), w));
                continue;
            }
            // Unstamped while writing: a run stopped half-way leaves no stamp, and the next
            // one writes everything again rather than taking a half mailbox for a whole one.
            if stamped {
                fs::remove_file(&stamp)?;
                stamped = false;
            }
            // Same seed for same-named, same-sized mailboxes of different users: the POP3
            // INBOX holds the same kind of mail as the 10k folder.
            let seed = (m.messages as u64) << 8 | (mi as u64) << 4 | (ui as u64 % 2);
            let w = write_mailbox(&user_root, m, seed)?;
            out.push((u.name.clone(), m.name.to_string(), w));
        }
    }
    fs::write(&stamp, label)?;
    Ok(out)
}
