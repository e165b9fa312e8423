//! FETCH BINARY's decoders (`mailcove::mime::decode`) and section plans
//! (`mailcove::mime::MessageInfo::binary_segments`).
//!
//! Input layout: byte 0 picks the mode (low two bits: base64, quoted-printable, identity, or a
//! whole message) and seeds the chunk sizes; the rest is the encoded body (or the message).
//!
//! Invariants, decoders: the result (data or error kind) does not depend on how the input is
//! split into chunks; decoded base64 is at most 3/4 of the input and quoted-printable at most
//! twice it (a bare LF becomes CRLF); what was decoded, encoded again canonically, decodes back
//! to the same octets. Section plans: segments lie inside the message, in order, without
//! overlap, and a part number path that the message does not have gives no plan.

use mailcove::mime::decode::{Cte, DecodeError, Decoder, decode_all};
use mailcove::mime::{BinarySegment, MessageInfo};

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn kind(r: &Result<Vec<u8>, DecodeError>) -> Result<&[u8], std::mem::Discriminant<DecodeError>> {
    match r {
        Ok(v) => Ok(v.as_slice()),
        Err(e) => Err(std::mem::discriminant(e)),
    }
}

/// Decodes in chunks whose sizes come from `seed`.
fn chunked(cte: Cte, input: &[u8], seed: u8) -> Result<Vec<u8>, DecodeError> {
    let mut rng = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    let mut d = Decoder::new(cte);
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        let n = (rng % 97) as usize + 1;
        let (a, b) = rest.split_at(n.min(rest.len()));
        d.feed(a, &mut out)?;
        rest = b;
    }
    d.finish(&mut out)?;
    Ok(out)
}

fn base64_encode(data: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    for (i, q) in data.chunks(3).enumerate() {
        let v = (u32::from(q[0]) << 16)
            | (u32::from(*q.get(1).unwrap_or(&0)) << 8)
            | u32::from(*q.get(2).unwrap_or(&0));
        for k in 0..4 {
            o.push(if k <= q.len() {
                B64[((v >> (18 - 6 * k)) & 63) as usize]
            } else {
                b'='
            });
        }
        if i % 19 == 18 {
            o.extend_from_slice(b"\r\n");
        }
    }
    o
}

/// Every octet but printable ASCII other than `=` as `=XX`, soft breaks every 60 characters:
/// no hard line breaks, so decoding gives the octets back exactly.
fn qp_encode(data: &[u8]) -> Vec<u8> {
    const HEX: &[u8] = b"0123456789ABCDEF";
    let mut o = Vec::new();
    let mut line = 0;
    for &b in data {
        if line >= 60 {
            o.extend_from_slice(b"=\r\n");
            line = 0;
        }
        if (33..=126).contains(&b) && b != b'=' {
            o.push(b);
            line += 1;
        } else {
            o.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            line += 3;
        }
    }
    o
}

pub fn run(data: &[u8]) {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let cte = match mode & 3 {
        0 => Cte::Base64,
        1 => Cte::QuotedPrintable,
        2 => Cte::Identity,
        _ => return segments(input, mode),
    };
    let whole = decode_all(cte, input);
    let split = chunked(cte, input, mode);
    assert_eq!(kind(&whole), kind(&split), "chunking changed the result");
    let Ok(out) = whole else {
        return;
    };
    match cte {
        Cte::Base64 => {
            assert!(out.len() <= input.len() / 4 * 3, "base64 grew");
            assert_eq!(
                decode_all(Cte::Base64, &base64_encode(&out)).ok(),
                Some(out)
            );
        }
        Cte::QuotedPrintable => {
            assert!(
                out.len() <= 2 * input.len(),
                "quoted-printable grew too much"
            );
            assert_eq!(
                decode_all(Cte::QuotedPrintable, &qp_encode(&out)).ok(),
                Some(out)
            );
        }
        Cte::Identity => {
            assert!(out.len() <= 2 * input.len());
            assert_eq!(out.len() as u64, mailcove::mime::virtual_len(input));
        }
    }
}

fn segments(raw: &[u8], mode: u8) {
    let info = MessageInfo::parse(raw);
    let len = raw.len() as u64;
    let mut paths: Vec<Vec<u32>> = vec![Vec::new(), vec![1], vec![2], vec![1, 1], vec![2, 1]];
    paths.push(vec![u32::from(mode >> 2) + 1]);
    for path in &paths {
        let Ok(plan) = info.binary_segments(path) else {
            continue;
        };
        if info.find_part(path).is_none() {
            assert!(plan.is_none(), "a missing part has a plan");
        }
        let Some(plan) = plan else { continue };
        let mut at = 0u64;
        for seg in plan {
            let r = match seg {
                BinarySegment::Data(r, _) | BinarySegment::Header(r) => r,
            };
            assert!(
                r.start >= at && r.start < r.end && r.end <= len,
                "{path:?}: {r:?}"
            );
            at = r.end;
        }
    }
}
