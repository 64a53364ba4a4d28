//! recert at the first boot (spec §6.4 step 8, §9.5): with etcd of the seed's cluster
//! started alone (no kubelet yet), recert rewrites every certificate, name, IP and secret of
//! the seed into the upgraded cluster's, from `recert_config.json`. A summary left by an
//! earlier run means it failed half-way: running it again on a half-rewritten etcd is not
//! safe, so post-pivot stops and a person looks.

use lca_hostops::recert;
use serde_json::{Value, json};

use super::{CLUSTER_CONFIGURATION, Ctx, OPT_OPENSHIFT};
use crate::error::{Error, Result};

const SUMMARY: &str = "var/tmp/recert-summary.yaml";
const CONFIG: &str = "var/opt/openshift/recert_config.json";

pub async fn run(ctx: &Ctx) -> Result<()> {
    if ctx.fs().exists(&ctx.path(SUMMARY))? {
        return Err(Error::NodeState(format!(
            "/{SUMMARY} exists: an earlier recert failed; see it, fix the node, remove it and restart {}",
            "installation-configuration.service"
        )));
    }
    let image = ctx.seed.recert_image_pull_spec.clone();
    if image.is_empty() {
        return Err(Error::Invalid(
            "the seed cluster info names no recert image".into(),
        ));
    }
    ctx.write(CONFIG, config(ctx)?.to_string().as_bytes())?;
    let authfile = ctx
        .path(lca_api::consts::paths::KUBELET_CONFIG)
        .display()
        .to_string();
    if ctx.run(&["podman", "image", "exists", &image]).await.is_err() {
        ctx.run(&["podman", "pull", "--authfile", &authfile, &image])
            .await?;
    }
    let fs = ctx.fs();
    let etcd_image = recert::etcd_image(&fs, &ctx.path(recert::ETCD_POD))?;
    run_argv(ctx, &recert::etcd_argv(&etcd_image, Some(&authfile))).await?;
    let result = recert(ctx, &image, &authfile).await;
    if let Err(e) = run_argv(ctx, &recert::stop_etcd_argv()).await {
        tracing::warn!("stopping recert_etcd: {e}");
    }
    result?;
    ctx.run(&["update-ca-trust"]).await?;
    Ok(())
}

async fn recert(ctx: &Ctx, image: &str, authfile: &str) -> Result<()> {
    recert::wait_for_etcd(ctx.exec.as_ref()).await?;
    let opt = format!("/{OPT_OPENSHIFT}");
    let argv = recert::recert_argv(image, &format!("/{CONFIG}"), Some(authfile), &[&opt]);
    run_argv(ctx, &argv).await.map(|_| ())
}

async fn run_argv(ctx: &Ctx, argv: &[String]) -> Result<String> {
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    ctx.run(&argv).await
}

