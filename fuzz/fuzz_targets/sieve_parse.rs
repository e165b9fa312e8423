#![no_main]
//! See `mailcove_fuzz::sieve_parse`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailcove_fuzz::sieve_parse::run(data));
