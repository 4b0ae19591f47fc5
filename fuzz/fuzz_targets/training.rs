#![no_main]
//! Fuzzes `hibana_fuzz_targets::training` (see that function for what it reaches).

libfuzzer_sys::fuzz_target!(|data: &[u8]| hibana_fuzz_targets::training(data));