/// recert's configuration (the keys of upstream's `RecertConfig`).
pub fn config(ctx: &Ctx) -> Result<Value> {
    let (c, s) = (&ctx.config, &ctx.seed);
    let crypto = &c.kubeconfig_crypto_retention;
    let serving = &crypto.kube_api_crypto.serving_crypto;
    let mut cn_san = vec![
        format!("{},{}", s.sno_hostname, c.hostname),
        format!("system:node:{},system:node:{}", s.sno_hostname, c.hostname),
        format!(
            "api.{}.{},api.{}.{}",
            s.cluster_name, s.base_domain, c.cluster_name, c.base_domain
        ),
        format!(
            "api-int.{}.{},api-int.{}.{}",
            s.cluster_name, s.base_domain, c.cluster_name, c.base_domain
        ),
        format!(
            "*.apps.{}.{},*.apps.{}.{}",
            s.cluster_name, s.base_domain, c.cluster_name, c.base_domain
        ),
    ];
    for (from, to) in s.ips().iter().zip(&c.node_ips) {
        cn_san.push(format!("{from},{to}"));
    }
    let ingress_cn = &crypto.ingress_crypto.ingress_certificate_cn;
    if !s.ingress_certificate_cn.is_empty() && !ingress_cn.is_empty() {
        cn_san.push(format!("{},{ingress_cn}", s.ingress_certificate_cn));
    }
    let mut rename = format!("{}:{}", c.cluster_name, c.base_domain);
    if !c.infra_id.is_empty() {
        rename.push(':');
        rename.push_str(&c.infra_id);
    }
    let mut v = json!({
        "etcd_endpoint": "localhost:2379",
        "crypto_dirs": ["/kubelet", "/kubernetes", "/machine-config-daemon"],
        "crypto_files": ["/host-etc/mcs-machine-config-content.json"],
        "cluster_customization_dirs": ["/kubelet", "/kubernetes", "/machine-config-daemon"],
        "cluster_customization_files": ["/host-etc/mcs-machine-config-content.json", "/host-etc/mco/proxy.env", "/host-etc/chrony.conf"],
        "cluster_rename": rename,
        "summary_file_clean": format!("/{SUMMARY}"),
        "extend_expiration": true,
        "use_key_rules": [
            format!("kube-apiserver-lb-signer {}", serving.loadbalancer_external_signer_private_key),
            format!("kube-apiserver-localhost-signer {}", serving.localhost_signer_private_key),
            format!("kube-apiserver-service-network-signer {}", serving.service_network_signer_private_key),
            format!("ingresskey-ingress-operator {}", crypto.ingress_crypto.ingress_ca),
        ],
        "use_cert_rules": [crypto.kube_api_crypto.client_auth_crypto.admin_ca_certificate],
        "cn_san_replace_rules": cn_san,
        "pull_secret": c.pull_secret,
        "install_config": c.install_config,
    });
    // cert-manager's keys, exported as `CN=<cn>__<ns>_<name>.key`.
    let dir = ctx.path(&format!("{CLUSTER_CONFIGURATION}/certmanager-crypto"));
    for file in ctx.fs().list_dir(&dir)? {
        if let Some(cn) = file
            .strip_prefix("CN=")
            .and_then(|r| r.split_once("__"))
            .map(|(cn, _)| cn)
            && let Some(rules) = v["use_key_rules"].as_array_mut()
        {
            rules.push(json!(format!(
                "{cn} /{CLUSTER_CONFIGURATION}/certmanager-crypto/{file}"
            )));
        }
    }
    if c.hostname != s.sno_hostname {
        v["hostname"] = json!(c.hostname);
    }
    if let (Some(from), Some(to)) = (s.ips().first(), c.node_ips.first())
        && from != to
    {
        v["ip"] = json!(to);
    }
    if !c.kubeadmin_password_hash.is_empty() {
        v["kubeadmin_password_hash"] = json!(c.kubeadmin_password_hash);
    }
    if !c.chrony_config.is_empty() {
        v["chrony_config"] = json!(c.chrony_config);
    }
    if let Some(p) = &c.proxy {
        let status = c
            .status_proxy
            .clone()
            .unwrap_or_else(|| lca_api::seedreconfig::Proxy {
                no_proxy: lca_core::network_check::no_proxy(
                    &p.no_proxy,
                    &c.cluster_name,
                    &c.base_domain,
                    &c.machine_networks,
                    &s.service_network_cidr,
                    &s.cluster_network_cidr,
                ),
                ..p.clone()
            });
        v["proxy"] = json!(format!(
            "{}|{}|{}|{}|{}|{}",
            p.http_proxy, p.https_proxy, p.no_proxy, status.http_proxy, status.https_proxy, status.no_proxy
        ));
    }
    let bundle = &c.additional_trust_bundle;
    if !bundle.user_ca_bundle.is_empty() {
        v["user_ca_bundle"] = json!(bundle.user_ca_bundle);
    }
    if !bundle.proxy_configmap_name.is_empty() {
        v["proxy_trusted_ca_bundle"] = json!(format!(
            "{}:{}",
            bundle.proxy_configmap_name, bundle.proxy_configmap_bundle
        ));
    }
    if let (Some(from), Some(to)) = (s.machine_networks.first(), c.machine_networks.first())
        && from != to
    {
        v["machine_network_cidr"] = json!(c.machine_networks.join(","));
    }
    Ok(v)
}
