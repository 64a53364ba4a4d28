//! `lca_api::seedreconfig::SeedReconfiguration::parse` on arbitrary bytes: never panics, Ok
//! only for the known version and survives being written and read back.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lca_fuzz::api_checks::seed_reconfiguration(data);
});
