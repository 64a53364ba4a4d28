//! Real components for lca-rs tests and the local environment: an etcd + kube-apiserver
//! control plane on loopback with our CRDs installed, and the operator process under test.
//!
//! Every process started here is guarded (see [`process`]) so that it dies with the test
//! process, whichever way that ends, and leaves no temp directory behind.

pub mod assets;
pub mod controlplane;
pub mod hostpeer;
pub mod images;
pub mod kubelet_peer;
pub mod oadpenv;
pub mod openshift;
pub mod operator;
pub mod prepenv;
pub mod process;
pub mod rbac;
pub mod reboot;
pub mod registry;
pub mod seedcluster;
pub mod seednode;
pub mod simnode;
pub mod units;
pub mod upgradeenv;
pub mod velero;

pub use controlplane::ControlPlane;
pub use operator::OperatorProcess;
pub use registry::Registry;

/// Errors of the test harness; messages name what was tried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Setup(String),
    #[error("io error while {what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("kubernetes API error while {what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("timed out after {secs}s waiting for {what}")]
    Timeout { what: String, secs: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Write an executable script (mode 0755, parent directories created) that a test runs at
/// once. A child shell writes it: had this process held the file open for writing, a fork by
/// a test running in another thread could inherit that descriptor, and running the script
/// would fail with "Text file busy" (ETXTBSY).
pub fn write_executable(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    let what = format!("writing {}", path.display());
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            r#"mkdir -p "$(dirname "$1")" && cat > "$1" && chmod 755 "$1""#,
            "sh",
        ])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(io(what.clone()))?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(text.as_bytes()));
    let status = child.wait().map_err(io(what.clone()))?;
    match written {
        Some(Ok(())) if status.success() => Ok(()),
        _ => Err(Error::Setup(format!("{what} failed ({status})"))),
    }
}

/// Run a setup command (argv, no shell) and return its stdout; a failure names the command
/// and carries its stderr.
pub fn run(argv: &[&str]) -> Result<String> {
    let (cmd, args) = argv
        .split_first()
        .ok_or_else(|| Error::Setup("empty command".into()))?;
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map_err(io(format!("running {}", argv.join(" "))))?;
    if !out.status.success() {
        return Err(Error::Setup(format!(
            "{} failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

pub(crate) fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}
