#![no_main]
//! See `mailcove_fuzz::mime_decode`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::mime_decode::run(data));
