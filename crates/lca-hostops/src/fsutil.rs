//! File helpers of the node boundary. `write_private` is the one way lca-rs writes a secret
//! (pull secret, registry auth, signer keys) to the node: whatever the process umask, the
//! bytes only ever live in a file of mode 0600, and a reader sees the old file or the whole
//! new one, never half a secret.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

const PRIVATE: u32 = 0o600;

/// Write `bytes` to `path` as a file of mode 0600 owned by this process's user, replacing
/// what was there (also a world-readable file or a symlink: the path gets a new inode).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let (mut file, tmp) = create_private(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(Error::io("writing a private file", &tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(Error::io("replacing the private file", path)));
    if written.is_err() {
        // Best effort: the write's error is what the caller needs; a leftover temp file is
        // private (0600) and replaced by the next write.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A new, empty temp file next to `path` (same file system, so the rename is atomic),
/// created with mode 0600 by the open itself.
fn create_private(path: &Path) -> Result<(File, PathBuf)> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} names no file", path.display())))?
        .to_string_lossy()
        .into_owned();
    loop {
        let tmp = path.with_file_name(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        // create_new: never open a file someone planted at the temp name.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE)
            .open(&tmp)
        {
            Ok(file) => {
                // The umask can only take bits away; this makes it exactly 0600 (still empty).
                if let Err(e) = file.set_permissions(Permissions::from_mode(PRIVATE)) {
                    // Best effort: the chmod error is reported; the file is still empty.
                    let _ = std::fs::remove_file(&tmp);
                    return Err(Error::io("creating a private file", &tmp)(e));
                }
                return Ok((file, tmp));
            }
            // A leftover of an earlier process that had the same pid.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("creating a private file", &tmp)(e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;

    const CHILD_DIR: &str = "LCA_FSUTIL_UMASK0_DIR";

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// The umask is per process: setting it to 0 here would loosen the files of tests running
    /// in parallel threads, so this runs in a child process of the test binary.
    #[test]
    fn private_even_under_umask_zero() {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "fsutil::tests::umask_zero_child"])
            .args(["--test-threads=1", "--nocapture"])
            .env(CHILD_DIR, dir.path())
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{log}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(log.contains("1 passed"), "the child test did not run: {log}");
        assert_eq!(mode(&dir.path().join("secret")), 0o600);
    }

    #[test]
    #[ignore = "run by private_even_under_umask_zero in a child process"]
    fn umask_zero_child() {
        let dir = PathBuf::from(std::env::var_os(CHILD_DIR).unwrap());
        nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        // Zero bytes written yet: the secret's first byte lands in a file that is already 0600.
        let (file, tmp) = create_private(&dir.join("secret")).unwrap();
        assert_eq!(file.metadata().unwrap().mode() & 0o7777, 0o600);
        std::fs::remove_file(tmp).unwrap();
        write_private(&dir.join("secret"), b"{\"auths\":{}}").unwrap();
        assert_eq!(mode(&dir.join("secret")), 0o600);
    }

    #[test]
    fn a_world_readable_file_is_replaced_by_a_private_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(&path, "old secret, longer than the new one").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        // Someone holding the old file (a hard link here) keeps it whole: no in-place truncate.
        let held = dir.path().join("held");
        std::fs::hard_link(&path, &held).unwrap();

        write_private(&path, b"new").unwrap();

        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            std::fs::read_to_string(&held).unwrap(),
            "old secret, longer than the new one"
        );
        assert_eq!(entries(dir.path()), ["auth.json", "held"], "no temp file left");
    }

    #[test]
    fn a_symlink_at_the_path_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "untouched").unwrap();
        let path = dir.path().join("key");
        std::os::unix::fs::symlink(&target, &path).unwrap();

        write_private(&path, b"k").unwrap();

        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(std::fs::read(&path).unwrap(), b"k");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent/auth.json");
        let err = write_private(&path, b"x").unwrap_err().to_string();
        assert!(
            err.starts_with("creating a private file") && err.contains("absent/.auth.json."),
            "{err}"
        );
    }

    #[test]
    fn a_directory_at_the_path_is_left_alone_and_no_temp_remains() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), "x").unwrap();
        let err = write_private(&path, b"x").unwrap_err().to_string();
        assert!(err.starts_with("replacing the private file"), "{err}");
        assert_eq!(entries(dir.path()), ["d"]);
        assert_eq!(entries(&path), ["inside"]);
    }
}
