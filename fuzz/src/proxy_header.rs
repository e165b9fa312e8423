//! PROXY protocol headers (`mailcove::server::proxy::parse`), v1 text and v2 binary.
//!
//! Invariants: never a panic; a complete header's length is within the input and the spec's
//! bounds (107 bytes for v1, 16 + `PROXY_V2_MAX_PAYLOAD` for v2) and parses the same on its
//! own; every shorter prefix of it asks for more bytes without asking past the header's end (so
//! the reader never consumes a byte of what follows); a request for more never comes once the
//! input is longer than the largest header allowed.

use mailcove::limits::{PROXY_V1_MAX_BYTES, PROXY_V2_MAX_PAYLOAD};
use mailcove::server::proxy::{Parsed, parse};

pub fn run(data: &[u8]) {
    match parse(data) {
        Ok(Parsed::Done(h, n)) => {
            assert!(n <= data.len(), "header longer than the input");
            match h.version {
                1 => {
                    assert!(n <= PROXY_V1_MAX_BYTES, "v1 header of {n} bytes");
                    assert!(!h.client_tls, "v1 cannot carry TLVs");
                }
                2 => assert!(n <= 16 + PROXY_V2_MAX_PAYLOAD, "v2 header of {n} bytes"),
                v => panic!("version {v}"),
            }
            assert_eq!(
                parse(&data[..n]).ok(),
                Some(Parsed::Done(h, n)),
                "the header alone parses differently"
            );
            for k in 0..n {
                match parse(&data[..k]) {
                    Ok(Parsed::Need(m)) => {
                        assert!(m >= 1 && k + m <= n, "prefix {k} asks for {m} of {n}")
                    }
                    other => panic!("prefix {k} of a {n}-byte header: {other:?}"),
                }
            }
        }
        Ok(Parsed::Need(m)) => {
            assert!(m >= 1, "asked for nothing");
            assert!(
                data.len() < 16 + PROXY_V2_MAX_PAYLOAD,
                "still incomplete after {} bytes",
                data.len()
            );
        }
        Err(_) => {}
    }
}
