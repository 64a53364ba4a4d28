//! What a seed must carry to boot (spec §6.4, §8.5 steps 1, 2, 4 and 12): at the first boot of
//! the new stateroot, systemd starts `installation-configuration.service` (`lca-cli
//! post-pivot`) and `lca-init-monitor.service` (`lca-cli init-monitor --monitor`) from the
//! seed's `/etc`, with the `lca-cli` the seed carries in `/var/usrlocal/bin` (`/usr/local/bin`
//! on the node) and the seed cluster info in `/var/seed_data/manifest.json`. Create installs
//! them on the seed node before `var.tgz` and `etc.tgz` are packed, so both tarballs carry
//! them, and removes them again when it leaves the node as it was.
//!
//! The unit files have upstream's names and semantics, so a seed made here boots with either
//! implementation's `lca-cli`; their text is part of this binary (from the same files the
//! operator image carries in `/usr/local/installation_configuration_files/services/`), so
//! create does not depend on the image's directory.

use std::path::PathBuf;

use super::Ctx;
use crate::error::{Error, Result};

/// The host post-pivot unit.
pub const POST_PIVOT_UNIT: &str = "installation-configuration.service";
/// The unit that rolls back when the upgrade does not finish in time.
pub const INIT_MONITOR_UNIT: &str = "lca-init-monitor.service";

const POST_PIVOT_UNIT_TEXT: &str =
    include_str!("../../installation_configuration_files/services/installation-configuration.service");

const INIT_MONITOR_UNIT_TEXT: &str =
    include_str!("../../installation_configuration_files/services/lca-init-monitor.service");

/// The units a seed carries, with their text.
pub const UNITS: [(&str, &str); 2] = [
    (POST_PIVOT_UNIT, POST_PIVOT_UNIT_TEXT),
    (INIT_MONITOR_UNIT, INIT_MONITOR_UNIT_TEXT),
];

/// Where the seed carries the seed cluster info for post-pivot, relative to the node root.
pub const SEED_DATA_MANIFEST: &str = "var/seed_data/manifest.json";
/// Where the seed carries its `lca-cli` (`/usr/local/bin/lca-cli` on the booted node).
pub const NODE_LCA_CLI: &str = "var/usrlocal/bin/lca-cli";

fn unit_path(ctx: &Ctx, unit: &str) -> PathBuf {
    ctx.paths.host(format!("etc/systemd/system/{unit}"))
}

/// Steps 1, 2 and 4 on the node: the enabled units, `lca-cli` (`exe`), the seed cluster info.
/// Each write replaces the file whole, so a re-run after a crash converges.
pub fn install(ctx: &Ctx, exe: &std::path::Path, seed_info: &[u8]) -> Result<()> {
    for (unit, text) in UNITS {
        let path = unit_path(ctx, unit);
        if let Some(dir) = path.parent() {
            ctx.fs
                .create_private_dir(dir)
                .map_err(Error::host("installing the seed's units"))?;
        }
        ctx.fs
            .write_atomic(&path, text.as_bytes())
            .map_err(Error::host("installing the seed's units"))?;
        ctx.node.enable_unit(unit)?;
    }
    let cli = ctx.paths.host(NODE_LCA_CLI);
    let info = ctx.paths.host(SEED_DATA_MANIFEST);
    for file in [&cli, &info] {
        if let Some(dir) = file.parent() {
            ctx.fs
                .create_private_dir(dir)
                .map_err(Error::host("preparing the seed's files"))?;
        }
    }
    ctx.fs
        .copy_in(exe, &cli)
        .map_err(Error::host("copying lca-cli into the seed"))?;
    ctx.fs
        .write_atomic(&info, seed_info)
        .map_err(Error::host("writing the seed cluster info"))
}

/// Step 12's part: disable and delete the units and remove the seed data; every part is
/// tried, the errors are returned together.
pub fn uninstall(ctx: &Ctx) -> Vec<String> {
    let mut errors = Vec::new();
    for (unit, _) in UNITS {
        if let Err(e) = ctx.node.disable_unit(unit) {
            errors.push(e.to_string());
        }
        if let Err(e) = ctx.fs.remove_file(&unit_path(ctx, unit)) {
            errors.push(e.to_string());
        }
    }
    if let Err(e) = ctx.fs.remove_dir_all(&ctx.paths.host("var/seed_data")) {
        errors.push(e.to_string());
    }
    errors
}
