//! The Velero test peer's object storage: a directory standing in for the S3 bucket, and
//! the flag files through which tests (in any process) inject failures and holds.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Error, Result, io};

const BACKUP_FILE: &str = "velero-backup.json";
const RESOURCES_FILE: &str = "resources.json";
/// The uid of the Backup object (of whichever cluster) that stands for the stored backup.
const UID_FILE: &str = "backup-uid";

fn dir(store: &Path, name: &str) -> PathBuf {
    store.join("backups").join(name)
}

/// True when the backup `name` is complete in the store.
pub(super) fn has(store: &Path, name: &str) -> bool {
    dir(store, name).join(BACKUP_FILE).is_file()
}

/// Names of the complete backups, sorted.
pub(super) fn backups(store: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(store.join("backups")) else {
        return vec![];
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| has(store, name))
        .collect();
    names.sort();
    names
}

/// Write a backup made by the Backup object `uid`: the objects first, the Backup object
/// last, each through a rename, so that a backup interrupted half-way is not taken for a
/// complete one.
pub(super) fn write(store: &Path, name: &str, uid: &str, backup: &Value, resources: &[Value]) -> Result<()> {
    let dir = dir(store, name);
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    write_json(&dir.join(RESOURCES_FILE), &Value::Array(resources.to_vec()))?;
    set_uid(store, name, uid)?;
    write_json(&dir.join(BACKUP_FILE), backup)
}

/// Record that the Backup object `uid` stands for the stored backup `name`.
pub(super) fn set_uid(store: &Path, name: &str, uid: &str) -> Result<()> {
    let path = dir(store, name).join(UID_FILE);
    std::fs::write(&path, uid).map_err(io(format!("writing {}", path.display())))
}

/// The uid recorded by [`set_uid`].
pub(super) fn uid(store: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir(store, name).join(UID_FILE)).ok()
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Setup(format!("serializing {}: {e}", path.display())))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("renaming {}", tmp.display())))
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::Setup(format!("parsing {}: {e}", path.display())))
}

/// The stored Backup object.
pub(super) fn backup(store: &Path, name: &str) -> Result<Value> {
    read_json(&dir(store, name).join(BACKUP_FILE))
}

/// The stored objects of a backup.
pub(super) fn resources(store: &Path, name: &str) -> Result<Vec<Value>> {
    match read_json(&dir(store, name).join(RESOURCES_FILE))? {
        Value::Array(items) => Ok(items),
        _ => Err(Error::Setup(format!(
            "{RESOURCES_FILE} of backup {name} is not an array"
        ))),
    }
}

/// Remove a backup; one already gone is fine.
pub(super) fn remove(store: &Path, name: &str) -> Result<()> {
    let dir = dir(store, name);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io(format!("removing {}", dir.display()))(e))
        }
        _ => Ok(()),
    }
}

fn flag_path(store: &Path, under: &[&str], name: &str) -> PathBuf {
    under
        .iter()
        .fold(store.to_path_buf(), |p, part| p.join(part))
        .join(name)
}

pub(super) fn flag(store: &Path, under: &[&str], name: &str) -> bool {
    flag_path(store, under, name).exists()
}

pub(super) fn set_flag(store: &Path, under: &[&str], name: &str) -> Result<()> {
    let path = flag_path(store, under, name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
    }
    std::fs::write(&path, b"").map_err(io(format!("writing {}", path.display())))
}

pub(super) fn clear_flag(store: &Path, under: &[&str], name: &str) -> Result<()> {
    let path = flag_path(store, under, name);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io(format!("removing {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}
