#![no_main]
//! See `mailcove_fuzz::sequence_date`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::sequence_date::run(data));
