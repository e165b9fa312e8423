#![no_main]
//! See `mailcove_fuzz::pop3_command`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::pop3_command::run(data));
