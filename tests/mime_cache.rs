//! The cache blob: round trip, and refusal (never a panic) of damaged blobs.

use std::path::Path;

use mailcove::mime::{MessageInfo, write_body, write_envelope};

fn sample() -> (Vec<u8>, MessageInfo) {
    let raw = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime/dovecot_testmsg.eml"),
    )
    .expect("fixture");
    let info = MessageInfo::parse(&raw);
    (raw, info)
}

fn render(info: &MessageInfo) -> Vec<u8> {
    let mut out = Vec::new();
    write_envelope(&mut out, info.envelope());
    write_body(&mut out, info, true);
    out
}

#[test]
fn round_trip_keeps_every_answer() {
    let (_, info) = sample();
    let blob = info.to_cache_bytes();
    assert!(blob.starts_with(b"MCMI\x01"));
    let back = MessageInfo::from_cache_bytes(&blob).expect("valid blob");
    assert_eq!(back, info);
    assert_eq!(render(&back), render(&info));
    assert_eq!(back.to_cache_bytes(), blob);
}

#[test]
fn damaged_blobs_are_refused_or_still_well_formed() {
    let (_, info) = sample();
    let blob = info.to_cache_bytes();
    for n in 0..blob.len() {
        assert!(
            MessageInfo::from_cache_bytes(&blob[..n]).is_none(),
            "truncated at {n}"
        );
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert!(MessageInfo::from_cache_bytes(&longer).is_none());
    let mut other_version = blob.clone();
    other_version[4] = 2;
    assert!(MessageInfo::from_cache_bytes(&other_version).is_none());
    // Every single-byte corruption: refused, or decoded into a structure the
    // writers handle without panicking.
    for i in 5..blob.len() {
        for x in [0x01u8, 0x80, 0xff] {
            let mut b = blob.clone();
            b[i] ^= x;
            if let Some(m) = MessageInfo::from_cache_bytes(&b) {
                let out = render(&m);
                assert!(!out.is_empty());
            }
        }
    }
}

#[test]
fn forward_parent_pointer_is_refused() {
    // The root claims part 1 (stored as 2) as its parent.
    let (_, info) = sample();
    let blob = info.to_cache_bytes();
    // Byte 5 is the part count (8 parts fit in one LEB128 byte), byte 6 the
    // root's parent field, 0 = none.
    assert_eq!(blob[6], 0);
    let mut b = blob.clone();
    b[6] = 2;
    assert!(MessageInfo::from_cache_bytes(&b).is_none());
}

/// Found by the `mime_cache` fuzz target: a blob whose header range ends after
/// its body starts decoded fine, and `BODY[]` then resolved to an inverted
/// range (start after end) whose announced size could never be sent.
#[test]
fn header_after_body_is_refused() {
    let (_, mut info) = sample();
    let root = &mut info.parts[0];
    root.header.end = root.body.start + 1;
    root.body.end = root.body.end.max(root.body.start + 1);
    assert!(MessageInfo::from_cache_bytes(&info.to_cache_bytes()).is_none());
    // The whole message: header from 5, body ending at 3.
    let (_, mut info) = sample();
    let root = &mut info.parts[0];
    root.header = mailcove::mime::ByteRange { start: 5, end: 5 };
    root.body = mailcove::mime::ByteRange { start: 3, end: 3 };
    assert!(MessageInfo::from_cache_bytes(&info.to_cache_bytes()).is_none());
}

/// Found by the `mime_cache` fuzz target: header and body sizes whose sum
/// overflows a u64 were accepted, and RFC822.SIZE or `BODY[]` then overflowed
/// (a panic in debug builds, a wrapped size in release builds).
#[test]
fn sizes_whose_sum_overflows_are_refused() {
    let (_, mut info) = sample();
    info.parts[0].header_size.virtual_len = u64::MAX - 3;
    assert!(MessageInfo::from_cache_bytes(&info.to_cache_bytes()).is_none());
    // Built by hand, the structure still answers: saturated, not wrapped.
    assert_eq!(info.virtual_size(), u64::MAX);
    let spec = mailcove::mime::SectionSpec {
        path: &[],
        text: mailcove::mime::SectionText::Full,
    };
    match info.resolve_section(&spec) {
        mailcove::mime::SectionPlan::Range { virtual_len, .. } => {
            assert_eq!(virtual_len, u64::MAX)
        }
        other => panic!("BODY[] resolved to {other:?}"),
    }
}
