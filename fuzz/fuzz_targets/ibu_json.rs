//! The saved ImageBasedUpgrade (`var/lib/lca/ibu.json`) as the operator and a rollback read
//! it, then `autorollback::config` and `autorollback::upgrade_failed_copy` on it: never
//! panics, round trips, the failed copy is marked failed, idempotent and restorable.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lca_fuzz::api_checks::ibu_json(data);
});
