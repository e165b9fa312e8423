#![no_main]
//! See `mailcove_fuzz::imap_command`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::imap_command::run(data));
