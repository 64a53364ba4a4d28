//! `lca_core::autorollback::parse_config` on arbitrary bytes: never panics, the timeout is
//! always positive, a reason means the defaults, a configuration without one round-trips.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lca_fuzz::api_checks::autorollback_config(data);
});
