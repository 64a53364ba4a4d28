//! `lca_core::manifest_decode::decode_all` over up to 4 extra-manifest ConfigMaps at once (the
//! input split at 0xFE, each part split at 0xFF into values): the global `MAX_OBJECTS` cap,
//! every object and error tied to one ConfigMap and one of its keys, global (wave, name)
//! order, and decoding together equal to decoding each alone, merged.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lca_fuzz::checks::extra_manifests(data);
});
