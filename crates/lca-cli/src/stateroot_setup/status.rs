//! Progress reporting and resumability of `stateroot-setup`: the `--status-file` JSON
//! (`{"phase","step","message"}`) and the per-step markers under
//! `<root>/var/lib/lca/workspace/stateroot-setup/<step>.done`.
//!
//! Both are written atomically (temp file + rename in the same directory) because the
//! operator polls the status file while the job may be killed at any instant, and a torn
//! marker would make a re-run skip work that never finished. `write_json_atomic` is shared
//! with `precache`, whose status file has the same requirement.

use std::fs;
use std::path::{Path, PathBuf};

use lca_hostops::NodeFs;
use serde::Serialize;

/// Phase of the job as the operator sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Running,
    Succeeded,
    Failed,
}

/// Contents of `--status-file`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobStatus<'a> {
    pub phase: Phase,
    pub step: &'a str,
    pub message: &'a str,
}

/// Serialize `value` to `path` through a sibling temp file and a rename, so readers see the
/// old or the new content, never a prefix.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    write_atomic(path, &bytes)
}

/// Write `bytes` to `path` atomically (see `write_json_atomic`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        // Best effort: the rename's error is returned; the temp name is per process.
        let _ = fs::remove_file(&tmp);
    })
}

/// The status file of one run. Reporting failures are logged, not fatal: losing a progress
/// update must not abort a half-deployed stateroot.
pub struct Reporter {
    path: PathBuf,
}

impl Reporter {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn report(&self, phase: Phase, step: &str, message: &str) {
        let status = JobStatus { phase, step, message };
        if let Err(e) = write_json_atomic(&self.path, &status) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not write the status file");
        }
    }
}

/// Step markers of one stateroot setup: node files, through `NodeFs`.
pub struct Markers<'a> {
    dir: PathBuf,
    fs: NodeFs<'a>,
}

impl<'a> Markers<'a> {
    pub fn new(dir: PathBuf, fs: NodeFs<'a>) -> Self {
        Self { dir, fs }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, step: &str) -> PathBuf {
        self.dir.join(format!("{step}.done"))
    }

    /// Whether `step` is marked; a marker that cannot be read counts as not done, so the
    /// step runs again (every step is safe to repeat).
    pub fn is_done(&self, step: &str) -> bool {
        self.fs.exists(&self.path(step)).unwrap_or(false)
    }

    pub fn mark(&self, step: &str) -> lca_hostops::Result<()> {
        self.write(&format!("{step}.done"), b"")
    }

    /// Write the file `name` of the marker directory (created when missing), atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> lca_hostops::Result<()> {
        self.fs.create_private_dir(&self.dir)?;
        self.fs.write_atomic(&self.dir.join(name), bytes)
    }

    /// Forget every marker (a different seed or version, or the stateroot vanished).
    pub fn reset(&self) -> lca_hostops::Result<()> {
        self.fs.remove_dir_all(&self.dir).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn status_json_shape_and_markers() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("sub/status.json");
        Reporter::new(status.clone()).report(Phase::Failed, "check-version", "boom");
        assert_eq!(
            fs::read_to_string(&status).unwrap(),
            r#"{"phase":"failed","step":"check-version","message":"boom"}"#
        );
        assert_eq!(
            fs::read_dir(dir.path().join("sub")).unwrap().count(),
            1,
            "no temp file left"
        );
        let exec = lca_hostops::LocalExecutor::new(dir.path());
        let m = Markers::new(dir.path().join("m"), NodeFs::new(&exec));
        assert!(!m.is_done("deploy"));
        m.mark("deploy").unwrap();
        assert!(m.is_done("deploy"));
        m.reset().unwrap();
        m.reset().unwrap();
        assert!(!m.is_done("deploy"));
    }
}
