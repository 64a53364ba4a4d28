//! The invariants the fuzz targets assert, shared with the stable replay test
//! `crates/lca-core/tests/fuzz_corpus.rs` (which includes this file with `#[path]`), so the
//! committed corpus is checked by exactly the same rules with and without libFuzzer.
//!
//! Only `std`, `lca_core` and what `lca_core` itself depends on (`lca_api`): the file
//! compiles in both crates. The targets that need the node crates (`lca-seed`,
//! `lca-hostops`) have their checks in the other modules of `src/`, replayed by
//! `crates/lca-cli/tests/fuzz_corpus.rs`. Every check panics with a message naming the
//! input, which is what libFuzzer records as a crash.

use std::collections::BTreeMap;

use lca_core::manifest_decode::{self, MAX_DOCUMENTS_PER_VALUE, MAX_OBJECTS};
use lca_core::oadp::{self, LabelTarget};

/// The prefix of every error `parse_apply_label` returns.
pub const APPLY_LABEL_ERROR: &str = "invalid apply-label obj in annotation value: ";

/// The `<namespace>/<name>` of the ConfigMap the `oadp_configmap` target decodes.
pub const CONFIG_MAP: &str = "openshift-adp/oadp-fuzz-cm";

/// Byte that separates the data values of the ConfigMap in an `oadp_configmap` input (never
/// part of valid UTF-8, so it takes nothing away from the YAML the values can hold).
pub const VALUE_SEPARATOR: u8 = 0xFF;

/// Data values at most in one input; the rest of the input stays in the last value.
pub const MAX_VALUES: usize = 8;

/// `apply_label`: the input as the annotation value (invalid UTF-8 replaced), parsed and
/// checked.
pub fn apply_label(data: &[u8]) {
    let value = String::from_utf8_lossy(data);
    check_apply_label(&value);
}

/// `parse_apply_label(value)` keeps its contract:
/// - Ok: one target per distinct comma-separated entry, in order of first appearance;
///   version, resource and name are non-empty and no part holds '/', ',' or whitespace; the
///   parts put back together are the entry.
/// - Err: the message is upstream's prefix followed by one of the (trimmed) entries.
pub fn check_apply_label(value: &str) {
    let entries: Vec<&str> = value.split(',').map(str::trim).collect();
    let mut distinct: Vec<&str> = Vec::new();
    for e in &entries {
        if !distinct.contains(e) {
            distinct.push(e);
        }
    }
    match oadp::parse_apply_label(value) {
        Ok(targets) => {
            assert_eq!(
                targets.len(),
                distinct.len(),
                "one target per distinct entry of {value:?}: {targets:?}"
            );
            for (t, entry) in targets.iter().zip(&distinct) {
                check_target(t, entry, value);
            }
        }
        Err(message) => {
            let Some(entry) = message.strip_prefix(APPLY_LABEL_ERROR) else {
                panic!("error for {value:?} lacks the prefix {APPLY_LABEL_ERROR:?}: {message:?}");
            };
            assert!(
                entries.contains(&entry),
                "error for {value:?} names {entry:?}, which is none of its entries"
            );
        }
    }
}

fn check_target(t: &LabelTarget, entry: &str, value: &str) {
    for (what, part) in [
        ("version", &t.version),
        ("resource", &t.resource),
        ("name", &t.name),
    ] {
        assert!(!part.trim().is_empty(), "blank {what} in {t:?} from {value:?}");
    }
    for part in [&t.group, &t.version, &t.resource, &t.namespace, &t.name] {
        assert!(
            !part.contains('/') && !part.contains(',') && !part.contains(char::is_whitespace),
            "'/', ',' or whitespace in a part of {t:?} from {value:?}"
        );
    }
    let parts: Vec<&str> = [&t.group, &t.version, &t.resource, &t.namespace, &t.name]
        .into_iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(
        parts.join("/"),
        entry,
        "{t:?} is not the entry {entry:?} of {value:?}"
    );
    let expected_api_version = if t.group.is_empty() {
        t.version.clone()
    } else {
        format!("{}/{}", t.group, t.version)
    };
    assert_eq!(t.api_version(), expected_api_version, "apiVersion of {t:?}");
}

