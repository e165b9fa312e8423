#![no_main]
//! See `mailcove_fuzz::scram`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::scram::run(data));
