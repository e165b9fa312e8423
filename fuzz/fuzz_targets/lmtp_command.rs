#![no_main]
//! See `mailcove_fuzz::lmtp_command`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::lmtp_command::run(data));