/// The data of one ConfigMap from an `oadp_configmap` input: the input split at
/// [`VALUE_SEPARATOR`] into at most [`MAX_VALUES`] values (invalid UTF-8 replaced), under the
/// keys `k0.yaml`, `k1.yaml`, ...
pub fn config_map_data(data: &[u8]) -> BTreeMap<String, String> {
    data.splitn(MAX_VALUES, |b| *b == VALUE_SEPARATOR)
        .enumerate()
        .map(|(i, v)| (format!("k{i}.yaml"), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

/// `oadp_configmap`: the input as one ConfigMap, decoded and checked.
pub fn oadp_configmap(data: &[u8]) {
    check_decode(CONFIG_MAP, &config_map_data(data));
}

/// Byte that separates the ConfigMaps of an `extra_manifests` input (like
/// [`VALUE_SEPARATOR`], never part of valid UTF-8).
pub const CONFIG_MAP_SEPARATOR: u8 = 0xFE;

/// ConfigMaps at most in one `extra_manifests` input; the rest stays in the last one.
pub const MAX_CONFIG_MAPS: usize = 4;

/// The ConfigMaps of an `extra_manifests` input: the input split at [`CONFIG_MAP_SEPARATOR`],
/// each part then split like [`config_map_data`], named `extra-<i>/manifests-<i>` (none a
/// substring of another, so an error names exactly one).
pub fn extra_manifests_config_maps(data: &[u8]) -> Vec<(String, BTreeMap<String, String>)> {
    data.splitn(MAX_CONFIG_MAPS, |b| *b == CONFIG_MAP_SEPARATOR)
        .enumerate()
        .map(|(i, part)| (format!("extra-{i}/manifests-{i}"), config_map_data(part)))
        .collect()
}

/// `extra_manifests`: the input as several ConfigMaps, decoded at once as the extra-manifest
/// path does (`lca-operator`'s `node_work::extra_manifests::load`), and checked.
pub fn extra_manifests(data: &[u8]) {
    check_decode_many(&extra_manifests_config_maps(data));
}

/// `decode_all` on one ConfigMap keeps its contract (see [`check_decode_many`]).
pub fn check_decode(cm: &str, data: &BTreeMap<String, String>) {
    check_decode_many(&[(cm.to_string(), data.clone())]);
}

/// `decode_all` on a list of ConfigMaps keeps its contract:
/// - at most `MAX_OBJECTS` objects in all, at most `MAX_DOCUMENTS_PER_VALUE` from one value;
/// - each object is a JSON object from one of the ConfigMaps and one of *its* keys, without
///   the instance metadata (`uid`, `resourceVersion`) the decoder strips;
/// - each error names one ConfigMap and one of its keys in one of the two shapes the decoder
///   writes; at most one decode error per value plus one wave error per object;
/// - `wave()` of each object is an integer or an error naming the object's ConfigMap and key
///   that `decode_all` reported too;
/// - the objects come in apply-wave order (no wave or a bad one: last), then by name;
/// - with several ConfigMaps, decoding them together is decoding each alone, merged: the
///   same objects in the same order and the same errors, unless the global cap cut some
///   value off, which only happens when the ConfigMaps alone hold more objects.
pub fn check_decode_many(cms: &[(String, BTreeMap<String, String>)]) {
    let decoded = manifest_decode::decode_all(cms.iter().map(|(cm, data)| (cm.clone(), data)));
    let n = decoded.objects.len();
    let values: usize = cms.iter().map(|(_, data)| data.len()).sum();
    assert!(n <= MAX_OBJECTS, "{n} objects, more than {MAX_OBJECTS}");
    assert!(
        decoded.errors.len() <= values + n,
        "{} errors from {values} values and {n} objects: {:?}",
        decoded.errors.len(),
        decoded.errors
    );
    for e in &decoded.errors {
        check_error(e, cms);
    }

    let mut per_key: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut order: Vec<(i64, String)> = Vec::with_capacity(n);
    for m in &decoded.objects {
        assert!(
            cms.iter()
                .any(|(cm, data)| *cm == m.config_map && data.contains_key(&m.key)),
            "object from an unknown ConfigMap or key: {m:?}"
        );
        *per_key.entry((&m.config_map, &m.key)).or_default() += 1;
        assert!(m.object.is_object(), "not an object: {m:?}");
        if let Some(meta) = m.object.get("metadata").filter(|v| v.is_object()) {
            assert!(
                meta.get("uid").is_none() && meta.get("resourceVersion").is_none(),
                "instance metadata kept: {m:?}"
            );
        }
        let wave = match m.wave() {
            Ok(w) => w.unwrap_or(i64::from(i32::MAX)),
            Err(e) => {
                assert!(
                    e.0.contains(&wave_error_infix(&m.key, &m.config_map)),
                    "wave error {:?} does not name {} of {}",
                    e.0,
                    m.key,
                    m.config_map
                );
                assert!(
                    decoded.errors.contains(&e.0),
                    "wave error {:?} missing from decode_all's errors {:?}",
                    e.0,
                    decoded.errors
                );
                i64::from(i32::MAX)
            }
        };
        order.push((wave, m.field("/metadata/name")));
    }
    for (key, count) in per_key {
        assert!(
            count <= MAX_DOCUMENTS_PER_VALUE,
            "{count} objects from {key:?}, more than {MAX_DOCUMENTS_PER_VALUE}"
        );
    }
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "objects out of (wave, name) order: {order:?}"
    );
    if cms.len() > 1 {
        check_merge(cms, &decoded);
    }
}

/// Together is each alone, merged (see [`check_decode_many`]).
fn check_merge(cms: &[(String, BTreeMap<String, String>)], together: &manifest_decode::Decoded) {
    let cut = |errors: &[String]| {
        errors
            .iter()
            .any(|e| e.contains(&format!("more than {MAX_OBJECTS} objects in all")))
    };
    let alone: Vec<_> = cms
        .iter()
        .map(|(cm, data)| manifest_decode::decode_all([(cm.clone(), data)]))
        .collect();
    if cut(&together.errors) {
        let objects: usize = alone.iter().map(|d| d.objects.len()).sum();
        assert!(
            objects > together.objects.len() || alone.iter().any(|d| cut(&d.errors)),
            "the global cap cut a value off, but the ConfigMaps alone hold only {objects} objects"
        );
        return;
    }
    // A stable sort of the concatenation: equal (wave, name) keep ConfigMap order.
    let mut merged: Vec<_> = alone.iter().flat_map(|d| d.objects.iter().cloned()).collect();
    merged.sort_by_cached_key(|m| {
        let wave = m.wave().ok().flatten().unwrap_or(i64::from(i32::MAX));
        (wave, m.field("/metadata/name"))
    });
    assert!(
        merged == together.objects,
        "decoding together differs from decoding each ConfigMap alone"
    );
    let mut errors_alone: Vec<&String> = alone.iter().flat_map(|d| &d.errors).collect();
    let mut errors_together: Vec<&String> = together.errors.iter().collect();
    errors_alone.sort();
    errors_together.sort();
    assert_eq!(errors_alone, errors_together, "errors together vs alone");
}

/// What a wave error says about where its object comes from.
fn wave_error_infix(key: &str, cm: &str) -> String {
    format!(
        " in {key} of the configMap {cm}: invalid {} annotation ",
        lca_api::consts::annotations::APPLY_WAVE
    )
}

/// `e` is one of the decoder's two error shapes, about one ConfigMap and one of its keys.
fn check_error(e: &str, cms: &[(String, BTreeMap<String, String>)]) {
    assert!(!e.is_empty(), "empty error");
    let named = cms.iter().any(|(cm, data)| {
        data.keys().any(|key| {
            e.starts_with(&format!("failed to decode {key} in the configMap {cm}: "))
                || e.contains(&wave_error_infix(key, cm))
        })
    });
    assert!(named, "error {e:?} names no ConfigMap and key of the input");
}

/// A check by the name of its target (`apply_label`, `oadp_configmap`, `extra_manifests`).
pub fn by_target(target: &str) -> Option<fn(&[u8])> {
    match target {
        "apply_label" => Some(apply_label),
        "oadp_configmap" => Some(oadp_configmap),
        "extra_manifests" => Some(extra_manifests),
        _ => None,
    }
}
