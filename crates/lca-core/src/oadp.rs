//! The OADP rules of an upgrade (spec §4.2, §6.2, §6.3), pure: what an
//! `lca.openshift.io/apply-label` annotation names, what a Backup's or Restore's phase means,
//! what a wave of them adds up to, how a Backup is labelled before it is created, which
//! LVMS volumes keep their data across the pivot, and where the Restores wait in the new
//! stateroot. The operator does the API calls around them.

use std::time::Duration;

use lca_api::consts::{annotations, labels};
use serde_json::{Value, json};

use crate::manifest_layout;

/// One object an apply-label annotation names. `group` is empty for the core group,
/// `namespace` empty for a cluster-scoped object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelTarget {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl LabelTarget {
    /// `group/version` as an object's `apiVersion` spells it.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// The objects of an apply-label value: a comma-separated list of `version/resource/name`
/// (core, cluster-scoped), `v1/resource/namespace/name`, `group/version/resource/name`
/// (cluster-scoped) or `group/version/resource/namespace/name`. Anything else (another count
/// of parts, or an empty or blank-holding part, which no object has) is refused with
/// upstream's message.
pub fn parse_apply_label(value: &str) -> Result<Vec<LabelTarget>, String> {
    let mut targets: Vec<LabelTarget> = Vec::new();
    for entry in value.split(',') {
        let t = parse_entry(entry.trim())?;
        // Listed twice is labelled once (upstream removes duplicates as well).
        if !targets.contains(&t) {
            targets.push(t);
        }
    }
    Ok(targets)
}

fn parse_entry(entry: &str) -> Result<LabelTarget, String> {
    let invalid = || format!("invalid apply-label obj in annotation value: {entry}");
    let parts: Vec<&str> = entry.split('/').collect();
    // No API group, version, resource or object name is empty or holds whitespace.
    if parts
        .iter()
        .any(|p| p.is_empty() || p.contains(char::is_whitespace))
    {
        return Err(invalid());
    }
    let t = |group: &str, version: &str, resource: &str, namespace: &str, name: &str| LabelTarget {
        group: group.into(),
        version: version.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
    };
    Ok(match parts.as_slice() {
        [version, resource, name] => t("", version, resource, "", name),
        ["v1", resource, namespace, name] => t("", "v1", resource, namespace, name),
        [group, version, resource, name] => t(group, version, resource, "", name),
        [group, version, resource, namespace, name] => t(group, version, resource, namespace, name),
        _ => return Err(invalid()),
    })
}

/// What the phase of a Backup or Restore says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    Succeeded,
    Failed,
    /// Not picked up yet (no phase).
    Pending,
    /// Being worked on.
    Running,
}

pub fn classify(phase: &str) -> Progress {
    match phase {
        "Completed" => Progress::Succeeded,
        "FailedValidation" | "PartiallyFailed" | "Failed" => Progress::Failed,
        "" => Progress::Pending,
        _ => Progress::Running,
    }
}

/// Backups before the pivot, Restores after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    Backup,
    Restore,
}

impl Work {
    fn noun(self) -> &'static str {
        match self {
            Work::Backup => "backup",
            Work::Restore => "restore",
        }
    }

    /// The message while a wave is not done.
    pub fn in_progress(self) -> &'static str {
        match self {
            Work::Backup => "Backup of Application Data is in progress",
            Work::Restore => "Restore of Application Data is in progress",
        }
    }
}

/// What one wave adds up to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaveVerdict {
    /// Every object succeeded: on to the next wave.
    Done,
    /// The stage fails with this message.
    Failed(String),
    /// Look again after this long.
    Wait(Duration),
}

/// Requeue while an object of the wave is being worked on.
pub const RUNNING_POLL: Duration = Duration::from_secs(30);
/// Requeue while objects only wait to be picked up (or, for a Restore, for its Backup to be
/// synced from object storage).
pub const PENDING_POLL: Duration = Duration::from_secs(60);

