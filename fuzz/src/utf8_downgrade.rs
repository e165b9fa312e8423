//! The 7-bit ENVELOPE / BODY / BODYSTRUCTURE sent to clients without UTF8=ACCEPT
//! (`mailcove::imap::fetch::downgrade`, RFC 6855 8).
//!
//! Input: taken twice, as the cached text of an item (any bytes: the cache may be damaged) and
//! as a raw stored message whose ENVELOPE and BODYSTRUCTURE our writer produces.
//!
//! Invariants: the output is always 7-bit and nothing before the item is touched; a 7-bit item
//! is left byte for byte; the downgrade of our own writer's items is again one well-formed IMAP
//! list.

use mailcove::imap::fetch::downgrade::{Kind, in_place};
use mailcove::mime::{MessageInfo, write_body, write_envelope};

use crate::wire::check_list;

const PREFIX: &[u8] = b"* 1 FETCH (ENVELOPE ";

/// Downgrades `item` behind a fixed prefix and checks the invariants every input must keep.
fn downgraded(item: &[u8], kind: Kind) -> Vec<u8> {
    let mut out = PREFIX.to_vec();
    out.extend_from_slice(item);
    in_place(&mut out, PREFIX.len(), kind);
    assert_eq!(out.get(..PREFIX.len()), Some(PREFIX), "prefix changed");
    let got = out.split_off(PREFIX.len());
    assert!(
        got.is_ascii(),
        "8-bit left: {:?}",
        String::from_utf8_lossy(&got)
    );
    if item.is_ascii() {
        assert_eq!(got, item, "7-bit item changed");
    }
    got
}

/// Checks one input; panics on a violated invariant.
pub fn run(data: &[u8]) {
    downgraded(data, Kind::Envelope);
    downgraded(data, Kind::Body);
    let info = MessageInfo::parse(data);
    let mut env = Vec::new();
    write_envelope(&mut env, info.envelope());
    check_list(&downgraded(&env, Kind::Envelope));
    let mut body = Vec::new();
    write_body(&mut body, &info, true);
    check_list(&downgraded(&body, Kind::Body));
}
