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
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| Error::Io {
        context: "statfs of",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    // fsblkcnt_t is u64 on 64-bit Linux but u32 on some 32-bit targets.
    #[allow(clippy::useless_conversion)]
    Ok(Usage {
        blocks: u64::from(st.blocks()),
        blocks_available: u64::from(st.blocks_available()),
    })
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
        // Cross-check with stat(1): total and available blocks. Note df's Use% differs: it
        // leaves root-reserved blocks out, upstream's formula counts them as used.
        let out = std::process::Command::new("stat")
            .args(["-f", "--format=%b %a"])
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let nums: Vec<u64> = text.split_whitespace().map(|n| n.parse().unwrap()).collect();
        assert_eq!(nums[0], u.blocks);
        assert!(nums[1].abs_diff(u.blocks_available) < 1024, "{nums:?} vs {u:?}");
    }

    #[test]
    fn missing_path_is_an_io_error() {
        let e = usage(Path::new("/nonexistent/lca")).unwrap_err();
        assert!(e.to_string().starts_with("statfs of /nonexistent/lca"), "{e}");
    }
}
