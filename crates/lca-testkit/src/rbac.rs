//! Runs the operator the way a cluster would: with a ServiceAccount token bound to exactly
//! the ClusterRole in `config/rbac/`, so every e2e test also proves that role is sufficient.

use std::path::PathBuf;
use std::process::Command;

use crate::{ControlPlane, Error, Result, assets, io};

const NAMESPACE: &str = "openshift-lifecycle-agent";
const SERVICE_ACCOUNT: &str = "lifecycle-agent-controller-manager";

fn kubectl(cp: &ControlPlane, args: &[&str]) -> Result<String> {
    let out = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", cp.kubeconfig().display()))
        .args(args)
        .output()
        .map_err(io("running kubectl"))?;
    if !out.status.success() {
        return Err(Error::Setup(format!(
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Install the operator namespace, ServiceAccount and RBAC from the repo, and write a
/// kubeconfig that authenticates as that ServiceAccount.
pub fn operator_kubeconfig(cp: &ControlPlane) -> Result<PathBuf> {
    let root = assets::repo_root();
    let ns = root.join("config/default/namespace.yaml");
    let rbac = root.join("config/rbac");
    kubectl(cp, &["apply", "-f", &ns.display().to_string()])?;
    kubectl(cp, &["apply", "-k", &rbac.display().to_string()])?;
    let token = kubectl(
        cp,
        &[
            "create",
            "token",
            SERVICE_ACCOUNT,
            "-n",
            NAMESPACE,
            "--duration=24h",
        ],
    )?;
    let kc = std::fs::read_to_string(cp.kubeconfig()).map_err(io("reading the admin kubeconfig"))?;
    let admin_token = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .ok_or_else(|| Error::Setup("admin kubeconfig has no token".into()))?
        .to_string();
    let path = cp.dir().join("operator.kubeconfig");
    std::fs::write(
        &path,
        kc.replace(&admin_token, &token)
            .replace("lca-admin", SERVICE_ACCOUNT),
    )
    .map_err(io("writing the operator kubeconfig"))?;
    Ok(path)
}
