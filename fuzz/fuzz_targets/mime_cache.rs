#![no_main]
//! See `mailcove_fuzz::mime_cache`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::mime_cache::run(data));
