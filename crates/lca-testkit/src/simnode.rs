//! What makes a simulated SNO node usable by the operator beyond its ostree sysroot: a
//! private podman storage (`lca-sim/containers-storage.conf`, vfs, under the node's own
//! `var/lib/containers`) that the operator and its tasks use through `CONTAINERS_STORAGE_CONF`,
//! and the declared container-storage mount target of a node with shared container storage.

use std::path::{Path, PathBuf};

use crate::{Result, io};

/// Write the node's podman storage config; returns its path.
pub fn configure(root: &Path) -> Result<PathBuf> {
    let sim = root.join("lca-sim");
    std::fs::create_dir_all(&sim).map_err(io("creating lca-sim"))?;
    let graph = root.join("var/lib/containers/storage");
    let run = root.join("run/containers/storage");
    for d in [&graph, &run] {
        std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
    }
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
