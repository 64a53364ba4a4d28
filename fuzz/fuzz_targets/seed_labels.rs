//! `lca_seed::checks::check_seed_labels` on labels, `manifest.json` and cluster facts from the
//! input (split at 0xFF): never panics, fails only with the reference's messages and for the
//! reason the labels give, accepts only the expected seed format, and a seed described from a
//! consistent cluster passes on it.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lca_fuzz::seed_checks::seed_labels(data);
});
