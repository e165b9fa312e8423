#![no_main]
//! See `mailcove_fuzz::imap_url`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::imap_url::run(data));
