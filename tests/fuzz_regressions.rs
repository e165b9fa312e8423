//! Replays the fuzz seed corpora (`fuzz/corpus/<target>/`) and every saved
//! crash input (`fuzz/regressions/<target>/`) through the fuzz targets'
//! invariant checks, so a crash once found stays fixed without a fuzzing
//! toolchain. The checks are the very files the libFuzzer binaries run
//! (`fuzz/src/*.rs`), included here as modules.

#[path = "../fuzz/src/imap_command.rs"]
mod imap_command;
#[path = "../fuzz/src/imap_url.rs"]
mod imap_url;
#[path = "../fuzz/src/lmtp_command.rs"]
mod lmtp_command;
#[path = "../fuzz/src/mime_cache.rs"]
mod mime_cache;
#[path = "../fuzz/src/mime_decode.rs"]
mod mime_decode;
#[path = "../fuzz/src/mime_structure.rs"]
mod mime_structure;
#[path = "../fuzz/src/mutf7.rs"]
mod mutf7;
#[path = "../fuzz/src/pop3_command.rs"]
mod pop3_command;
#[path = "../fuzz/src/proxy_header.rs"]
mod proxy_header;
#[path = "../fuzz/src/sasl.rs"]
mod sasl;
#[path = "../fuzz/src/sequence_date.rs"]
mod sequence_date;
#[path = "../fuzz/src/sieve_parse.rs"]
mod sieve_parse;
#[path = "../fuzz/src/utf8_downgrade.rs"]
mod utf8_downgrade;
#[path = "../fuzz/src/wire.rs"]
mod wire;

use std::path::{Path, PathBuf};

/// Files of `fuzz/<kind>/<target>/`, sorted; none when the directory is missing.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Runs `check` on every corpus seed and saved crash of `target`; returns how
/// many inputs were replayed. A panic names the input file.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        for path in inputs(kind, target) {
            let data = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let result = std::panic::catch_unwind(|| check(&data));
            assert!(result.is_ok(), "{target}: input {} fails", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn imap_command_inputs() {
    assert!(replay("imap_command", imap_command::run) > 100);
}

#[test]
fn imap_url_inputs() {
    assert!(replay("imap_url", imap_url::run) > 10);
}

#[test]
fn pop3_command_inputs() {
    assert!(replay("pop3_command", pop3_command::run) > 10);
}

#[test]
fn lmtp_command_inputs() {
    assert!(replay("lmtp_command", lmtp_command::run) > 10);
}

#[test]
fn proxy_header_inputs() {
    assert!(replay("proxy_header", proxy_header::run) > 10);
}

#[test]
fn sieve_parse_inputs() {
    assert!(replay("sieve_parse", sieve_parse::run) > 10);
}

#[test]
fn sasl_inputs() {
    assert!(replay("sasl", sasl::run) > 5);
}

#[test]
fn sequence_date_inputs() {
    assert!(replay("sequence_date", sequence_date::run) > 10);
}

#[test]
fn utf8_downgrade_inputs() {
    assert!(replay("utf8_downgrade", utf8_downgrade::run) > 5);
}

#[test]
fn mutf7_inputs() {
    assert!(replay("mutf7", mutf7::run) > 5);
}

#[test]
fn mime_structure_inputs() {
    assert!(replay("mime_structure", mime_structure::run) > 10);
}

#[test]
fn mime_cache_inputs() {
    assert!(replay("mime_cache", mime_cache::run) > 10);
}

#[test]
fn mime_decode_inputs() {
    assert!(replay("mime_decode", mime_decode::run) > 10);
}

/// The checker itself must reject what it is there to catch, or the
/// structure targets would prove nothing.
#[test]
fn wire_checker_rejects_malformed_lists() {
    for bad in [
        &b"(\"a\" NIL"[..],
        b"(\"a\nb\")",
        b"(NIL))",
        b"({5}\r\nab)",
        b"NIL",
        b"(\"a\\x\")",
    ] {
        let caught = std::panic::catch_unwind(|| wire::check_list(bad));
        assert!(
            caught.is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(bad)
        );
    }
    wire::check_list(b"(\"a\\\"b\" NIL ({3}\r\n(\"x) 12)");
}

/// The finding kept in `fuzz/regressions/mime_structure/envelope-tiny-broken-addresses`: a
/// From header of tiny broken addresses, each a full ENVELOPE entry, written three times. The
/// entry count per header is capped, so even a header of nothing but `a,` costs a bounded
/// ENVELOPE, within the target's bound.
#[test]
fn tiny_broken_addresses_cost_a_bounded_envelope() {
    use mailcove::limits::MAX_ENVELOPE_ADDRESSES;
    use mailcove::mime::{MessageInfo, write_envelope};
    let mut raw = b"From: ".to_vec();
    raw.extend(b"a,".repeat(20 * MAX_ENVELOPE_ADDRESSES));
    raw.extend_from_slice(b"\r\nTo: ");
    raw.extend(b"<b@\xd6\",".repeat(20 * MAX_ENVELOPE_ADDRESSES));
    raw.extend_from_slice(b"\r\n\r\nbody\r\n");
    let info = MessageInfo::parse(&raw);
    let env = info.envelope();
    assert_eq!(env.from.len(), MAX_ENVELOPE_ADDRESSES);
    assert_eq!(env.to.len(), MAX_ENVELOPE_ADDRESSES);
    let mut out = Vec::new();
    write_envelope(&mut out, env);
    // Three copies of From (Sender and Reply-To default to it) and one of To: 4,000 entries
    // of about 30 bytes, not 160,000.
    assert!(out.len() < 4 * MAX_ENVELOPE_ADDRESSES * 40, "{}", out.len());
    assert!(out.len() <= mime_structure::envelope_budget(&info, raw.len()));
    mime_structure::run(&raw);
}

/// The same amplification one level down: BODYSTRUCTURE writes the envelope of a message/rfc822
/// part, so the BODY bound also counts each nested envelope's budget. This input is over the
/// bound the target had before (4 bytes per input byte and 512 per part).
#[test]
fn tiny_broken_addresses_in_a_nested_message_are_within_the_body_bound() {
    use mailcove::mime::{MessageInfo, write_body};
    let mut raw = b"Content-Type: message/rfc822\r\n\r\nFrom: ".to_vec();
    raw.extend(b"a,".repeat(400));
    raw.extend_from_slice(b"\r\nSubject: inner\r\n\r\nbody\r\n");
    let info = MessageInfo::parse(&raw);
    let mut out = Vec::new();
    write_body(&mut out, &info, true);
    assert!(
        out.len() > 4 * raw.len() + 512 * info.parts.len() + 1024,
        "{}",
        out.len()
    );
    mime_structure::run(&raw);
}
