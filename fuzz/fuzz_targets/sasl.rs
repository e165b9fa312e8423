#![no_main]
//! See `mailcove_fuzz::sasl`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::sasl::run(data));
