//! What makes a simulated SNO node usable by the operator beyond its ostree sysroot: a
//! private podman storage (`lca-sim/containers-storage.conf`, vfs) that the operator and its
//! tasks use through `CONTAINERS_STORAGE_CONF`, and the declared container-storage mount
//! target of a node with shared container storage. Like that separate partition, the
//! storage (`lca-sim/varlibcontainers`) belongs to no stateroot: what Prep precached is there
//! after the pivot.

use std::path::{Path, PathBuf};

use crate::{Result, io};

/// Write the node's podman storage config; returns its path.
pub fn configure(root: &Path) -> Result<PathBuf> {
    let sim = root.join("lca-sim");
    std::fs::create_dir_all(&sim).map_err(io("creating lca-sim"))?;
    let graph = lca_hostops::HostPaths::new(root).sim_container_storage();
    let run = root.join("run/containers/storage");
    for d in [&graph, &run] {
        std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
    }
    mount_container_storage(root)?;
    let conf = sim.join("containers-storage.conf");
    std::fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            graph.display(),
            run.display()
        ),
    )
    .map_err(io("writing storage.conf"))?;
    std::fs::write(
        sim.join("container-storage-target"),
        "/dev/disk/by-partlabel/varlibcontainers\n",
    )
    .map_err(io("writing the container storage target"))?;
    Ok(conf)
}

/// Mount the node's container-storage partition at `var/lib/containers` of the booted
/// stateroot (a link to `lca-sim/varlibcontainers`), as its mount unit does at every boot.
pub fn mount_container_storage(root: &Path) -> Result<()> {
    let partition = root.join("lca-sim/varlibcontainers");
    let mountpoint = root.join("var/lib/containers");
    std::fs::create_dir_all(&partition).map_err(io("creating the container storage partition"))?;
    if std::fs::symlink_metadata(&mountpoint).is_ok() {
        return Ok(());
    }
    std::fs::create_dir_all(root.join("var/lib")).map_err(io("creating var/lib"))?;
    std::os::unix::fs::symlink(&partition, &mountpoint).map_err(io("mounting var/lib/containers"))
}

/// Image references in the node's podman storage.
pub fn images(root: &Path) -> Vec<String> {
    let conf = root.join("lca-sim/containers-storage.conf");
    let out = std::process::Command::new("podman")
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}
