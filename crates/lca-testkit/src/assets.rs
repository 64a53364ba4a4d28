//! Where the binaries come from: the control plane from `hack/control-plane.sh` (which honours
//! `KUBEBUILDER_ASSETS` or builds once from Go modules), and this workspace's own binaries
//! from one `cargo build` per test process, always with their `test-hooks` feature (the
//! scripted stage peer, the crash hooks), which a production build does not have.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{Error, Result, io};

/// Root of this repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root exists")
}

/// Directory holding `etcd` and `kube-apiserver`.
pub fn control_plane_dir() -> Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = repo_root().join("hack/control-plane.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}): {}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ))
    })
    .clone()
    .map_err(Error::Setup)
}

/// The feature set the tests and the local environment run (`lca-cli`'s own integration
/// tests too: they run the binary from here, not `CARGO_BIN_EXE_lca-cli`).
pub const TEST_FEATURES: &str = "lca-operator/test-hooks,lca-cli/test-hooks";

/// The binary `name` named by the environment variable `var` (benchmarks point it at a
/// release build), else the workspace's test build ([`workspace_binary`]).
pub fn binary(var: &str, name: &str) -> Result<PathBuf> {
    match std::env::var_os(var) {
        Some(path) => Ok(PathBuf::from(path)),
        None => workspace_binary(name),
    }
}

/// Path of a binary of this workspace (`lca-operator`, `lca-cli`), built with
/// [`TEST_FEATURES`] on first use. Fails when the binary found is not a test build (another
/// `cargo build` replaced it meanwhile, say), rather than letting a test run a binary that
/// silently lacks its hooks.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .current_dir(repo_root())
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "lca-operator",
                    "-p",
                    "lca-cli",
                    "--bins",
                    "--features",
                    TEST_FEATURES,
                ])
                .status()
                .map_err(|e| format!("running cargo build: {e}"))?;
            if !status.success() {
                return Err(format!("cargo build of the workspace binaries failed: {status}"));
            }
            let target = std::env::var("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|_| repo_root().join("target"));
            Ok(target.join("debug"))
        })
        .clone()
        .map_err(Error::Setup)?;
    let path = dir.join(name);
    std::fs::metadata(&path).map_err(io(format!("looking for {}", path.display())))?;
    require_test_build(&path)?;
    Ok(path)
}

/// Both binaries print ` (test-hooks)` after their version in a test build.
pub fn require_test_build(path: &Path) -> Result<()> {
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(io(format!("running {} --version", path.display())))?;
    let version = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && version.contains("(test-hooks)") {
        return Ok(());
    }
    Err(Error::Setup(format!(
        "{} is not a test build (its --version says {:?}); the tests need it built with \
         `cargo build -p lca-operator -p lca-cli --bins --features {TEST_FEATURES}`",
        path.display(),
        version.trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_binary(dir: &Path, version_line: &str) -> PathBuf {
        let path = dir.join("fake");
        crate::write_executable(&path, &format!("#!/bin/sh\necho '{version_line}'\n")).unwrap();
        path
    }

    #[test]
    fn a_production_binary_is_refused_with_the_command_that_builds_a_test_one() {
        let dir = tempfile::tempdir().unwrap();
        let err = require_test_build(&fake_binary(dir.path(), "lca-operator 0.1.0"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a test build"), "{err}");
        assert!(err.contains(TEST_FEATURES), "{err}");
    }

    #[test]
    fn a_test_build_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        require_test_build(&fake_binary(dir.path(), "lca-operator 0.1.0 (test-hooks)")).unwrap();
    }
}
