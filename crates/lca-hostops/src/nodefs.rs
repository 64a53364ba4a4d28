//! `NodeFs`: the file reads and writes the operator and `lca-cli` make on the node, next to
//! `Executor::run` for commands. Every path must lie under the node's root (a typo or a path
//! built from data can never reach the machine's own files), writes are refused by the
//! dry-run executor like mutating commands are, and each error names the file and the action.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::executor::ensure_mutation_allowed;
use crate::{Error, Executor, Result};

/// The node's files, as seen through one executor.
#[derive(Clone, Copy)]
pub struct NodeFs<'a> {
    exec: &'a dyn Executor,
}

impl<'a> NodeFs<'a> {
    pub fn new(exec: &'a dyn Executor) -> Self {
        Self { exec }
    }

    /// `path` itself when it lies under the node's root.
    fn check(&self, path: &Path) -> Result<PathBuf> {
        let root = self.exec.node().paths.root();
        let inside = path.is_absolute()
            && path.starts_with(root)
            && !path.components().any(|c| c == std::path::Component::ParentDir);
        if inside {
            Ok(path.to_path_buf())
        } else {
            Err(Error::Invalid(format!(
                "{} is not a path under the node root {}",
                path.display(),
                root.display()
            )))
        }
    }

    fn mutate(&self, what: &'static str, path: &Path) -> Result<PathBuf> {
        let path = self.check(path)?;
        ensure_mutation_allowed(self.exec, &format!("{what} {}", path.display()))?;
        Ok(path)
    }

