//! `lca_core::oadp::parse_apply_label` on arbitrary annotation values (the input, invalid
//! UTF-8 replaced): never panics, and on Ok every target has non-blank version, resource and
//! name with no '/' or ',' in any part; on Err the message is upstream's
//! "invalid apply-label obj in annotation value: <entry>".

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lca_fuzz::checks::apply_label(data);
});
