//! Parser tables: valid commands (RFC 3501 and extension examples) with their
//! parsed values, and bad inputs with their error kinds.

use std::num::NonZeroU32;

use mailcove::imap::proto::parse::{ParseErrorKind, parse_command};
use mailcove::imap::proto::receive::{Framed, Receiver, ReceiverLimits};
use mailcove::imap::proto::types::*;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero")
}

fn mb(s: &str) -> Mailbox {
    Mailbox::new(s.as_bytes().to_vec())
}

fn atom(s: &str) -> Atom {
    Atom::new(s.as_bytes()).expect("atom")
}

fn set(items: &[(u32, u32)]) -> SequenceSet {
    let s = |n: u32| NonZeroU32::new(n).map_or(SeqNum::Star, SeqNum::Value);
    SequenceSet::new(
        items
            .iter()
            .map(|&(a, b)| SequenceSetItem::Range(s(a), s(b)))
            .collect(),
    )
    .expect("set")
}

fn date(y: u16, m: u8, d: u8) -> Date {
    Date::new(y, m, d).expect("date")
}

fn section(part: &[u32], text: Option<SectionText>) -> Section {
    Section {
        part: part.iter().map(|&n| nz(n)).collect(),
        text,
    }
}

fn valid_table() -> Vec<(&'static [u8], CommandBody)> {
    use CommandBody as C;
    vec![
        (&b"a CAPABILITY\r\n"[..], C::Capability),
        (b"a capability\r\n", C::Capability),
        (b"a NOOP\r\n", C::Noop),
        (b"a LOGOUT\r\n", C::Logout),
        (b"a STARTTLS\r\n", C::StartTls),
        (
            b"a001 LOGIN SMITH SESAME\r\n",
            C::Login {
                username: b"SMITH".to_vec(),
                password: Secret(b"SESAME".to_vec()),
            },
        ),
        (
            b"a LOGIN \"fred \\\"x\\\\\" {3}\r\np w\r\n",
            C::Login {
                username: b"fred \"x\\".to_vec(),
                password: Secret(b"p w".to_vec()),
            },
        ),
        (
            b"a AUTHENTICATE PLAIN\r\n",
            C::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: None,
            },
        ),
        (
            b"a authenticate plain AHRlc3QAMTIzNA==\r\n",
            C::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: Some(Secret(b"\0test\x001234".to_vec())),
            },
        ),
        (
            b"a AUTHENTICATE EXTERNAL =\r\n",
            C::Authenticate {
                mechanism: "EXTERNAL".into(),
                initial_response: Some(Secret(Vec::new())),
            },
        ),
        (
            b"a ENABLE CONDSTORE X-GOOD-IDEA\r\n",
            C::Enable {
                capabilities: vec![atom("CONDSTORE"), atom("X-GOOD-IDEA")],
            },
        ),
        (
            b"a023 ID (\"name\" \"sodr\" \"version\" NIL)\r\n",
            C::Id {
                parameters: Some(vec![
                    (b"name".to_vec(), Some(b"sodr".to_vec())),
                    (b"version".to_vec(), None),
                ]),
            },
        ),
        (b"a ID NIL\r\n", C::Id { parameters: None }),
        (b"a ID ()\r\n", C::Id { parameters: Some(Vec::new()) }),
        (b"a NAMESPACE\r\n", C::Namespace),
        (b"a IDLE\r\n", C::Idle),
        (
            b"a COMPRESS deflate\r\n",
            C::Compress {
                algorithm: "DEFLATE".into(),
            },
        ),
        (
            b"A142 SELECT INBOX\r\n",
            C::Select {
                mailbox: mb("INBOX"),
                condstore: false,
                qresync: None,
            },
        ),
        (
            b"a SELECT inbox (CONDSTORE)\r\n",
            C::Select {
                mailbox: mb("INBOX"),
                condstore: true,
                qresync: None,
            },
        ),
        (
            b"A932 EXAMINE blurdybloop\r\n",
            C::Examine {
                mailbox: mb("blurdybloop"),
                condstore: false,
                qresync: None,
            },
        ),
        (
            b"A003 CREATE owatagusiam/\r\n",
            C::Create {
                mailbox: mb("owatagusiam/"),
                special_use: Vec::new(),
            },
        ),
        (
            b"t1 CREATE MySpecial (USE (\\Drafts \\Sent))\r\n",
            C::Create {
                mailbox: mb("MySpecial"),
                special_use: vec![MailboxAttr::Drafts, MailboxAttr::Sent],
            },
        ),
        (
            b"A683 DELETE blurdybloop\r\n",
            C::Delete {
                mailbox: mb("blurdybloop"),
            },
        ),
        (
            b"A683 RENAME blurdybloop sarasoop\r\n",
            C::Rename {
                from: mb("blurdybloop"),
                to: mb("sarasoop"),
            },
        ),
        (
            b"A002 SUBSCRIBE #news.comp.mail.mime\r\n",
            C::Subscribe {
                mailbox: mb("#news.comp.mail.mime"),
            },
        ),
        (
            b"A002 UNSUBSCRIBE #news.comp.mail.mime\r\n",
            C::Unsubscribe {
                mailbox: mb("#news.comp.mail.mime"),
            },
        ),
        (
            b"A101 LIST \"\" \"\"\r\n",
            C::List {
                selection: None,
                reference: mb(""),
                patterns: vec![Vec::new()],
                returns: None,
            },
        ),
        (
            b"A202 LIST ~/Mail/ %\r\n",
            C::List {
                selection: None,
                reference: mb("~/Mail/"),
                patterns: vec![b"%".to_vec()],
                returns: None,
            },
        ),
        (
            b"A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"*\" %/x) RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN SIZE))\r\n",
            C::List {
                selection: Some(vec![ListSelect::Subscribed, ListSelect::RecursiveMatch]),
                reference: mb(""),
                patterns: vec![b"*".to_vec(), b"%/x".to_vec()],
                returns: Some(vec![
                    ListReturn::Children,
                    ListReturn::SpecialUse,
                    ListReturn::Status(vec![
                        StatusItem::Messages,
                        StatusItem::Unseen,
                        StatusItem::Size,
                    ]),
                ]),
            },
        ),
        (
            b"t3 LIST (SPECIAL-USE) \"\" \"*\"\r\n",
            C::List {
                selection: Some(vec![ListSelect::SpecialUse]),
                reference: mb(""),
                patterns: vec![b"*".to_vec()],
                returns: None,
            },
        ),
        (
            b"A03 LIST () \"\" % RETURN ()\r\n",
            C::List {
                selection: Some(Vec::new()),
                reference: mb(""),
                patterns: vec![b"%".to_vec()],
                returns: Some(Vec::new()),
            },
        ),
        (
            b"A002 LSUB \"#news.\" \"comp.mail.*\"\r\n",
            C::Lsub {
                reference: mb("#news."),
                pattern: b"comp.mail.*".to_vec(),
            },
        ),
        (
            b"A042 STATUS blurdybloop (UIDNEXT MESSAGES highestmodseq DELETED)\r\n",
            C::Status {
                mailbox: mb("blurdybloop"),
                items: vec![
                    StatusItem::UidNext,
                    StatusItem::Messages,
                    StatusItem::HighestModSeq,
                    StatusItem::Deleted,
                ],
            },
        ),
        (
            b"A003 APPEND saved-messages (\\Seen) {10}\r\nDate: x\r\n.\r\n",
            C::Append {
                mailbox: mb("saved-messages"),
                messages: vec![AppendMessage {
                    flags: vec![Flag::Seen],
                    date: None,
                    data: b"Date: x\r\n.".to_vec(),
                    binary: false,
                    utf8: false,
                    catenate: None,
                }],
            },
        ),
        (
            b"A003 APPEND INBOX \"17-Jul-1996 02:44:25 -0700\" {1+}\r\nx (\\Draft $Fwd) ~{2}\r\n\0y\r\n",
            C::Append {
                mailbox: mb("INBOX"),
                messages: vec![
                    AppendMessage {
                        flags: Vec::new(),
                        date: DateTime::new(date(1996, 7, 17), 2, 44, 25, -420),
                        data: b"x".to_vec(),
                        binary: false,
                        utf8: false,
                        catenate: None,
                    },
                    AppendMessage {
                        flags: vec![Flag::Draft, Flag::Keyword(atom("$Fwd"))],
                        date: None,
                        data: b"\0y".to_vec(),
                        binary: true,
                        utf8: false,
                        catenate: None,
                    },
                ],
            },
        ),
        (
            // RFC 6855 4 utf8-literal, then RFC 4469 CATENATE with TEXT (literal and literal8)
            // and URL parts (MULTIAPPEND of the two).
            b"A1 APPEND INBOX UTF8 (~{2}\r\n\xc3\xa9) (\\Seen) CATENATE (URL \"/INBOX;UIDVALIDITY=3/;UID=1\" TEXT {1}\r\nx TEXT ~{1}\r\n\0 UTF8 (~{1}\r\ny))\r\n",
            C::Append {
                mailbox: mb("INBOX"),
                messages: vec![
                    AppendMessage {
                        flags: Vec::new(),
                        date: None,
                        data: b"\xc3\xa9".to_vec(),
                        binary: true,
                        utf8: true,
                        catenate: None,
                    },
                    AppendMessage {
                        flags: vec![Flag::Seen],
                        date: None,
                        data: Vec::new(),
                        binary: false,
                        utf8: false,
                        catenate: Some(vec![
                            CatPart::Url(b"/INBOX;UIDVALIDITY=3/;UID=1".to_vec()),
                            CatPart::Text {
                                data: b"x".to_vec(),
                                binary: false,
                                utf8: false,
                            },
                            CatPart::Text {
                                data: b"\0".to_vec(),
                                binary: true,
                                utf8: false,
                            },
                            CatPart::Text {
                                data: b"y".to_vec(),
                                binary: true,
                                utf8: true,
                            },
                        ]),
                    },
                ],
            },
        ),
        (
            b"a GETQUOTA \"\"\r\n",
            C::GetQuota { root: Vec::new() },
        ),
        (
            b"a GETQUOTAROOT INBOX\r\n",
            C::GetQuotaRoot {
                mailbox: mb("INBOX"),
            },
        ),
        // RFC 9208 4.1.3 examples, and an empty list (removes every limit).
        (
            b"S0001 SETQUOTA \"#user/alice\" (STORAGE 510)\r\n",
            C::SetQuota {
                root: b"#user/alice".to_vec(),
                limits: vec![("STORAGE".into(), 510)],
            },
        ),
        (
            b"a setquota \"\" (storage 1 Message 20)\r\n",
            C::SetQuota {
                root: Vec::new(),
                limits: vec![("STORAGE".into(), 1), ("MESSAGE".into(), 20)],
            },
        ),
        (
            b"a SETQUOTA \"\" ()\r\n",
            C::SetQuota {
                root: Vec::new(),
                limits: Vec::new(),
            },
        ),
        (b"FXXZ CHECK\r\n", C::Check),
        (b"A341 CLOSE\r\n", C::Close),
        (b"a UNSELECT\r\n", C::Unselect),
        (b"A202 EXPUNGE\r\n", C::Expunge { uids: None }),
        (
            b"A003 UID EXPUNGE 3000:3002\r\n",
            C::Expunge {
                uids: Some(set(&[(3000, 3002)])),
            },
        ),
        (
            b"A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
            C::Search {
                uid: false,
                returns: None,
                charset: None,
                criteria: SearchKey::And(vec![
                    SearchKey::Flagged,
                    SearchKey::Since(date(1994, 2, 1)),
                    SearchKey::Not(Box::new(SearchKey::From(b"Smith".to_vec()))),
                ]),
            },
        ),
        (
            b"A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX\r\n",
            C::Search {
                uid: false,
                returns: None,
                charset: Some(b"UTF-8".to_vec()),
                criteria: SearchKey::Text(b"XXXXXX".to_vec()),
            },
        ),
        (
            b"A285 UID SEARCH RETURN (MIN COUNT SAVE) OR (1:5 UID 7,9:*) $ UNKEYWORD $Junk\r\n",
            C::Search {
                uid: true,
                returns: Some(vec![SearchReturn::Min, SearchReturn::Count, SearchReturn::Save]),
                charset: None,
                criteria: SearchKey::And(vec![
                    SearchKey::Or(
                        Box::new(SearchKey::And(vec![
                            SearchKey::SequenceSet(set(&[(1, 5)])),
                            SearchKey::Uid(set(&[(7, 7), (9, 0)])),
                        ])),
                        Box::new(SearchKey::SequenceSet(
                            SequenceSet::new(vec![SequenceSetItem::Saved]).expect("set"),
                        )),
                    ),
                    SearchKey::Unkeyword(atom("$Junk")),
                ]),
            },
        ),
        (
            b"a SEARCH RETURN () all answered bcc x before 1-Jan-2000 body y cc z deleted draft header X-Spam \"\" keyword k larger 10 new old on 2-Jan-2000 recent seen sentbefore 3-Jan-2000 senton 4-Jan-2000 sentsince 5-Jan-2000 smaller 20 subject s to t unanswered undeleted undraft unflagged unseen modseq 7\r\n",
            C::Search {
                uid: false,
                returns: Some(Vec::new()),
                charset: None,
                criteria: SearchKey::And(vec![
                    SearchKey::All,
                    SearchKey::Answered,
                    SearchKey::Bcc(b"x".to_vec()),
                    SearchKey::Before(date(2000, 1, 1)),
                    SearchKey::Body(b"y".to_vec()),
                    SearchKey::Cc(b"z".to_vec()),
                    SearchKey::Deleted,
                    SearchKey::Draft,
                    SearchKey::Header(b"X-Spam".to_vec(), Vec::new()),
                    SearchKey::Keyword(atom("k")),
                    SearchKey::Larger(10),
                    SearchKey::New,
                    SearchKey::Old,
                    SearchKey::On(date(2000, 1, 2)),
                    SearchKey::Recent,
                    SearchKey::Seen,
                    SearchKey::SentBefore(date(2000, 1, 3)),
                    SearchKey::SentOn(date(2000, 1, 4)),
                    SearchKey::SentSince(date(2000, 1, 5)),
                    SearchKey::Smaller(20),
                    SearchKey::Subject(b"s".to_vec()),
                    SearchKey::To(b"t".to_vec()),
                    SearchKey::Unanswered,
                    SearchKey::Undeleted,
                    SearchKey::Undraft,
                    SearchKey::Unflagged,
                    SearchKey::Unseen,
                    SearchKey::ModSeq {
                        entry: None,
                        modseq: 7,
                    },
                ]),
            },
        ),
        (
            b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
            C::Fetch {
                uid: false,
                set: set(&[(2, 4)]),
                attrs: vec![
                    FetchAttr::Flags,
                    FetchAttr::BodySection {
                        peek: false,
                        section: section(
                            &[],
                            Some(SectionText::HeaderFields(vec![b"DATE".to_vec(), b"FROM".to_vec()])),
                        ),
                        partial: None,
                    },
                ],
                changed_since: None,
                vanished: false,
            },
        ),
        (
            b"a FETCH 1 ALL\r\n",
            C::Fetch {
                uid: false,
                set: set(&[(1, 1)]),
                attrs: FetchMacro::All.expand(),
                changed_since: None,
                vanished: false,
            },
        ),
        (
            b"a fetch * fast\r\n",
            C::Fetch {
                uid: false,
                set: set(&[(0, 0)]),
                attrs: FetchMacro::Fast.expand(),
                changed_since: None,
                vanished: false,
            },
        ),
        (
            b"a FETCH 1 FULL\r\n",
            C::Fetch {
                uid: false,
                set: set(&[(1, 1)]),
                attrs: FetchMacro::Full.expand(),
                changed_since: None,
                vanished: false,
            },
        ),
        (
            b"a FETCH 1 body[]\r\n",
            C::Fetch {
                uid: false,
                set: set(&[(1, 1)]),
                attrs: vec![FetchAttr::BodySection {
                    peek: false,
                    section: Section::default(),
                    partial: None,
                }],
                changed_since: None,
                vanished: false,
            },
        ),
        (
            b"a UID FETCH 1:* (ENVELOPE INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE UID MODSEQ BODY.PEEK[1.2.HEADER.FIELDS.NOT (X-A \"X B\")]<0.100> BODY[3.MIME] BODY[4.TEXT] BODY[2.1] BODY[TEXT]<5.1> BINARY.PEEK[1]<0.10> BINARY[] BINARY.SIZE[2.3]) (CHANGEDSINCE 12345)\r\n",
            C::Fetch {
                uid: true,
                set: set(&[(1, 0)]),
                attrs: vec![
                    FetchAttr::Envelope,
                    FetchAttr::InternalDate,
                    FetchAttr::Rfc822,
                    FetchAttr::Rfc822Header,
                    FetchAttr::Rfc822Size,
                    FetchAttr::Rfc822Text,
                    FetchAttr::Body,
                    FetchAttr::BodyStructure,
                    FetchAttr::Uid,
                    FetchAttr::ModSeq,
                    FetchAttr::BodySection {
                        peek: true,
                        section: section(
                            &[1, 2],
                            Some(SectionText::HeaderFieldsNot(vec![
                                b"X-A".to_vec(),
                                b"X B".to_vec(),
                            ])),
                        ),
                        partial: Some(Partial {
                            origin: 0,
                            count: nz(100),
                        }),
                    },
                    FetchAttr::BodySection {
                        peek: false,
                        section: section(&[3], Some(SectionText::Mime)),
                        partial: None,
                    },
                    FetchAttr::BodySection {
                        peek: false,
                        section: section(&[4], Some(SectionText::Text)),
                        partial: None,
                    },
                    FetchAttr::BodySection {
                        peek: false,
                        section: section(&[2, 1], None),
                        partial: None,
                    },
                    FetchAttr::BodySection {
                        peek: false,
                        section: section(&[], Some(SectionText::Text)),
                        partial: Some(Partial {
                            origin: 5,
                            count: nz(1),
                        }),
                    },
                    FetchAttr::Binary {
                        peek: true,
                        part: vec![nz(1)],
                        partial: Some(Partial {
                            origin: 0,
                            count: nz(10),
                        }),
                    },
                    FetchAttr::Binary {
                        peek: false,
                        part: Vec::new(),
                        partial: None,
                    },
                    FetchAttr::BinarySize {
                        part: vec![nz(2), nz(3)],
                    },
                ],
                changed_since: Some(12345),
                vanished: false,
            },
        ),
        (
            b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n",
            C::Store {
                uid: false,
                set: set(&[(2, 4)]),
                op: StoreOp::Add,
                silent: false,
                flags: vec![Flag::Deleted],
                unchanged_since: None,
            },
        ),
        (
            b"a UID STORE 5,7 (UNCHANGEDSINCE 0) -flags.silent \\Seen $Junk\r\n",
            C::Store {
                uid: true,
                set: set(&[(5, 5), (7, 7)]),
                op: StoreOp::Remove,
                silent: true,
                flags: vec![Flag::Seen, Flag::Keyword(atom("$Junk"))],
                unchanged_since: Some(0),
            },
        ),
        (
            b"a STORE 1 FLAGS ()\r\n",
            C::Store {
                uid: false,
                set: set(&[(1, 1)]),
                op: StoreOp::Replace,
                silent: false,
                flags: Vec::new(),
                unchanged_since: None,
            },
        ),
        (
            b"A003 COPY 2:4 MEETING\r\n",
            C::Copy {
                uid: false,
                set: set(&[(2, 4)]),
                mailbox: mb("MEETING"),
            },
        ),
        (
            b"a UID COPY 4:2 \"Sent Items\"\r\n",
            C::Copy {
                uid: true,
                set: set(&[(4, 2)]),
                mailbox: mb("Sent Items"),
            },
        ),
        (
            b"a MOVE 1 Trash\r\n",
            C::Move {
                uid: false,
                set: set(&[(1, 1)]),
                mailbox: mb("Trash"),
            },
        ),
        (
            b"A999 UID FETCH 4827313:4828442 FLAGS\r\n",
            C::Fetch {
                uid: true,
                set: set(&[(4827313, 4828442)]),
                attrs: vec![FetchAttr::Flags],
                changed_since: None,
                vanished: false,
            },
        ),
        (
            b"a FETCH 1 (BODY.PEEK[HEADER] BODY[TEXT])\r\n",
            C::Fetch {
                uid: false,
                set: set(&[(1, 1)]),
                attrs: vec![
                    FetchAttr::BodySection {
                        peek: true,
                        section: section(&[], Some(SectionText::Header)),
                        partial: None,
                    },
                    FetchAttr::BodySection {
                        peek: false,
                        section: section(&[], Some(SectionText::Text)),
                        partial: None,
                    },
                ],
                changed_since: None,
                vanished: false,
            },
        ),
        (
            b"A001 AUTHENTICATE GSSAPI\r\n",
            C::Authenticate {
                mechanism: "GSSAPI".into(),
                initial_response: None,
            },
        ),
        (
            b"A001 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n",
            C::Login {
                username: b"FRED FOOBAR".to_vec(),
                password: Secret(b"fat man".to_vec()),
            },
        ),
        (
            b"a LIST (REMOTE SUBSCRIBED) \"\" * RETURN (SUBSCRIBED)\r\n",
            C::List {
                selection: Some(vec![ListSelect::Remote, ListSelect::Subscribed]),
                reference: mb(""),
                patterns: vec![b"*".to_vec()],
                returns: Some(vec![ListReturn::Subscribed]),
            },
        ),
        (
            b"a STORE 1:* +FLAGS.SILENT (\\Flagged)\r\n",
            C::Store {
                uid: false,
                set: set(&[(1, 0)]),
                op: StoreOp::Add,
                silent: true,
                flags: vec![Flag::Flagged],
                unchanged_since: None,
            },
        ),
        (
            b"a UID SEARCH UID $\r\n",
            C::Search {
                uid: true,
                returns: None,
                charset: None,
                criteria: SearchKey::Uid(SequenceSet::new(vec![SequenceSetItem::Saved]).expect("set")),
            },
        ),
        (
            b"a STATUS inbox (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ DELETED DELETED-STORAGE)\r\n",
            C::Status {
                mailbox: mb("INBOX"),
                items: vec![
                    StatusItem::Messages,
                    StatusItem::Recent,
                    StatusItem::UidNext,
                    StatusItem::UidValidity,
                    StatusItem::Unseen,
                    StatusItem::Size,
                    StatusItem::HighestModSeq,
                    StatusItem::Deleted,
                    StatusItem::DeletedStorage,
                ],
            },
        ),
        (
            b"a EXAMINE INBOX (condstore)\r\n",
            C::Examine {
                mailbox: mb("INBOX"),
                condstore: true,
                qresync: None,
            },
        ),
        (
            b"a uid move 42 inBox\r\n",
            C::Move {
                uid: true,
                set: set(&[(42, 42)]),
                mailbox: mb("INBOX"),
            },
        ),
    ]
}

