//! `mailcove sieve-test` (filled in below).
