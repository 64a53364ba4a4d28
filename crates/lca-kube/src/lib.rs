//! Cluster writes that both sides of the pivot make: the operator's post-pivot and
//! `lca-cli post-pivot` apply manifests that pre-pivot exported (spec §6.4 step 12, §6.5
//! step 4), both as the node's admin (`lb-ext.kubeconfig`, §9.4). Sits between
//! `lca-hostops` (the node's files) and the drivers (`lca-operator`, `lca-cli`).

pub mod apply;

use lca_api::consts::paths;
use lca_hostops::NodeFs;

pub use apply::{ApplyError, apply_dir, apply_files, apply_one, documents, field};

/// Errors of the shared cluster writes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error (or could not be reached) while `what`.
    #[error("{what}: {source}")]
    Api { what: String, source: kube::Error },
    /// The node's admin kubeconfig is missing or unusable.
    #[error(
        "cannot use the node's admin kubeconfig /{}: {message}",
        paths::ADMIN_KUBECONFIG
    )]
    Kubeconfig { message: String },
    #[error(transparent)]
    Host(#[from] lca_hostops::Error),
}

impl Error {
    /// The category that decides the retry (`lca_core::Category`).
    pub fn category(&self) -> lca_core::Category {
        match self {
            Error::Api { .. } => lca_core::Category::Transient,
            Error::Kubeconfig { .. } => lca_core::Category::NodeState,
            Error::Host(e) => e.category(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A client acting as the node's admin (its `lb-ext.kubeconfig`), read when needed so a
/// rotated kubeconfig is picked up.
pub async fn admin_client(fs: &NodeFs<'_>, root: &lca_hostops::HostPaths) -> Result<kube::Client> {
    let fail = |e: &dyn std::fmt::Display| Error::Kubeconfig {
        message: e.to_string(),
    };
    let text = fs.read_string(&root.host(paths::ADMIN_KUBECONFIG))?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&text).map_err(|e| fail(&e))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| fail(&e))?;
    kube::Client::try_from(config).map_err(|e| fail(&e))
}
