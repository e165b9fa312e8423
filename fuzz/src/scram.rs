//! SCRAM server messages (`mailcove::auth::scram::ScramServer`): a client-first and a
//! client-final message against fake keys.
//!
//! Input layout: byte 0 picks the hash (bit 0), the -PLUS mechanism (bit 1) and whether the
//! connection has a channel binding (bit 2); the rest is the client-first message, a `\n`, and
//! the client-final message (raw, not base64).
//!
//! Invariants: no panic; an accepted client-first names a non-empty user within the limit and
//! an authzid equal to it; server-first repeats the client's nonce and gives the keys' salt and
//! count; no final message proves knowledge of fake keys; the exchange then answers
//! `OutOfOrder`.

use mailcove::auth::scram::{ScramError, ScramHash, ScramKeys, ScramServer};
use mailcove::limits::MAX_SASL_FIELD;

/// Checks one input; panics on a violated invariant.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let hash = if mode & 1 == 0 {
        ScramHash::Sha1
    } else {
        ScramHash::Sha256
    };
    let binding = (mode & 4 != 0).then_some([0x5a; 32]);
    let Ok(mut server) = ScramServer::new(hash, mode & 2 != 0, binding) else {
        assert!(mode & 2 != 0 && binding.is_none());
        return;
    };
    let (first, fin) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let client = match server.client_first(first) {
        Ok(c) => c,
        Err(_) => {
            assert_eq!(server.client_final(fin), Err(ScramError::OutOfOrder));
            return;
        }
    };
    assert!(!client.user.is_empty() && client.user.len() <= MAX_SASL_FIELD);
    if let Some(a) = &client.authzid {
        assert!(a.eq_ignore_ascii_case(&client.user));
    }
    let keys = ScramKeys::fake(hash, b"fuzz secret", &client.user);
    let sf = String::from_utf8(server.server_first(keys.clone()).unwrap()).unwrap();
    let text = std::str::from_utf8(first).unwrap();
    let cnonce = text.split(',').find_map(|a| a.strip_prefix("r=")).unwrap();
    assert!(sf.starts_with(&format!("r={cnonce}")), "{sf}");
    assert!(sf.ends_with(&format!(",i={}", keys.iterations)), "{sf}");
    assert!(server.client_final(fin).is_err());
    assert_eq!(server.client_final(fin), Err(ScramError::OutOfOrder));
}