/// The verdict on one wave from each object's name and progress (`None`: a Restore whose
/// Backup is not synced yet). A failure anywhere wins; then running; then pending.
pub fn judge(work: Work, wave: &[(String, Option<Progress>)]) -> WaveVerdict {
    let failed: Vec<&str> = wave
        .iter()
        .filter(|(_, p)| *p == Some(Progress::Failed))
        .map(|(n, _)| n.as_str())
        .collect();
    if !failed.is_empty() {
        return WaveVerdict::Failed(format!("Failed {} CRs: {}", work.noun(), failed.join(",")));
    }
    if wave.iter().any(|(_, p)| *p == Some(Progress::Running)) {
        return WaveVerdict::Wait(RUNNING_POLL);
    }
    if wave.iter().any(|(_, p)| *p != Some(Progress::Succeeded)) {
        return WaveVerdict::Wait(PENDING_POLL);
    }
    WaveVerdict::Done
}

/// Indices of `objects` (name, apply-wave) grouped into waves, in apply order.
pub fn waves(objects: &[(String, Option<i64>)]) -> Vec<Vec<usize>> {
    let ids: Vec<manifest_layout::ObjectId> = objects
        .iter()
        .map(|(name, wave)| manifest_layout::ObjectId {
            kind: String::new(),
            name: name.clone(),
            namespace: String::new(),
            wave: *wave,
        })
        .collect();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for p in manifest_layout::layout(&ids) {
        if out.len() < p.group {
            out.push(Vec::new());
        }
        out[p.group - 1].push(p.index);
    }
    out
}

/// A Backup from the user's ConfigMap made ready to create (§6.2): this cluster's ID as
/// its label and, when it names objects to label, their label in its selector, so that it
/// backs up exactly those.
pub fn prepare_backup(backup: &mut Value, cluster_id: &str, labels_objects: bool) {
    let name = backup
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    ensure_object(backup, &["metadata", "labels"])[labels::CLUSTER_ID] = json!(cluster_id);
    if labels_objects {
        ensure_object(backup, &["spec", "labelSelector", "matchLabels"])[labels::BACKUP] = json!(name);
    }
}

fn ensure_object<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut Value {
    let mut at = v;
    for key in path {
        if !at.get(*key).is_some_and(Value::is_object) {
            at[*key] = json!({});
        }
        at = &mut at[*key];
    }
    at
}

/// An LVMS volume that would lose its data when the seed's cluster finds no claim for it:
/// reclaimed with `Delete` and provisioned by TopoLVM.
pub fn pv_needs_retain(pv: &Value) -> bool {
    pv.pointer("/spec/persistentVolumeReclaimPolicy")
        .and_then(Value::as_str)
        == Some("Delete")
        && annotation(pv, annotations::PROVISIONED_BY) == Some("topolvm.io")
}

/// A volume whose reclaim policy LCA changed, to be set back to `Delete`.
pub fn pv_was_retained(pv: &Value) -> bool {
    annotation(pv, annotations::UPDATED_RECLAIM_POLICY) == Some("true")
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// Under the new stateroot's `/var/opt/OADP` (upstream's layout, §6.3).
pub const DPA_DIR: &str = "dpa";
pub const SECRET_DIR: &str = "secret";
pub const RESTORE_DIR: &str = "veleroRestore";

/// `restore<N>/<j>_<name>_<namespace>.yaml`: Restore `position` of wave `group`, both from 1.
pub fn restore_path(group: usize, position: usize, name: &str, namespace: &str) -> String {
    format!("restore{group}/{position}_{name}_{namespace}.yaml")
}

/// The wave directories among `names` (`restore<N>`), by their number: `restore10` after
/// `restore2` (upstream once sorted them by name).
pub fn restore_group_order(names: &[String]) -> Vec<String> {
    let mut groups: Vec<(u64, &String)> = names
        .iter()
        .filter_map(|n| n.strip_prefix("restore")?.parse().ok().map(|g| (g, n)))
        .collect();
    groups.sort();
    groups.into_iter().map(|(_, n)| n.clone()).collect()
}

#[cfg(test)]
#[path = "oadp_tests.rs"]
mod tests;
