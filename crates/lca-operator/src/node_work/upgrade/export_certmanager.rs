//! Pre-pivot export of cert-manager's certificates (spec §6.1 step 7), when the cluster has
//! cert-manager (CRD `certificates.cert-manager.io`): the namespace and the TLS Secret of each
//! Certificate go to `cluster-configuration/manifests/` (`01_certmanager_Namespace_<ns>.json`,
//! `03_certmanager_Secret_<name>_<ns>.json`, applied by post-pivot), and each private key to
//! `cluster-configuration/certmanager-crypto/CN=<cn>__<ns>_<name>.key`, which recert keeps
//! so the certificates stay valid for the keys they were issued to.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use serde_json::{Value, json};

use crate::cluster_health::crd_exists;
use crate::error::{Error, Result};
use crate::kubeapi;
use lca_core::manifest_decode::{field, strip_instance_fields};

const CRD: &str = "certificates.cert-manager.io";
/// Relative to `cluster-configuration/`.
pub const CRYPTO_DIR: &str = "certmanager-crypto";

/// What to write: manifests (file name, object) and keys (file name, PEM).
#[derive(Default)]
pub struct Export {
    pub manifests: Vec<(String, Value)>,
    pub keys: Vec<(String, String)>,
}

pub async fn gather(c: &Client) -> Result<Export> {
    let mut out = Export::default();
    if !crd_exists(c, CRD)
        .await
        .map_err(Error::api(format!("failed to check {CRD}")))?
    {
        return Ok(out);
    }
    let certificates =
        crate::node_work::validate::list_dynamic(c, "cert-manager.io", "v1", "Certificate", "certificates")
            .await?;
    let mut namespaces = BTreeSet::new();
    for cert in &certificates {
        let (ns, secret_name) = (
            field(cert, "/metadata/namespace"),
            field(cert, "/spec/secretName"),
        );
        if ns.is_empty() || secret_name.is_empty() {
            continue;
        }
        let api: Api<Secret> = Api::namespaced(c.clone(), &ns);
        let Some(secret) = kubeapi::get_optional(&api, &secret_name)
            .await
            .map_err(Error::api(format!("failed to get secret {ns}/{secret_name}")))?
        else {
            // Not issued yet: nothing to keep.
            continue;
        };
        let text = |k: &str| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(k))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        };
        let (Some(crt), Some(key)) = (text("tls.crt"), text("tls.key")) else {
            continue;
        };
        let cn = crate::node_work::certs::subject_cn(&crt)
            .map_err(|e| Error::state(format!("certificate {ns}/{secret_name}: {e}")))?;
        // The CN comes from the certificate: it must not make the file name a path.
        let cn = cn.replace(['/', '\0'], "_");
        out.keys.push((format!("CN={cn}__{ns}_{secret_name}.key"), key));
        let mut obj = serde_json::to_value(&secret).map_err(|e| Error::invalid(e.to_string()))?;
        strip_instance_fields(&mut obj);
        obj["apiVersion"] = json!("v1");
        obj["kind"] = json!("Secret");
        out.manifests
            .push((format!("03_certmanager_Secret_{secret_name}_{ns}.json"), obj));
        namespaces.insert(ns);
    }
    for ns in namespaces {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        out.manifests
            .push((format!("01_certmanager_Namespace_{ns}.json"), obj));
    }
    Ok(out)
}