#[test]
fn valid_commands_parse_to_their_values() {
    for (input, body) in valid_table() {
        let got = parse_command(input);
        assert_eq!(
            got.map(|c| c.body),
            Ok(body),
            "input: {}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn tag_is_kept() {
    let c = parse_command(b"A.b-c]9 NOOP\r\n").expect("parses");
    assert_eq!(c.tag.as_str(), "A.b-c]9");
}

/// Every command split at every byte boundary through the Receiver gives the
/// same parsed command as parsing it whole (literals both synchronizing and not).
#[test]
fn every_command_split_at_every_byte_through_the_receiver() {
    let limits = ReceiverLimits {
        max_line: 64 * 1024,
        max_literal: 1 << 20,
        literal_plus: true,
    };
    for (input, body) in valid_table() {
        for cut in 0..=input.len() {
            let mut rx = Receiver::new(limits);
            let mut buf = Vec::new();
            let mut got = None;
            for part in [&input[..cut], &input[cut..]] {
                buf.extend_from_slice(part);
                loop {
                    match rx.poll(&buf) {
                        Framed::Incomplete => break,
                        Framed::Continue { .. } => {}
                        Framed::Command { consumed, result } => {
                            assert_eq!(consumed, input.len());
                            buf.drain(..consumed);
                            got = Some(result);
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            assert_eq!(
                got.map(|r| r.map(|c| c.body)),
                Some(Ok(body.clone())),
                "input {} split at {cut}",
                String::from_utf8_lossy(input)
            );
        }
    }
}

fn bad_table() -> Vec<(&'static [u8], ParseErrorKind, bool)> {
    use ParseErrorKind as K;
    vec![
        // (input, kind, tag known)
        (&b"\r\n"[..], K::NoTag, false),
        (b"+tag NOOP\r\n", K::NoTag, false),
        (b"a\r\n", K::NoTag, false),
        (b"a{ NOOP\r\n", K::NoTag, false),
        (b"a  NOOP\r\n", K::Syntax, true),
        (b"a FOO\r\n", K::UnknownCommand, true),
        (
            b"a XAPPLEPUSHSERVICE aps-version 2\r\n",
            K::UnknownCommand,
            true,
        ),
        (b"a UID FOO 1\r\n", K::UnknownCommand, true),
        (b"a NOOP extra\r\n", K::Syntax, true),
        (b"a NOOP\n", K::Syntax, true),
        (b"a NOOP \r\n", K::Syntax, true),
        (b"a LOGIN fred\r\n", K::Syntax, true),
        (b"a LOGIN fred \"unterminated\r\n", K::Syntax, true),
        (b"a LOGIN fred \"bad\\escape\"\r\n", K::Syntax, true),
        (b"a LOGIN fred {3}\r\nab\r\n", K::Syntax, true),
        (b"a LOGIN fred {2}\r\na\0\r\n", K::Syntax, true),
        (b"a AUTHENTICATE\r\n", K::Syntax, true),
        (b"a AUTHENTICATE PLAIN !!!\r\n", K::Syntax, true),
        (b"a AUTHENTICATE PLAIN AHRlc3Q\r\n", K::Syntax, true),
        (b"a ENABLE\r\n", K::Syntax, true),
        (b"a SELECT\r\n", K::Syntax, true),
        (b"a SELECT INBOX (QRESYNC (1 2 1:*))\r\n", K::Syntax, true),
        (
            b"t1 CREATE \"Important Messages\" (USE (\\Important))\r\n",
            K::Syntax,
            true,
        ),
        (b"a CREATE x (FOO)\r\n", K::Syntax, true),
        (b"a LIST (RECURSIVEMATCH) \"\" *\r\n", K::Syntax, true),
        (b"a LIST (BOGUS) \"\" *\r\n", K::Syntax, true),
        (b"a LIST \"\" * RETURN (BOGUS)\r\n", K::Syntax, true),
        (b"a STATUS INBOX ()\r\n", K::Syntax, true),
        (b"a STATUS INBOX (MESSAGES BOGUS)\r\n", K::Syntax, true),
        (b"a APPEND INBOX\r\n", K::Syntax, true),
        (b"a APPEND INBOX \"x\"\r\n", K::Syntax, true),
        // RFC 4469 5: at least one cat-part; RFC 6855 4: UTF8 takes a literal8 only.
        (b"a APPEND INBOX CATENATE ()\r\n", K::Syntax, true),
        (
            b"a APPEND INBOX CATENATE (TEXT {1}\r\nx\r\n",
            K::Syntax,
            true,
        ),
        (b"a APPEND INBOX CATENATE (URL)\r\n", K::Syntax, true),
        (b"a APPEND INBOX UTF8 ({1}\r\nx)\r\n", K::Syntax, true),
        (b"a APPEND INBOX UTF8 (~{1}\r\nx\r\n", K::Syntax, true),
        (
            b"a APPEND INBOX \"31-Feb-1996 02:44:25 -0700\" {1}\r\nx\r\n",
            K::Syntax,
            true,
        ),
        (b"a FETCH\r\n", K::Syntax, true),
        (b"a FETCH 0 FLAGS\r\n", K::Syntax, true),
        (b"a FETCH 1:0 FLAGS\r\n", K::Syntax, true),
        (b"a FETCH 1 BOGUS\r\n", K::Syntax, true),
        (b"a FETCH 1 (FLAGS\r\n", K::Syntax, true),
        (b"a FETCH 1 (ALL)\r\n", K::Syntax, true),
        (b"a FETCH 1 BODY[MIME]\r\n", K::Syntax, true),
        (b"a FETCH 1 BODY[HEADER.FIELDS]\r\n", K::Syntax, true),
        (b"a FETCH 1 BODY[1.0]\r\n", K::Syntax, true),
        (b"a FETCH 1 BODY[]<0.0>\r\n", K::Syntax, true),
        (b"a FETCH 1 BODY[]<5>\r\n", K::Syntax, true),
        (b"a FETCH 1 FLAGS[]\r\n", K::Syntax, true),
        (b"a FETCH 1 FLAGS (CHANGEDSINCE 0)\r\n", K::Syntax, true),
        (b"a FETCH 4294967296 FLAGS\r\n", K::NumberTooLarge, true),
        (b"a STORE 1 FLAGS\r\n", K::Syntax, true),
        (b"a STORE 1 *FLAGS (\\Seen)\r\n", K::Syntax, true),
        (b"a STORE 1 FLAGS (\\Seen  \\Draft)\r\n", K::Syntax, true),
        (b"a SEARCH\r\n", K::Syntax, true),
        (b"a SEARCH BOGUS\r\n", K::Syntax, true),
        (b"a SEARCH (ALL\r\n", K::Syntax, true),
        (b"a SEARCH OR ALL\r\n", K::Syntax, true),
        (b"a SEARCH SINCE 1-Foo-2000\r\n", K::Syntax, true),
        // RFC 9051: LARGER takes a number64, so too large means beyond 2^63-1.
        (
            b"a SEARCH LARGER 9223372036854775808\r\n",
            K::NumberTooLarge,
            true,
        ),
        (
            b"a SEARCH MODSEQ 9223372036854775808\r\n",
            K::NumberTooLarge,
            true,
        ),
        (b"a SEARCH RETURN (BOGUS) ALL\r\n", K::Syntax, true),
        (b"a COPY 1\r\n", K::Syntax, true),
        (b"a MOVE 1,\r\n", K::Syntax, true),
        (b"a ID (\"a\")\r\n", K::Syntax, true),
        (b"a SETQUOTA \"\" STORAGE 1\r\n", K::Syntax, true),
        (b"a SETQUOTA \"\" (STORAGE)\r\n", K::Syntax, true),
        (b"a SETQUOTA \"\" (STORAGE 1 )\r\n", K::Syntax, true),
        (b"a SETQUOTA \"\"\r\n", K::Syntax, true),
        (b"a GETQUOTAROOT\r\n", K::Syntax, true),
    ]
}

#[test]
fn bad_commands_and_their_errors() {
    for (input, kind, tag_known) in &bad_table() {
        let err = parse_command(input).expect_err(&String::from_utf8_lossy(input));
        assert_eq!(err.kind, *kind, "input {}", String::from_utf8_lossy(input));
        assert_eq!(
            err.tag.is_some(),
            *tag_known,
            "input {}",
            String::from_utf8_lossy(input)
        );
        assert!(!err.message.is_empty());
        // The sentence is fixed text: it must be safe in a response line.
        assert!(
            !err.message
                .bytes()
                .any(|b| b == b'\r' || b == b'\n' || b == 0)
        );
    }
}

#[test]
fn error_sentences_name_the_problem() {
    let msg = |input: &[u8]| parse_command(input).map(|_| ()).unwrap_err().message;
    assert_eq!(msg(b"a FOO\r\n"), "unknown command");
    assert_eq!(msg(b"a SEARCH BOGUS\r\n"), "unknown search key");
    assert_eq!(msg(b"a FETCH 1 BOGUS\r\n"), "unknown FETCH attribute");
    assert_eq!(
        msg(b"a NOOP extra\r\n"),
        "unexpected characters after the command's arguments"
    );
    assert_eq!(msg(b"a STATUS INBOX (BOGUS)\r\n"), "unknown STATUS item");
}

#[test]
fn nested_search_depth_limit() {
    let mut input = b"a SEARCH ".to_vec();
    input.extend(std::iter::repeat_n(b'(', 100_000));
    input.extend_from_slice(b"ALL");
    input.extend(std::iter::repeat_n(b')', 100_000));
    input.extend_from_slice(b"\r\n");
    let err = parse_command(&input).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::TooDeep);
    assert!(err.tag.is_some());
}

#[test]
fn huge_sequence_sets() {
    let c = parse_command(b"a UID FETCH 1:4294967295 UID\r\n").expect("parses");
    match c.body {
        CommandBody::Fetch { set, .. } => {
            let r = set.resolve(10, None);
            assert_eq!(r.ranges(), &[1..=4_294_967_295]);
        }
        other => panic!("unexpected {other:?}"),
    }
    let mut input = b"a FETCH 1".to_vec();
    for i in 0..100_000u32 {
        input.extend_from_slice(format!(",{}", i % 9 + 1).as_bytes());
    }
    input.extend_from_slice(b" FLAGS\r\n");
    let err = parse_command(&input).unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::TooMany);
}

#[test]
fn id_field_limit() {
    let mut input = b"a ID (".to_vec();
    for i in 0..31 {
        if i > 0 {
            input.push(b' ');
        }
        input.extend_from_slice(format!("\"f{i}\" NIL").as_bytes());
    }
    input.extend_from_slice(b")\r\n");
    assert_eq!(
        parse_command(&input).unwrap_err().kind,
        ParseErrorKind::TooMany
    );
}

#[test]
fn passwords_are_not_in_debug_output() {
    let c = parse_command(b"a LOGIN fred hunter2\r\n").expect("parses");
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
}

/// Bad commands split at every byte through the Receiver give the same error
/// as parsing them whole: framing never changes what a command means.
#[test]
fn bad_commands_split_at_every_byte_through_the_receiver() {
    let limits = ReceiverLimits {
        max_line: 64 * 1024,
        max_literal: 1 << 20,
        literal_plus: true,
    };
    for (input, _, _) in bad_table() {
        let whole = parse_command(input);
        for cut in 0..=input.len() {
            let mut rx = Receiver::new(limits);
            let mut buf = Vec::new();
            let mut got = Vec::new();
            for part in [&input[..cut], &input[cut..]] {
                buf.extend_from_slice(part);
                loop {
                    match rx.poll(&buf) {
                        Framed::Incomplete => break,
                        Framed::Continue { .. } => {}
                        Framed::Command { consumed, result } => {
                            buf.drain(..consumed);
                            got.push(result);
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            assert_eq!(got, vec![whole.clone()], "input {input:?} split at {cut}");
            assert!(buf.is_empty());
        }
    }
}

/// A small deterministic xorshift generator: the mutation test must be repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Mutated commands (flipped, dropped, inserted and duplicated bytes, with
/// IMAP's special characters favoured) never panic the receiver or parser,
/// always make progress, and never ask for a continuation twice.
#[test]
fn mutated_input_never_panics_and_always_progresses() {
    let specials = b"{}()[]<>\"\\*%$+~ \r\n0123456789:,.";
    let mut seeds: Vec<Vec<u8>> = valid_table().into_iter().map(|(i, _)| i.to_vec()).collect();
    seeds.extend(bad_table().into_iter().map(|(i, _, _)| i.to_vec()));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let limits = ReceiverLimits {
        max_line: 300,
        max_literal: 200,
        literal_plus: true,
    };
    for round in 0..200u32 {
        for seed in &seeds {
            let mut m = seed.clone();
            for _ in 0..1 + rng.below(4) {
                let pos = rng.below(m.len() + 1);
                match rng.below(4) {
                    0 if pos < m.len() => m[pos] = specials[rng.below(specials.len())],
                    1 if pos < m.len() => {
                        m.remove(pos);
                    }
                    2 => m.insert(pos, specials[rng.below(specials.len())]),
                    _ => {
                        let end = (pos + rng.below(20)).min(m.len());
                        let chunk = m[pos..end].to_vec();
                        m.splice(pos..pos, chunk);
                    }
                }
            }
            let _ = parse_command(&m);
            let mut rx = Receiver::new(ReceiverLimits {
                literal_plus: round.is_multiple_of(2),
                ..limits
            });
            let mut buf = Vec::new();
            let mut fed = 0;
            let mut continues = 0;
            while fed < m.len() {
                let n = 1 + rng.below(16);
                let end = (fed + n).min(m.len());
                buf.extend_from_slice(&m[fed..end]);
                fed = end;
                let headers = |b: &[u8]| b.windows(3).filter(|w| *w == b"}\r\n").count();
                loop {
                    match rx.poll(&buf) {
                        Framed::Incomplete => break,
                        Framed::Continue { .. } => {
                            continues += 1;
                            assert!(
                                continues <= headers(&buf),
                                "continuation without a literal header in {m:?}"
                            );
                        }
                        Framed::Command { consumed, .. }
                        | Framed::Error { consumed, .. }
                        | Framed::Skip { consumed } => {
                            assert!(
                                consumed > 0 && consumed <= buf.len(),
                                "bad consumed for {m:?}"
                            );
                            assert!(
                                continues <= headers(&buf[..consumed]),
                                "extra continuation in {m:?}"
                            );
                            buf.drain(..consumed);
                            continues = 0;
                        }
                        Framed::Stream { .. }
                        | Framed::LiteralData { .. }
                        | Framed::StreamEnd { .. } => {
                            panic!("only a streaming receiver streams literals")
                        }
                    }
                }
            }
        }
    }
}
