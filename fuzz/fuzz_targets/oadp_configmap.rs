//! `lca_core::manifest_decode::decode_all` (and `Manifest::wave`) on one OADP / extra-manifest
//! ConfigMap whose data values are the input split at 0xFF (at most 8 values, keys `k0.yaml`,
//! `k1.yaml`, ...): never panics nor hangs, at most `MAX_OBJECTS` objects, every error a
//! non-empty message naming the ConfigMap and key, objects in apply-wave order.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lca_fuzz::checks::oadp_configmap(data);
});
