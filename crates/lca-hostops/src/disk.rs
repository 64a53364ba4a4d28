//! Disk usage of the container storage, via statfs on the path as this process sees it
//! (`/host/var/lib/containers` in the pod). The percentage rule itself is in
//! `lca_core::image_cleanup::usage_percent`, shared with its tests.

use std::path::Path;

use crate::error::{Error, Result};

/// Block counts of the filesystem holding a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Total blocks.
    pub blocks: u64,
    /// Blocks available to unprivileged users (`bavail`, as upstream uses).
    pub blocks_available: u64,
}

impl Usage {
    /// `(blocks − bavail) × 100 / blocks`, integer.
    pub fn percent(&self) -> i64 {
        lca_core::image_cleanup::usage_percent(self.blocks, self.blocks_available)
    }
}

/// statvfs of `path`.
pub fn usage(path: &Path) -> Result<Usage> {
    let st = nix::sys::statvfs::statvfs(path)
        .map_err(|e| Error::Io { context: "statfs of", path: path.to_path_buf(), source: e.into() })?;
    Ok(Usage { blocks: u64::from(st.blocks()), blocks_available: u64::from(st.blocks_available()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_of_a_real_filesystem_matches_df() {
        let dir = tempfile::tempdir().unwrap();
        let u = usage(dir.path()).unwrap();
        assert!(u.blocks > 0 && u.blocks_available <= u.blocks);
        let pct = u.percent();
        assert!((0..=100).contains(&pct));
        // df's Use% rounds up and uses used/(used+avail); ours is upstream's formula, so allow slack.
        let out = std::process::Command::new("df").arg("--output=pcent").arg(dir.path()).output().unwrap();
        let df: i64 = String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().trim_end_matches('%').parse().unwrap();
        assert!((df - pct).abs() <= 6, "df {df}% vs statfs {pct}%");
    }

    #[test]
    fn missing_path_is_an_io_error() {
        let e = usage(Path::new("/nonexistent/lca")).unwrap_err();
        assert!(e.to_string().starts_with("statfs of /nonexistent/lca"), "{e}");
    }
}