    /// The file's bytes, `None` when it does not exist.
    pub fn read_optional(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        let path = self.check(path)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", path)(e)),
        }
    }

    /// The file's bytes; a missing file is an error naming it.
    pub fn read(&self, path: &Path) -> Result<Vec<u8>> {
        self.read_optional(path)?
            .ok_or_else(|| Error::io("reading", path)(std::io::Error::from(std::io::ErrorKind::NotFound)))
    }

    /// The file opened for reading (a large file read as a stream: an archive of a seed).
    pub fn open(&self, path: &Path) -> Result<std::fs::File> {
        let path = self.check(path)?;
        std::fs::File::open(&path).map_err(Error::io("opening", path))
    }

    /// The entry's own metadata (a symlink is not followed), `None` when there is none.
    pub fn symlink_metadata(&self, path: &Path) -> Result<Option<std::fs::Metadata>> {
        let path = self.check(path)?;
        match std::fs::symlink_metadata(&path) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("inspecting", path)(e)),
        }
    }

    /// Copy the node file `src` to `dst` atomically (`write_atomic`), keeping no metadata.
    pub fn copy_atomic(&self, src: &Path, dst: &Path) -> Result<()> {
        let bytes = self.read(src)?;
        self.write_atomic(dst, &bytes)
    }

    /// Copy `src`, a file of this process rather than of the node (its own executable), to
    /// the node file `dst`, with `src`'s permissions.
    pub fn copy_in(&self, src: &Path, dst: &Path) -> Result<()> {
        let dst = self.mutate("write", dst)?;
        std::fs::copy(src, &dst)
            .map(|_| ())
            .map_err(Error::io("copying to", dst))
    }

    /// Make `link` a symlink to `target` (the link's text, not resolved), replacing a symlink
    /// or file of that name.
    pub fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        let link = self.mutate("link", link)?;
        match std::fs::symlink_metadata(&link) {
            Ok(m) if m.is_dir() => {
                return Err(Error::NodeState(format!(
                    "{} is a directory, not a link",
                    link.display()
                )));
            }
            Ok(_) => std::fs::remove_file(&link).map_err(Error::io("replacing", &link))?,
            Err(_) => {}
        }
        std::os::unix::fs::symlink(target, &link).map_err(Error::io("linking", link))
    }

    /// The file's text, `None` when it does not exist.
    pub fn read_string_optional(&self, path: &Path) -> Result<Option<String>> {
        let Some(bytes) = self.read_optional(path)? else {
            return Ok(None);
        };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::NodeState(format!("{} is not UTF-8 text", path.display())))
    }

    /// The file's text; a missing file is an error naming it.
    pub fn read_string(&self, path: &Path) -> Result<String> {
        self.read_string_optional(path)?
            .ok_or_else(|| Error::io("reading", path)(std::io::Error::from(std::io::ErrorKind::NotFound)))
    }

    pub fn exists(&self, path: &Path) -> Result<bool> {
        let path = self.check(path)?;
        path.try_exists().map_err(Error::io("looking for", path))
    }

    /// Replace the file with `bytes` at once: a reader (or a crash) sees the old content or
    /// the new, never a part.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let path = self.mutate("write", path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes).map_err(Error::io("writing", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(Error::io("replacing", path))
    }

    /// A secret: mode 0600 from the open on (see `fsutil::write_private`).
    pub fn write_private(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let path = self.mutate("write", path)?;
        crate::fsutil::write_private(&path, bytes)
    }

    /// Create the directory and its parents; the new ones get mode 0700.
    pub fn create_private_dir(&self, path: &Path) -> Result<()> {
        let path = self.mutate("create directory", path)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(Error::io("creating directory", path))
    }

    /// Remove a file; `false` when there was none.
    pub fn remove_file(&self, path: &Path) -> Result<bool> {
        let path = self.mutate("remove", path)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("removing", path)(e)),
        }
    }

    /// Remove a directory tree; `false` when there was none.
    pub fn remove_dir_all(&self, path: &Path) -> Result<bool> {
        let path = self.mutate("remove", path)?;
        match std::fs::remove_dir_all(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("removing", path)(e)),
        }
    }

    /// Rename `from` to `to` (both on the node, same filesystem: atomic).
    pub fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let from = self.mutate("rename", from)?;
        let to = self.mutate("rename to", to)?;
        std::fs::rename(&from, &to).map_err(Error::io("renaming", from))
    }

    /// The text of the symlink `path`, `None` when `path` is not a symlink.
    pub fn read_link(&self, path: &Path) -> Result<Option<PathBuf>> {
        match self.symlink_metadata(path)? {
            Some(m) if m.file_type().is_symlink() => std::fs::read_link(path)
                .map(Some)
                .map_err(Error::io("reading the link", path)),
            _ => Ok(None),
        }
    }

    /// The names of a directory's entries, sorted; empty when it does not exist.
    pub fn list_dir(&self, path: &Path) -> Result<Vec<String>> {
        let path = self.check(path)?;
        let entries = match std::fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Error::io("listing", path)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io("listing", &path))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{DryRunExecutor, LocalExecutor};

    #[test]
    fn paths_outside_the_node_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let exec = LocalExecutor::new(dir.path());
        let fs = NodeFs::new(&exec);
        for bad in [
            "/etc/passwd".to_string(),
            format!("{}/../x", dir.path().display()),
            "rel".into(),
        ] {
            let err = fs.read_optional(Path::new(&bad)).unwrap_err();
            assert!(
                err.to_string().contains("is not a path under the node root"),
                "{err}"
            );
            assert_eq!(err.category(), crate::Category::Invalid);
        }
    }

    #[test]
    fn writes_are_atomic_and_reads_see_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let exec = LocalExecutor::new(dir.path());
        let fs = NodeFs::new(&exec);
        let f = dir.path().join("a/b/state.json");
        assert_eq!(fs.read_optional(&f).unwrap(), None);
        fs.create_private_dir(f.parent().unwrap()).unwrap();
        fs.write_atomic(&f, b"{}").unwrap();
        assert_eq!(fs.read_string(&f).unwrap(), "{}");
        assert_eq!(fs.list_dir(f.parent().unwrap()).unwrap(), ["state.json"]);
        assert!(fs.remove_file(&f).unwrap());
        assert!(!fs.remove_file(&f).unwrap());
        let err = fs.read_string(&f).unwrap_err().to_string();
        assert!(err.starts_with("reading ") && err.contains("state.json"), "{err}");
    }

    #[test]
    fn dry_run_refuses_writes_and_allows_reads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep"), "x").unwrap();
        let exec = DryRunExecutor::new(Arc::new(LocalExecutor::new(dir.path())));
        let fs = NodeFs::new(&exec);
        assert_eq!(fs.read_string(&dir.path().join("keep")).unwrap(), "x");
        let err = fs.remove_file(&dir.path().join("keep")).unwrap_err();
        assert!(matches!(err, Error::DryRunRefused { .. }), "{err}");
        assert!(dir.path().join("keep").exists());
        assert!(fs.write_atomic(&dir.path().join("new"), b"y").is_err());
        assert!(!dir.path().join("new").exists());
    }
}
