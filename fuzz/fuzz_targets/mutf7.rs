#![no_main]
//! See `mailcove_fuzz::mutf7`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::mutf7::run(data));
