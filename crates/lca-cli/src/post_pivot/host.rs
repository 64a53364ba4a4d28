//! The host steps of post-pivot that run before the kubelet (spec §6.4 steps 3–7 and 9):
//! files on the node and the node services that read them.

use lca_core::network_check::{self, Networks};
use serde_json::json;

use super::{CLUSTER_CONFIGURATION, Ctx, OPT_OPENSHIFT};
use crate::error::{Error, Result};

const EARLY_ACCESS_KEY: &str = "home/core/.ssh/authorized_keys.d/ib-early-access";
const NM_CONNECTIONS: &str = "etc/NetworkManager/system-connections";
const NODEIP_HINT: &str = "etc/default/nodeip-configuration";
const DNSMASQ_OVERRIDES: &str = "etc/default/sno_dnsmasq_configuration_overrides";
const USER_CA_BUNDLE: &str = "etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt";

/// The user's SSH key for early access, and the MachineConfigs that keep it (applied with
/// the cluster configuration once the API is up).
pub async fn ssh_key(ctx: &Ctx) -> Result<()> {
    let key = ctx.config.ssh_key.trim();
    if key.is_empty() {
        return Ok(());
    }
    ctx.write(EARLY_ACCESS_KEY, format!("{key}\n").as_bytes())?;
    if ctx.exec.node().kind == lca_hostops::NodeKind::Real {
        let path = ctx.path(EARLY_ACCESS_KEY).display().to_string();
        ctx.run(&["chown", "core:core", &path]).await?;
    }
    for role in ["master", "worker"] {
        let mc = json!({
            "apiVersion": "machineconfiguration.openshift.io/v1",
            "kind": "MachineConfig",
            "metadata": {"name": format!("99-{role}-ssh"),
                         "labels": {"machineconfiguration.openshift.io/role": role}},
            "spec": {"config": {"ignition": {"version": "3.2.0"},
                     "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [key]}]}}},
        });
        let rel = format!("{CLUSTER_CONFIGURATION}/manifests/99-{role}-ssh.json");
        ctx.write(&rel, mc.to_string().as_bytes())?;
    }
    Ok(())
}

/// The cluster's pull secret for the kubelet and CRI-O.
pub fn pull_secret(ctx: &Ctx) -> Result<()> {
    if ctx.config.pull_secret.is_empty() {
        return Ok(());
    }
    let path = ctx.path(lca_api::consts::paths::KUBELET_CONFIG);
    if let Some(dir) = path.parent() {
        ctx.fs().create_private_dir(dir)?;
    }
    Ok(ctx.fs().write_private(&path, ctx.config.pull_secret.as_bytes())?)
}

/// Connections, nmstate, hostname, the node IP hint and the dnsmasq overrides.
pub async fn network(ctx: &Ctx) -> Result<()> {
    let c = &ctx.config;
    let saved = ctx.path(&format!(
        "{OPT_OPENSHIFT}/network-configuration/system-connections"
    ));
    let fs = ctx.fs();
    for name in fs.list_dir(&saved)? {
        let src = saved.join(&name);
        if fs.symlink_metadata(&src)?.is_some_and(|m| m.is_file()) {
            let dst = ctx.path(NM_CONNECTIONS).join(&name);
            if let Some(dir) = dst.parent() {
                fs.create_private_dir(dir)?;
            }
            fs.write_private(&dst, &fs.read(&src)?)?;
        }
    }
    if !c.raw_nm_state_config.is_empty() {
        let rel = format!("{OPT_OPENSHIFT}/nmstate.yaml");
        ctx.write(&rel, c.raw_nm_state_config.as_bytes())?;
        let file = ctx.path(&rel).display().to_string();
        ctx.run(&["nmstatectl", "apply", &file]).await?;
    }
    ctx.run(&["systemctl", "restart", "NetworkManager.service"])
        .await?;
    if c.hostname.is_empty() || c.hostname == "localhost" {
        return Err(Error::Invalid(format!(
            "invalid hostname {:?} in the seed reconfiguration: the node needs its own name",
            c.hostname
        )));
    }
    ctx.run(&["hostnamectl", "set-hostname", &c.hostname]).await?;
    if c.node_ips.is_empty() {
        return Err(Error::Invalid("the seed reconfiguration lists no node IP".into()));
    }
    let hint = format!("KUBELET_NODEIP_HINT={}\n", c.node_ips.join(" "));
    ctx.write(NODEIP_HINT, hint.as_bytes())?;
    let overrides = format!(
        "SNO_CLUSTER_NAME_OVERRIDE={}\nSNO_BASE_DOMAIN_OVERRIDE={}\nSNO_DNSMASQ_IP_OVERRIDE={}\n",
        c.cluster_name, c.base_domain, c.node_ips[0]
    );
    ctx.write(DNSMASQ_OVERRIDES, overrides.as_bytes())?;
    ctx.run(&["systemctl", "restart", "dnsmasq.service"]).await?;
    Ok(())
}

/// The seed's networks against the node's, and the proxy on both sides.
pub fn validate_networks(ctx: &Ctx) -> Result<()> {
    let seed = Networks {
        node_ips: ctx.seed.ips(),
        machine_networks: ctx.seed.machine_networks.clone(),
    };
    let target = Networks {
        node_ips: ctx.config.node_ips.clone(),
        machine_networks: ctx.config.machine_networks.clone(),
    };
    network_check::check(&seed, &target).map_err(Error::Invalid)?;
    let target_proxy = ctx.config.proxy.is_some();
    if ctx.seed.has_proxy != target_proxy {
        return Err(Error::Invalid(format!(
            "proxy mismatch: the seed {} and the cluster {}",
            if ctx.seed.has_proxy {
                "has a proxy"
            } else {
                "has no proxy"
            },
            if target_proxy { "has one" } else { "has none" }
        )));
    }
    Ok(())
}

/// The user's CA bundle into the node's trust.
pub async fn ca_bundle(ctx: &Ctx) -> Result<()> {
    let bundle = &ctx.config.additional_trust_bundle.user_ca_bundle;
    if bundle.is_empty() {
        return Ok(());
    }
    ctx.write(USER_CA_BUNDLE, bundle.as_bytes())?;
    ctx.run(&["update-ca-trust"]).await?;
    Ok(())
}

/// chrony's configuration, and the node's own SSH host keys in place of the seed's.
pub async fn chrony_and_ssh_host_keys(ctx: &Ctx) -> Result<()> {
    if !ctx.config.chrony_config.is_empty() {
        ctx.write("etc/chrony.conf", ctx.config.chrony_config.as_bytes())?;
        ctx.run(&["systemctl", "restart", "chronyd"]).await?;
    }
    let keys = &ctx.config.server_ssh_keys;
    if keys.is_empty() {
        return Ok(());
    }
    let fs = ctx.fs();
    let dir = ctx.path("etc/ssh");
    for name in fs.list_dir(&dir)? {
        if name.starts_with("ssh_host_") && name.contains("_key") {
            fs.remove_file(&dir.join(&name))?;
        }
    }
    fs.create_private_dir(&dir)?;
    for k in keys {
        let name = &k.file_name;
        if name.contains('/') || !name.starts_with("ssh_host_") {
            return Err(Error::Invalid(format!("invalid SSH host key file name {name:?}")));
        }
        let path = dir.join(name);
        if name.ends_with(".pub") {
            fs.write_atomic(&path, k.file_content.as_bytes())?;
        } else {
            fs.write_private(&path, k.file_content.as_bytes())?;
        }
    }
    Ok(())
}
