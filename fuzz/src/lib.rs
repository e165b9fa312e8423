//! Fuzz targets for mailcove's parsers, as plain functions.
//!
//! Each module's `run(&[u8])` checks one input and panics when an invariant
//! fails; the libFuzzer binaries in `fuzz_targets/` only call it. The
//! server's test suite (`tests/fuzz_regressions.rs`) includes these same
//! files and replays the seed corpora and saved crash inputs through them,
//! so a fixed crash stays fixed without a fuzzing toolchain.

pub mod imap_command;
pub mod imap_url;
pub mod lmtp_command;
pub mod mime_cache;
pub mod mime_decode;
pub mod mime_structure;
pub mod mutf7;
pub mod pop3_command;
pub mod proxy_header;
pub mod sasl;
pub mod sequence_date;
pub mod sieve_parse;
pub mod utf8_downgrade;
pub mod wire;
