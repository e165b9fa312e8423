#![no_main]
//! See `mailcove_fuzz::utf8_downgrade`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::utf8_downgrade::run(data));
