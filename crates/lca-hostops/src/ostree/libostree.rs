//! set-default through libostree, for nodes whose `ostree` CLI lacks `admin set-default`
//! (Debian 12's 2022.7; upstream added the subcommand in 2023). It does what the subcommand
//! does: load the sysroot, take its lock, move one deployment to the front and write the
//! deployment list back (new BLS entries, bootloader swap).
//!
//! Blocking and `!Send` (GObjects): call it from `spawn_blocking`, as `set_default_libostree`
//! does. Also used by the `lca-ostree-set-default-peer` binary that tests use to give the
//! Debian CLI a `set-default` subcommand.

use std::path::Path;

use ostree::gio;

use crate::error::{Error, Result};

fn glib_err(op: &'static str) -> impl FnOnce(ostree::glib::Error) -> Error {
    move |e| Error::Ostree {
        op,
        message: e.to_string(),
    }
}

/// Make deployment `index` of the sysroot at `sysroot` the default (index 0).
pub fn set_default(sysroot: &Path, index: usize) -> Result<()> {
    let sysroot = ostree::Sysroot::new(Some(&gio::File::for_path(sysroot)));
    sysroot
        .load(gio::Cancellable::NONE)
        .map_err(glib_err("loading sysroot"))?;
    sysroot.lock().map_err(glib_err("locking sysroot"))?;
    let result = reorder(&sysroot, index);
    sysroot.unlock();
    result
}

fn reorder(sysroot: &ostree::Sysroot, index: usize) -> Result<()> {
    let mut deployments = sysroot.deployments();
    if index >= deployments.len() {
        return Err(Error::Invalid(format!(
            "deployment index {index} out of range ({} deployments)",
            deployments.len()
        )));
    }
    if index == 0 {
        return Ok(());
    }
    let chosen = deployments.remove(index);
    deployments.insert(0, chosen);
    sysroot
        .write_deployments(&deployments, gio::Cancellable::NONE)
        .map_err(glib_err("writing deployments"))
}

/// `(stateroot, checksum, serial)` of every deployment, in order, read through libostree
/// (a cross-check of the CLI parsers in tests).
pub fn deployments(sysroot: &Path) -> Result<Vec<(String, String, i32)>> {
    let sysroot = ostree::Sysroot::new(Some(&gio::File::for_path(sysroot)));
    sysroot
        .load(gio::Cancellable::NONE)
        .map_err(glib_err("loading sysroot"))?;
    Ok(sysroot
        .deployments()
        .iter()
        .map(|d| (d.osname().to_string(), d.csum().to_string(), d.deployserial()))
        .collect())
}
