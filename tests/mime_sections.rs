//! FETCH section resolution for every section form, partial fetches in
//! virtual space, streaming conversion split at every byte, and LF vs CRLF
//! storage giving identical answers.

use std::path::Path;

use mailcove::mime::{
    LfToCrlf, MessageInfo, SectionPlan, SectionSpec, SectionText, partial_window, virtual_len,
    write_body, write_envelope,
};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mime")
            .join(name),
    )
    .expect("fixture")
}

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

fn get(info: &MessageInfo, raw: &[u8], path: &[u32], text: SectionText<'_>) -> Vec<u8> {
    let spec = SectionSpec { path, text };
    let bytes = info.section_bytes(raw, &spec);
    // The announced virtual length must be exactly what streaming produces.
    if let SectionPlan::Range {
        range,
        virtual_len: vlen,
    } = info.resolve_section(&spec)
    {
        assert_eq!(vlen, bytes.len() as u64, "virtual length of {path:?}");
        assert_eq!(vlen, virtual_len(range.slice(raw)));
    }
    bytes
}

#[test]
fn every_section_form_on_dovecot_message() {
    let raw = fixture("dovecot_testmsg.eml");
    let info = MessageInfo::parse(&raw);
    let text = String::from_utf8(raw.clone()).expect("utf8");

    assert_eq!(get(&info, &raw, &[], SectionText::Full), crlf(&text));
    let (hdr, body) = text.split_once("\n\n").expect("header");
    assert_eq!(
        get(&info, &raw, &[], SectionText::Header),
        crlf(&format!("{hdr}\n\n"))
    );
    assert_eq!(get(&info, &raw, &[], SectionText::Text), crlf(body));
    assert_eq!(
        get(
            &info,
            &raw,
            &[],
            SectionText::HeaderFields(&[b"date", b"FROM"])
        ),
        crlf("From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\n\n")
    );
    assert_eq!(
        get(
            &info,
            &raw,
            &[],
            SectionText::HeaderFieldsNot(&[b"content-type", b"mime-version"])
        ),
        crlf("From: user@domain.org\nDate: Sat, 24 Mar 2007 23:00:00 +0200\n\n")
    );
    // MIME needs a part number.
    assert_eq!(
        info.resolve_section(&SectionSpec {
            path: &[],
            text: SectionText::Mime
        }),
        SectionPlan::Empty
    );

    assert_eq!(get(&info, &raw, &[1], SectionText::Full), b"hello\r\n");
    let mime1 = get(&info, &raw, &[1], SectionText::Mime);
    assert!(mime1.starts_with(b"Content-Type: text/x-myown; charset=us-ascii;"));
    assert!(mime1.ends_with(b"Content-Location: http://example.com/test.txt\r\n\r\n"));
    // HEADER/TEXT of a part that is not message/rfc822: empty, as Dovecot.
    assert_eq!(
        info.resolve_section(&SectionSpec {
            path: &[1],
            text: SectionText::Header
        }),
        SectionPlan::Empty
    );
    assert_eq!(
        info.resolve_section(&SectionSpec {
            path: &[1],
            text: SectionText::Text
        }),
        SectionPlan::Empty
    );

    let sub_start = text.find("From: sub@domain.org").expect("sub");
    let sub_end = text.find("\n--foo bar--").expect("end");
    let sub = &text[sub_start..sub_end];
    assert_eq!(get(&info, &raw, &[2], SectionText::Full), crlf(sub));
    let (sub_hdr, sub_body) = sub.split_once("\n\n").expect("sub header");
    assert_eq!(
        get(&info, &raw, &[2], SectionText::Header),
        crlf(&format!("{sub_hdr}\n\n"))
    );
    assert_eq!(get(&info, &raw, &[2], SectionText::Text), crlf(sub_body));
    assert_eq!(
        get(
            &info,
            &raw,
            &[2],
            SectionText::HeaderFields(&[b"Subject", b"To"])
        ),
        crlf("To: sub-to1@domain.org, sub-to2@domain.org\nSubject: submsg\n\n")
    );
    assert_eq!(
        get(&info, &raw, &[2], SectionText::Mime),
        crlf("Content-Type: message/rfc822\n\n")
    );
    // More numbers after a message/rfc822 part go inside its (multipart) message.
    assert_eq!(
        get(&info, &raw, &[2, 1], SectionText::Full),
        crlf("<p>Hello world</p>\n")
    );
    assert_eq!(
        get(&info, &raw, &[2, 2], SectionText::Full),
        crlf("Hello another world\n")
    );
    assert_eq!(
        get(&info, &raw, &[2, 1], SectionText::Mime),
        crlf("Content-Type: text/html\nContent-Transfer-Encoding: 8bit\n\n")
    );

    // Dovecot's imap_msgpart_find: a final "1" on a single part names the
    // part itself, but nothing can be descended below it.
    for missing in [
        &[3u32][..],
        &[0],
        &[2, 3],
        &[2, 1, 2],
        &[1, 2],
        &[1, 1, 1],
        &[2, 1, 1, 1],
    ] {
        assert_eq!(
            info.resolve_section(&SectionSpec {
                path: missing,
                text: SectionText::Full
            }),
            SectionPlan::Empty,
            "{missing:?}"
        );
    }
    assert_eq!(get(&info, &raw, &[1, 1], SectionText::Full), b"hello\r\n");
    assert_eq!(
        get(&info, &raw, &[2, 1, 1], SectionText::Full),
        crlf("<p>Hello world</p>\n")
    );
}

