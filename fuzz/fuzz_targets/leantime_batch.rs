//! `vigie::fuzzing::leantime_batch`: see its docs for how the input is read.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigie::fuzzing::leantime_batch(data));
