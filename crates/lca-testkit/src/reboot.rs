//! A simulated node's reboot, as far as the node and its cluster go (the harness that also
//! stops and restarts the operator and runs the booted deployment's units builds on it).
//! After a real reboot the default deployment is the booted one, the node's `/var` and `/etc`
//! are the booted stateroot's and deployment's, and the cluster is what that stateroot's
//! `/var/lib/etcd` holds. [`complete`] does the same to a simulated node directory (its
//! `lca-sim/node.json`, see `lca_hostops::sim`) and to the loopback control plane
//! whose etcd lives in it.

use std::path::Path;

use lca_hostops::HostPaths;

use crate::{ControlPlane, Error, Result, io, run};

/// A deployment: stateroot, commit checksum, deploy serial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booted {
    pub stateroot: String,
    pub checksum: String,
    pub serial: u32,
}

/// The default deployment (listed first by `ostree admin status`) of the node at `root`.
pub fn default_deployment(root: &Path) -> Result<Booted> {
    deployments(root)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Setup(format!("no deployment on {}", root.display())))
}

/// The deployments of the node at `root`, the default first.
pub fn deployments(root: &Path) -> Result<Vec<Booted>> {
    let sysroot = format!("--sysroot={}", root.join("sysroot").display());
    let status = run(&["ostree", "admin", "status", &sysroot])?;
    Ok(status
        .lines()
        .filter_map(|line| {
            let mut words = line.trim_start_matches(['*', ' ']).split_whitespace();
            let (stateroot, id) = (words.next()?, words.next()?);
            let (checksum, serial) = id.split_once('.')?;
            let hex = checksum.len() == 64 && checksum.bytes().all(|b| b.is_ascii_hexdigit());
            hex.then(|| {
                Some(Booted {
                    stateroot: stateroot.into(),
                    checksum: checksum.into(),
                    serial: serial.parse().ok()?,
                })
            })
            .flatten()
        })
        .collect())
}

/// Record `booted` as the deployment the simulated node at `root` booted (its
/// `lca-sim/node.json`, with a new boot id).
pub(crate) fn write_booted(root: &Path, booted: &Booted) -> Result<()> {
    let booted = lca_hostops::sim::BootedRef {
        stateroot: booted.stateroot.clone(),
        checksum: booted.checksum.clone(),
        serial: booted.serial,
    };
    lca_hostops::sim::set_booted(&HostPaths::new(root), booted).map_err(|e| Error::Setup(e.to_string()))
}

/// Whether the operator asked the simulated node at `root` to reboot.
pub fn requested(root: &Path) -> bool {
    lca_hostops::sim::read_reboot_request(&HostPaths::new(root)).is_ok_and(|r| r.is_some())
}

/// Replace the symlink `root/<name>` with one to `target` (relative to `root`), atomically.
fn relink(root: &Path, name: &str, target: &str) -> Result<()> {
    let tmp = root.join(format!(".{name}.relink"));
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("clearing a stale link")(e)),
        _ => {}
    }
    std::os::unix::fs::symlink(target, &tmp).map_err(io(format!("linking /{name}")))?;
    std::fs::rename(&tmp, root.join(name)).map_err(io(format!("replacing /{name}")))
}

/// Reboot the simulated node at `root` whose cluster `cp` serves: the default deployment
/// becomes the booted one, `/var` and `/etc` follow it, a pending reboot request is
/// consumed, and the control plane comes back on the booted stateroot's `var/lib/etcd`.
pub async fn complete(root: &Path, cp: &mut ControlPlane) -> Result<Booted> {
    complete_into(root, cp, None).await
}

/// As [`complete`], but when `chosen` names a stateroot its first deployment boots instead
/// of the default, as when someone picks it in the bootloader menu (an uncontrolled
/// rollback).
pub async fn complete_into(root: &Path, cp: &mut ControlPlane, chosen: Option<&str>) -> Result<Booted> {
    let booted = switch(root, chosen)?;
    cp.reboot_onto(&root.join("var/lib/etcd")).await?;
    Ok(booted)
}

/// The node-file half of a reboot (no cluster): the default deployment, or the first of
/// stateroot `chosen`, becomes the booted one with its `/var` and `/etc`, and a pending
/// reboot request is consumed.
pub fn switch(root: &Path, chosen: Option<&str>) -> Result<Booted> {
    let booted = match chosen {
        None => default_deployment(root)?,
        Some(name) => deployments(root)?
            .into_iter()
            .find(|d| d.stateroot == name)
            .ok_or_else(|| Error::Setup(format!("no deployment of stateroot {name}")))?,
    };
    let stateroot = format!("sysroot/ostree/deploy/{}", booted.stateroot);
    relink(root, "var", &format!("{stateroot}/var"))?;
    relink(
        root,
        "etc",
        &format!("{stateroot}/deploy/{}.{}/etc", booted.checksum, booted.serial),
    )?;
    write_booted(root, &booted)?;
    if root.join("lca-sim/varlibcontainers").exists() {
        crate::simnode::mount_container_storage(root)?;
    }
    lca_hostops::sim::clear_reboot_request(&HostPaths::new(root)).map_err(|e| Error::Setup(e.to_string()))?;
    Ok(booted)
}
