//! Hostile and ordinary ConfigMap contents through the decoder: every case ends, with a
//! message naming the ConfigMap and key, in bounded time and memory.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;

fn decode_one(key: &str, value: &str) -> Decoded {
    let data = BTreeMap::from([(key.to_string(), value.to_string())]);
    decode_all([("openshift-lifecycle-agent/em-abc".to_string(), &data)])
}

/// Decode with a hang guard: the bound only catches a decoder that never ends (a debug
/// build on a loaded 2-core machine took 5.9 s for the deep nesting case); its speed is
/// measured by the fuzz runs, not asserted here.
fn timed(key: &str, value: &str) -> Decoded {
    let start = Instant::now();
    let d = decode_one(key, value);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
    d
}

#[test]
fn a_syntax_error_is_one_error_naming_the_config_map_and_key() {
    let d = timed("m.yaml", "a: b: c\n");
    assert!(d.objects.is_empty());
    assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
    assert!(
        d.errors[0].starts_with("failed to decode m.yaml in the configMap openshift-lifecycle-agent/em-abc: mapping values are not allowed"),
        "{}",
        d.errors[0]
    );
}

#[test]
fn a_syntax_error_after_good_documents_stops_the_value() {
    let d = timed(
        "m.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n---\nkey: [unclosed\n---\nkind: X\n",
    );
    // The parser may see the error before it yields the good document; either way it ends
    // with one error and never yields the error again.
    assert!(d.objects.len() <= 1);
    assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
    assert!(d.errors[0].contains("m.yaml"), "{}", d.errors[0]);
}

#[test]
fn an_alias_bomb_is_refused_quickly() {
    let mut y = String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    let names = ["b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let mut prev = "a";
    for n in names {
        y.push_str(&format!(
            "{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
        prev = n;
    }
    let d = timed("bomb.yaml", &y);
    assert!(d.objects.is_empty());
    assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
    assert!(d.errors[0].contains("bomb.yaml"), "{}", d.errors[0]);
}

#[test]
fn deep_nesting_is_refused() {
    let y = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let d = timed("deep.yaml", &y);
    assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
    assert!(d.errors[0].starts_with("failed to decode deep.yaml in the configMap"));
}

#[test]
fn a_top_level_list_is_named_as_such() {
    let items: String = (0..500)
        .map(|i| format!("- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: c{i}}}\n"))
        .collect();
    let d = timed("list.yaml", &items);
    assert!(d.objects.is_empty());
    assert_eq!(
        d.errors,
        [
            "failed to decode list.yaml in the configMap openshift-lifecycle-agent/em-abc: document 1 is a list, not a Kubernetes object"
        ]
    );
}

#[test]
fn too_many_documents_is_an_error_not_a_memory_blow_up() {
    let y = "kind: A\nmetadata: {name: a}\n---\n".repeat(MAX_DOCUMENTS_PER_VALUE + 5);
    let d = timed("many.yaml", &y);
    assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
    assert!(
        d.errors[0].ends_with("more than 1000 documents"),
        "{}",
        d.errors[0]
    );
}

#[test]
fn objects_come_in_wave_then_name_order_and_lose_uid_and_resource_version() {
    let y = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"z","uid":"u","resourceVersion":"1","annotations":{"lca.openshift.io/apply-wave":"1"}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: a, annotations: {lca.openshift.io/apply-wave: "-3"}}
"#;
    let d = timed("m.yaml", y);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    let names: Vec<String> = d.objects.iter().map(|m| m.field("/metadata/name")).collect();
    assert_eq!(names, ["a", "z", "b"]);
    assert!(d.objects[1].object.pointer("/metadata/uid").is_none());
    assert!(d.objects[1].object.pointer("/metadata/resourceVersion").is_none());
    assert_eq!(d.objects[0].key, "m.yaml");
}

#[test]
fn a_wave_that_is_not_an_integer_is_an_error() {
    let y = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, annotations: {lca.openshift.io/apply-wave: abc}}\n";
    let d = timed("m.yaml", y);
    assert_eq!(
        d.errors,
        [
            "ConfigMap[a] in m.yaml of the configMap openshift-lifecycle-agent/em-abc: invalid lca.openshift.io/apply-wave annotation \"abc\": must be an integer"
        ]
    );
}

#[test]
fn long_error_lists_are_cut() {
    let errors: Vec<String> = (0..25).map(|i| format!("e{i}")).collect();
    let text = join_errors(&errors);
    assert!(text.starts_with("e0; e1;"));
    assert!(text.ends_with("e9; and 15 more errors"), "{text}");
}

#[test]
fn a_leading_byte_order_mark_is_not_content() {
    let d = timed(
        "bom.yaml",
        "\u{feff}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\n",
    );
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert_eq!(d.objects[0].field("/metadata/name"), "a");
}
