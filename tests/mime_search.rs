//! SEARCH helpers: decoded headers, decoded body text of text parts only,
//! case-insensitive matching, the Date: header, and the text cap.

use std::path::Path;

use mailcove::limits::MAX_SEARCH_TEXT_BYTES;
use mailcove::mime::{MessageInfo, SentDate, contains_folded};

const MULTI: &str = "From: =?UTF-8?Q?J=C3=B6rg?= <j@example.de>
To: a@example.com, =?ISO-8859-1?Q?Andr=E9?= <andre@example.fr>
Subject: =?UTF-8?B?SGVsbG8gV8O2cmxk?=
Date: Fri, 5 Jan 2024 23:59:00 -0800
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=sep

--sep
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

w4RwZmVsIHVuZCBCaXJuZW4K
--sep
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

caf=E9 cr=E8me soft=
break
--sep
Content-Type: text/html

<p>Visible <b>bold</b></p>
--sep
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

U0VDUkVUIGJpbmFyeQ==
--sep--
";

#[test]
fn headers_are_decoded() {
    let raw = MULTI.as_bytes();
    let info = MessageInfo::parse(raw);
    assert_eq!(
        info.header_values(raw, b"subject"),
        vec!["Hello Wörld".to_string()]
    );
    let to = info.header_values(raw, b"TO");
    assert_eq!(to.len(), 1);
    assert!(contains_folded(&to[0], "ANDRÉ"), "{to:?}");
    assert!(contains_folded(
        &info.header_values(raw, b"from")[0],
        "jörg"
    ));
    assert!(info.header_values(raw, b"cc").is_empty());
    let all = info.header_text(raw);
    assert!(all.contains("Subject: Hello Wörld\n"));
    // Body text is not header text.
    assert!(!all.contains("Äpfel"));
}

#[test]
fn body_text_decodes_text_parts_only() {
    let raw = MULTI.as_bytes();
    let info = MessageInfo::parse(raw);
    let body = info.body_text(raw);
    assert!(body.contains("Äpfel und Birnen"), "{body}");
    assert!(body.contains("café crème softbreak"), "{body}");
    assert!(
        body.contains("Visible") && body.contains("bold") && !body.contains("<b>"),
        "{body}"
    );
    assert!(!body.contains("SECRET"), "attachments are not text: {body}");
    assert!(contains_folded(&body, "äPFEL"));
    assert!(!contains_folded(&body, "Hello"), "headers are not body");
}

#[test]
fn sent_date_is_the_written_date() {
    let info = MessageInfo::parse(MULTI.as_bytes());
    // 23:59 at -0800 is already the next day in UTC; RFC 3501 disregards
    // time and zone for SENT*.
    assert_eq!(
        info.sent_date(),
        Some(SentDate {
            year: 2024,
            month: 1,
            day: 5
        })
    );
    assert_eq!(
        MessageInfo::parse(b"Subject: x\n\nno date\n").sent_date(),
        None
    );
    assert_eq!(MessageInfo::parse(b"Date: garbage\n\n").sent_date(), None);
}

#[test]
fn eight_bit_and_fixture_headers() {
    let raw = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime/eightbit_headers.eml"),
    )
    .expect("fixture");
    let info = MessageInfo::parse(&raw);
    assert_eq!(
        info.header_values(&raw, b"Subject"),
        vec!["Grüße".to_string()]
    );
    assert!(info.body_text(&raw).contains("Grüße"));
}

#[test]
fn decoded_text_is_capped() {
    let mut m = String::from("Content-Type: text/plain\n\n");
    let line = "abcdefghijklmnopqrstuvwxyz0123456789\n";
    while m.len() < MAX_SEARCH_TEXT_BYTES + 1024 * 1024 {
        m.push_str(line);
    }
    m.push_str("NEEDLE-AT-THE-END\n");
    let info = MessageInfo::parse(m.as_bytes());
    let body = info.body_text(m.as_bytes());
    assert!(body.len() <= MAX_SEARCH_TEXT_BYTES);
    assert!(!body.contains("NEEDLE-AT-THE-END"));
    assert!(body.starts_with(line));
}