#[test]
fn single_part_and_message_rfc822_numbering() {
    let raw = b"Subject: s\nContent-Type: text/plain\n\nbody\n".to_vec();
    let info = MessageInfo::parse(&raw);
    assert_eq!(get(&info, &raw, &[1], SectionText::Full), b"body\r\n");
    assert_eq!(
        get(&info, &raw, &[1], SectionText::Mime),
        b"Subject: s\r\nContent-Type: text/plain\r\n\r\n"
    );
    assert_eq!(
        info.resolve_section(&SectionSpec {
            path: &[2],
            text: SectionText::Full
        }),
        SectionPlan::Empty
    );

    // A message whose own type is message/rfc822: part 1 is the whole inner
    // message, 1.1 the inner message's body.
    let raw = b"MIME-Version: 1.0\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner body\n"
        .to_vec();
    let info = MessageInfo::parse(&raw);
    assert_eq!(
        get(&info, &raw, &[1], SectionText::Full),
        b"Subject: inner\r\n\r\ninner body\r\n"
    );
    assert_eq!(
        get(&info, &raw, &[1], SectionText::Header),
        b"Subject: inner\r\n\r\n"
    );
    assert_eq!(
        get(&info, &raw, &[1, 1], SectionText::Full),
        b"inner body\r\n"
    );
}

#[test]
fn header_cut_short_by_a_boundary() {
    let raw = fixture("header_cut_by_boundary.eml");
    let info = MessageInfo::parse(&raw);
    // The LF before "--x" belongs to the boundary, so the MIME header of
    // part 1 has no line end and its body is empty.
    assert_eq!(
        get(&info, &raw, &[1], SectionText::Mime),
        b"Content-Type: text/plain"
    );
    assert_eq!(get(&info, &raw, &[1], SectionText::Full), b"");
    assert_eq!(get(&info, &raw, &[2], SectionText::Full), b"h");
}

#[test]
fn partial_fetch_in_virtual_space() {
    let raw = fixture("dovecot_testmsg.eml");
    let info = MessageInfo::parse(&raw);
    let whole = crlf(&String::from_utf8(raw.clone()).expect("utf8"));
    let SectionPlan::Range { range, virtual_len } = info.resolve_section(&SectionSpec {
        path: &[],
        text: SectionText::Full,
    }) else {
        panic!("whole message must be a range");
    };
    assert_eq!(virtual_len, whole.len() as u64);
    assert_eq!(info.virtual_size(), whole.len() as u64);
    for (origin, count) in [
        (0u64, 10u64),
        (5, 100),
        (18, 3),
        (virtual_len - 4, 100),
        (virtual_len, 5),
        (9999, 1),
    ] {
        let (start, len) = partial_window(virtual_len, origin, count);
        let mut conv = LfToCrlf::with_window(start, len);
        let mut out = Vec::new();
        for chunk in range.slice(&raw).chunks(7) {
            conv.feed(chunk, &mut out);
            if conv.is_done() {
                break;
            }
        }
        let s = (origin as usize).min(whole.len());
        let e = (s + count as usize).min(whole.len());
        assert_eq!(out, whole[s..e].to_vec(), "<{origin}.{count}>");
    }
}

#[test]
fn streaming_split_at_every_byte() {
    let raw = fixture("preamble_epilogue.eml");
    let mut mixed = raw.clone();
    mixed.extend_from_slice(b"bare\nlf\r\nmix\r");
    let mut expected = Vec::new();
    LfToCrlf::new().feed(&mixed, &mut expected);
    assert_eq!(expected.len() as u64, virtual_len(&mixed));
    for at in 0..=mixed.len() {
        let mut conv = LfToCrlf::new();
        let mut out = Vec::new();
        conv.feed(&mixed[..at], &mut out);
        conv.feed(&mixed[at..], &mut out);
        assert_eq!(out, expected, "split at {at}");
    }
    // One byte at a time, too.
    let mut conv = LfToCrlf::new();
    let mut out = Vec::new();
    for b in &mixed {
        conv.feed(std::slice::from_ref(b), &mut out);
    }
    assert_eq!(out, expected);
}

#[test]
fn lf_and_crlf_storage_answer_the_same() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime");
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("dir") {
        let p = e.expect("entry").path();
        if p.extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let raw = std::fs::read(&p).expect("read");
        if raw.windows(2).any(|w| w == b"\r\n") {
            continue;
        }
        n += 1;
        let crlf_raw: Vec<u8> = {
            let mut v = Vec::new();
            LfToCrlf::new().feed(&raw, &mut v);
            v
        };
        let a = MessageInfo::parse(&raw);
        let b = MessageInfo::parse(&crlf_raw);
        assert_eq!(a.parts.len(), b.parts.len(), "{}", p.display());
        for (pa, pb) in a.parts.iter().zip(&b.parts) {
            assert_eq!(pa.header_size, pb.header_size, "{}", p.display());
            assert_eq!(pa.body_size, pb.body_size, "{}", p.display());
            assert_eq!(pa.kind, pb.kind);
        }
        for ext in [false, true] {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            write_body(&mut x, &a, ext);
            write_body(&mut y, &b, ext);
            assert_eq!(x, y, "{}", p.display());
        }
        let (mut x, mut y) = (Vec::new(), Vec::new());
        write_envelope(&mut x, a.envelope());
        write_envelope(&mut y, b.envelope());
        assert_eq!(x, y);
        let spec = SectionSpec {
            path: &[],
            text: SectionText::Full,
        };
        assert_eq!(
            a.section_bytes(&raw, &spec),
            b.section_bytes(&crlf_raw, &spec)
        );
        assert_eq!(a.section_bytes(&raw, &spec), crlf_raw);
    }
    assert!(n >= 10, "only {n} LF fixtures");
}
