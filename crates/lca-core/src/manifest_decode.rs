//! Decoding the user's manifest ConfigMaps (extra manifests, OADP content; spec §5.6): every
//! data value is a multi-document YAML/JSON stream of Kubernetes objects. This is the one
//! place where user bytes become objects, so it is bounded for any input: it stops at the
//! first syntax error of a value (the decoder's iterator would repeat it forever), caps the
//! documents per value and in all, and refuses documents that are not objects, naming the
//! ConfigMap and key in every error. Pure: the operator fetches the ConfigMaps; `fuzz/` runs it
//! on arbitrary bytes.

use lca_api::consts::annotations;
use serde::Deserialize;
use serde_json::Value;

/// Documents one data value may hold; far above any real manifest set, far below what would
/// hurt the operator's memory.
pub const MAX_DOCUMENTS_PER_VALUE: usize = 1000;
/// Objects across all ConfigMaps of one list.
pub const MAX_OBJECTS: usize = 5000;
/// Errors spelled out in one message; the rest are counted.
const MAX_ERRORS_LISTED: usize = 10;

/// A decoding failure, worded for the user: names the ConfigMap, the key and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One decoded object and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub object: Value,
    /// `<namespace>/<name>` of the ConfigMap.
    pub config_map: String,
    pub key: String,
}

impl Manifest {
    pub fn field(&self, pointer: &str) -> String {
        field(&self.object, pointer)
    }

    /// The `lca.openshift.io/apply-wave`, when set; a value that is not an integer is an
    /// error (taking it as "last" would silently reorder the user's objects).
    pub fn wave(&self) -> Result<Option<i64>, DecodeError> {
        let Some(raw) = self
            .object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(annotations::APPLY_WAVE))
        else {
            return Ok(None);
        };
        let text = match raw {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        text.trim().parse::<i64>().map(Some).map_err(|_| {
            DecodeError(format!(
                "{}[{}] in {} of the configMap {}: invalid {} annotation {text:?}: must be an integer",
                self.field("/kind"),
                self.field("/metadata/name"),
                self.key,
                self.config_map,
                annotations::APPLY_WAVE
            ))
        })
    }
}

/// A string field of an object ("" when absent or not a string).
pub fn field(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Remove the metadata that belongs to one cluster's copy of an object (uid, version,
/// timestamps, managed fields), so that it can be created in another.
pub fn strip_instance_fields(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
        ] {
            meta.remove(key);
        }
    }
}

/// What decoding a set of ConfigMaps produced: the objects in apply-wave order (then by
/// name), and the errors (decode failures, bad waves), each naming its ConfigMap and key.
#[derive(Debug, Default)]
pub struct Decoded {
    pub objects: Vec<Manifest>,
    pub errors: Vec<String>,
}

/// Decode every value of every ConfigMap (`(<ns>/<name>, data)` pairs, in the user's order).
pub fn decode_all<'a>(
    config_maps: impl IntoIterator<Item = (String, &'a std::collections::BTreeMap<String, String>)>,
) -> Decoded {
    let mut out = Decoded::default();
    for (cm, data) in config_maps {
        for (key, value) in data {
            if out.objects.len() >= MAX_OBJECTS {
                out.errors.push(format!(
                    "failed to decode {key} in the configMap {cm}: more than {MAX_OBJECTS} objects in all"
                ));
                break;
            }
            let room = MAX_OBJECTS - out.objects.len();
            match decode_value(&cm, key, value, room) {
                Ok(objects) => out.objects.extend(objects),
                Err(e) => out.errors.push(e.0),
            }
        }
    }
    let mut waves = Vec::with_capacity(out.objects.len());
    for m in &out.objects {
        match m.wave() {
            Ok(w) => waves.push(w.unwrap_or(i64::from(i32::MAX))),
            Err(e) => {
                out.errors.push(e.0);
                waves.push(i64::from(i32::MAX));
            }
        }
    }
    let mut keyed: Vec<(i64, Manifest)> = waves.into_iter().zip(out.objects).collect();
    keyed.sort_by(|(wa, a), (wb, b)| {
        wa.cmp(wb)
            .then_with(|| a.field("/metadata/name").cmp(&b.field("/metadata/name")))
    });
    out.objects = keyed.into_iter().map(|(_, m)| m).collect();
    out
}

/// The documents of one value, at most `room` objects.
fn decode_value(cm: &str, key: &str, value: &str, room: usize) -> Result<Vec<Manifest>, DecodeError> {
    let fail = |what: String| DecodeError(format!("failed to decode {key} in the configMap {cm}: {what}"));
    let mut objects = Vec::new();
    // Editors on some systems start files with a byte-order mark, which the YAML parser
    // takes for content.
    let value = value.strip_prefix('\u{feff}').unwrap_or(value);
    for (i, doc) in serde_norway::Deserializer::from_str(value).enumerate() {
        if i >= MAX_DOCUMENTS_PER_VALUE {
            return Err(fail(format!("more than {MAX_DOCUMENTS_PER_VALUE} documents")));
        }
        // A syntax error ends the stream: the iterator would yield the same error again.
        let v = Value::deserialize(doc).map_err(|e| fail(e.to_string()))?;
        match v {
            Value::Null => {}
            Value::Object(mut map) => {
                if objects.len() >= room {
                    return Err(fail(format!("more than {MAX_OBJECTS} objects in all")));
                }
                if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("uid");
                    meta.remove("resourceVersion");
                }
                objects.push(Manifest {
                    object: Value::Object(map),
                    config_map: cm.to_string(),
                    key: key.to_string(),
                });
            }
            other => {
                return Err(fail(format!(
                    "document {} is {}, not a Kubernetes object",
                    i + 1,
                    describe(&other)
                )));
            }
        }
    }
    Ok(objects)
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null | Value::Object(_) => "an object",
    }
}

/// `errors` joined with `; `, at most [`MAX_ERRORS_LISTED`] spelled out.
pub fn join_errors(errors: &[String]) -> String {
    let mut text = errors
        .iter()
        .take(MAX_ERRORS_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if errors.len() > MAX_ERRORS_LISTED {
        text.push_str(&format!("; and {} more errors", errors.len() - MAX_ERRORS_LISTED));
    }
    text
}

#[cfg(test)]
#[path = "manifest_decode_tests.rs"]
mod tests;
