//! The cluster inside a simulated seed node. On a real seed node the cluster's state is etcd's
//! data in `/var/lib/etcd`, which `lca-cli create` packs into `var.tgz` after stopping the
//! kubelet (and with it etcd); the new stateroot made from the seed therefore boots into the
//! *seed's* cluster. [`install`] makes the same on a simulated seed node: it runs the loopback
//! control plane with etcd on the node's `var/lib/etcd`, creates a healthy SNO at `version`
//! (with the lca.openshift.io CRDs and no IBU, as seed generation leaves it), and stops it.

use std::path::Path;

use crate::controlplane::Options;
use crate::{ControlPlane, Result, io, openshift};

/// The clusterID of every seed cluster.
pub const SEED_CLUSTER_ID: &str = "5eed0000-0000-0000-0000-000000000000";

/// Put a stopped seed cluster at `version` into `node_root`'s `var/lib/etcd` (replacing what
/// was there).
pub async fn install(node_root: &Path, version: &str) -> Result<()> {
    install_at(&node_root.join("var/lib/etcd"), version).await
}

/// Put a stopped seed cluster at `version` into the etcd data directory `data` (a
/// stateroot's `var/lib/etcd`), replacing what was there.
pub async fn install_at(data: &Path, version: &str) -> Result<()> {
    let data = data.to_path_buf();
    match std::fs::remove_dir_all(&data) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("clearing the seed node's var/lib/etcd")(e));
        }
        _ => {}
    }
    std::fs::create_dir_all(&data).map_err(io("creating the seed node's var/lib/etcd"))?;
    let options = Options {
        etcd_data_dir: Some(data),
        ..Default::default()
    };
    let cp = ControlPlane::start_with(options).await?;
    openshift::install(&cp).await?;
    let client = cp.client().await?;
    openshift::healthy_sno(&client).await?;
    openshift::set_cluster_version(&client, version).await?;
    // The seed has its own identity; post-pivot gives the upgraded cluster its own back.
    openshift::set_cluster_id(&client, SEED_CLUSTER_ID).await?;
    // Stopped like etcd with the kubelet: the data stays in the node.
    drop(cp);
    Ok(())
}
