//! Cluster objects Prep reads besides the health fixtures: the admin kubeconfig CA and the
//! signer keys that are backed up into the new stateroot (spec §5.4 step 5).

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::{Error, Result, kube_err};

async fn create_ignoring_exists<K>(api: &Api<K>, obj: &K, what: &str) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(kube_err(what.to_string())(e)),
    }
}

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::Setup(e.to_string()))
}

/// Create `openshift-config/admin-kubeconfig-client-ca` and the four signer-key Secrets.
pub async fn crypto_fixtures(client: &Client) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [
        "openshift-config",
        "openshift-kube-apiserver-operator",
        "openshift-ingress-operator",
    ] {
        create_ignoring_exists(
            &namespaces,
            &from_json(json!({"metadata": {"name": ns}}))?,
            "creating a namespace",
        )
        .await?;
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "openshift-config");
    let ca = from_json(
        json!({"metadata": {"name": "admin-kubeconfig-client-ca"}, "data": {"ca-bundle.crt": "CA"}}),
    )?;
    create_ignoring_exists(&cms, &ca, "creating admin-kubeconfig-client-ca").await?;
    for (ns, name) in [
        ("openshift-kube-apiserver-operator", "loadbalancer-serving-signer"),
        ("openshift-kube-apiserver-operator", "localhost-serving-signer"),
        (
            "openshift-kube-apiserver-operator",
            "service-network-serving-signer",
        ),
        ("openshift-ingress-operator", "router-ca"),
    ] {
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let mut data = json!({"tls.key": format!("KEY {name}")});
        if name == "router-ca" {
            // Pre-pivot reads the ingress CN from the CA's subject.
            data["tls.crt"] = json!(certificate(INGRESS_CN, (2036, 1, 1))?.0);
        }
        let secret = from_json(json!({"metadata": {"name": name}, "stringData": data}))?;
        create_ignoring_exists(&api, &secret, "creating a signer secret").await?;
    }
    Ok(())
}

/// The install-config the installer leaves in `kube-system/cluster-config-v1`: cluster
/// `name` in `domain`, one machine network.
pub async fn install_config(client: &Client, name: &str, domain: &str, machine_network: &str) -> Result<()> {
    let ic = format!(
        "apiVersion: v1\nbaseDomain: {domain}\nmetadata:\n  name: {name}\nnetworking:\n  machineNetwork:\n  - cidr: {machine_network}\n  networkType: OVNKubernetes\n"
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let cm = from_json(json!({"metadata": {"name": "cluster-config-v1"}, "data": {"install-config": ic}}))?;
    create_ignoring_exists(&cms, &cm, "creating kube-system/cluster-config-v1").await
}

/// The subject CN of the ingress CA (`openshift-ingress-operator/router-ca`).
pub const INGRESS_CN: &str = "ingress-operator@1700000000";

/// A self-signed certificate with subject `cn` valid until `not_after` (year, month, day,
/// midnight UTC): (cert PEM, key PEM).
pub fn certificate(cn: &str, not_after: (i32, u8, u8)) -> Result<(String, String)> {
    let fail = |e: rcgen::Error| Error::Setup(format!("making a certificate: {e}"));
    let mut params = rcgen::CertificateParams::new(vec![cn.to_string()]).map_err(fail)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params.not_before = rcgen::date_time_ymd(2026, 1, 1);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let cert = params.self_signed(&key).map_err(fail)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The kubelet's client and server certificates in the stateroot whose `var` is `var`, as a
/// kubelet leaves them: dated files and `…-current.pem` links to their absolute `/var` path.
/// The rollback window ends 30 minutes before the earlier `not_after`.
pub fn kubelet_certs(
    var: &std::path::Path,
    client_not_after: (i32, u8, u8),
    server_not_after: (i32, u8, u8),
) -> Result<()> {
    let pki = var.join("lib/kubelet/pki");
    std::fs::create_dir_all(&pki).map_err(crate::io("creating var/lib/kubelet/pki"))?;
    for (kind, not_after) in [("client", client_not_after), ("server", server_not_after)] {
        let (cert, key) = certificate(&format!("system:node:{}", crate::openshift::NODE), not_after)?;
        let dated = format!("kubelet-{kind}-2026-01-01-00-00-00.pem");
        std::fs::write(pki.join(&dated), format!("{cert}{key}"))
            .map_err(crate::io("writing a kubelet certificate"))?;
        let link = pki.join(format!("kubelet-{kind}-current.pem"));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(format!("/var/lib/kubelet/pki/{dated}"), &link)
            .map_err(crate::io("linking a kubelet certificate"))?;
    }
    Ok(())
}

/// Write the control plane's admin kubeconfig where a node keeps its own
/// (`lb-ext.kubeconfig`, spec §9.4): the operator's dry runs of the user's manifests act as
/// that identity.
pub fn admin_kubeconfig(cp: &crate::ControlPlane, node_root: &std::path::Path) -> Result<()> {
    let dest = node_root.join(lca_api::consts::paths::ADMIN_KUBECONFIG);
    let dir = dest.parent().expect("the path has a parent");
    std::fs::create_dir_all(dir).map_err(crate::io(format!("creating {}", dir.display())))?;
    std::fs::copy(cp.kubeconfig(), &dest).map_err(crate::io(format!("writing {}", dest.display())))?;
    Ok(())
}
