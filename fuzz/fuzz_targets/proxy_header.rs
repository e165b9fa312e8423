#![no_main]
//! See `mailcove_fuzz::proxy_header`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::proxy_header::run(data));
