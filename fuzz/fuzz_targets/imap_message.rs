//! `vigie::fuzzing::imap_message`: see its docs for how the input is read.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigie::fuzzing::imap_message(data));
