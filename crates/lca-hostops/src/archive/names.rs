//! What [`super`] allows archive member names and symlink targets to be: relative paths
//! without `..`, and symlinks that cannot climb out of the target. Pure functions on
//! bytes, so the policy is testable on its own and applied before any filesystem call.

use std::path::{Component, Path, PathBuf};

use super::AbsoluteSymlinks;

pub(super) fn bytes_path(b: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(b))
}

pub(super) fn shown(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Why an archive member is refused (the `reason` of [`super::Error::Refused`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl From<&str> for Refusal {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl From<String> for Refusal {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// The relative path of an archive member, or why it is refused.
pub fn archive_path(raw: &[u8]) -> Result<PathBuf, Refusal> {
    let mut out = PathBuf::new();
    for c in bytes_path(raw).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err("absolute path".into()),
            Component::ParentDir => return Err("path contains a `..` component".into()),
        }
    }
    Ok(out)
}

/// Refuse a symlink at `rel` whose target leaves the archive root. Relative targets may
/// climb only as a leading run of `..`: a `..` after a name could cross another symlink,
/// which a lexical check cannot see.
pub(super) fn check_symlink(rel: &Path, link: &[u8], absolute: AbsoluteSymlinks) -> Result<(), Refusal> {
    let target = bytes_path(link);
    if target.is_absolute() {
        return match absolute {
            AbsoluteSymlinks::Rooted => Ok(()),
            AbsoluteSymlinks::Refuse => Err(format!("absolute symlink target {}", target.display()).into()),
        };
    }
    let escape = || {
        Refusal(format!(
            "symlink target {} escapes the target directory",
            target.display()
        ))
    };
    let mut depth = rel.parent().map(|p| p.components().count()).unwrap_or(0) as i64;
    let mut seen_name = false;
    for c in target.components() {
        match c {
            Component::ParentDir if seen_name => {
                return Err(Refusal(format!(
                    "symlink target {} has `..` after a name",
                    target.display()
                )));
            }
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => seen_name = true,
            _ => {}
        }
        if depth < 0 {
            return Err(escape());
        }
    }
    Ok(())
}
