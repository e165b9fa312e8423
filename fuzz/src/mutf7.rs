//! Modified UTF-7 (`mailcove::mutf7`): decoding arbitrary bytes and the
//! encode/decode round trip.
//!
//! Invariants: decoding is strict, so every accepted input is *the* encoding
//! of its result (`encode(decode(x)) == x`); every string encodes to bytes
//! that decode back to it; encoded output is printable ASCII.

use mailcove::mutf7;

/// Checks one input; panics on a violated invariant.
pub fn run(data: &[u8]) {
    let decoded = mutf7::decode(data);
    assert_eq!(mutf7::is_valid(data), decoded.is_ok());
    if let Ok(s) = &decoded {
        // Uniqueness: two byte strings must never name the same mailbox.
        assert_eq!(
            mutf7::encode(s).as_bytes(),
            data,
            "non-canonical input accepted"
        );
    }
    // Round trip of valid Unicode: the input read as (lossy) UTF-8.
    let text = String::from_utf8_lossy(data);
    let encoded = mutf7::encode(&text);
    assert!(encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    // Each char takes at most 2 UTF-16 units = 32 bits = 6 BASE64 digits,
    // plus `&` and `-` around a run.
    assert!(encoded.len() <= text.chars().count() * 8 + 2);
    assert_eq!(mutf7::decode(encoded.as_bytes()).as_deref(), Ok(&*text));
}
