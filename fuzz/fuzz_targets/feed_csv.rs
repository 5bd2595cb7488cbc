#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socialcraft_fuzz::targets::feed_csv(data));
