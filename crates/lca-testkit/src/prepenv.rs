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
        let secret =
            from_json(json!({"metadata": {"name": name}, "stringData": {"tls.key": format!("KEY {name}")}}))?;
        create_ignoring_exists(&api, &secret, "creating a signer secret").await?;
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
